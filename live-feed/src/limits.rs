//! Every limit of the live feed, named, with units last.

/// Largest text or binary message a client may send (the contract's 8 KiB).
pub const CLIENT_FRAME_BYTES_MAX: usize = 8 * 1024;
/// Initial read buffer per connection (tungstenite's default is 128 KiB);
/// it grows only to the size of the frame being read, at most the limit above.
pub const READ_BUFFER_BYTES: usize = 2 * 1024;
/// Bytes buffered before a write reaches the socket: 0 writes each frame at once.
pub const WRITE_BUFFER_BYTES: usize = 0;
/// Most bytes one connection's write buffer may hold (one large event frame).
pub const WRITE_BUFFER_BYTES_MAX: usize = 512 * 1024;
/// Frames queued for one connection before it is closed as too slow.
pub const OUTBOUND_QUEUE_FRAMES: usize = 256;
/// Live events buffered for a room while its replay from the log runs.
pub const REPLAY_BUFFER_EVENTS_MAX: usize = 1024;
/// Events read from the log per page during a replay.
pub const REPLAY_PAGE_EVENTS: usize = 500;
/// Events read backwards at most to find a room's head for a subscriber
/// (the last one it may see); beyond, the head is given as 0.
pub const HEAD_SCAN_EVENTS_MAX: usize = 10_000;
/// Client data frames per second a connection may sustain.
pub const CLIENT_FRAMES_PER_SECOND: u32 = 20;
/// Client data frames a connection may send in a burst.
pub const CLIENT_FRAMES_BURST: u32 = 40;
/// `read` frames per second a connection may sustain; beyond it they are
/// answered `rate_limited` (the write side stores at most one receipt per
/// reader and room per interval anyway; this bounds the checks).
pub const READ_FRAMES_PER_SECOND: u32 = 2;
/// `read` frames a connection may send in a burst.
pub const READ_FRAMES_BURST: u32 = 10;
/// Shortest interval between two `typing: true` broadcasts of one connection in one room.
pub const TYPING_INTERVAL_MS: u64 = 1_000;
/// Interval of presence rounds: joins and leaves within one round reach the
/// other members as one frame, so a room filling with m clients costs O(m)
/// presence frames per round instead of m² in all.
pub const PRESENCE_ROUND_MS: u64 = 200;
/// Interval between server pings.
pub const PING_INTERVAL_SECS: u64 = 30;
/// Consecutive unanswered pings after which a connection is dropped.
pub const PONGS_MISSED_MAX: u32 = 2;
/// Rooms one connection may be in at once.
pub const ROOMS_PER_CONNECTION_MAX: usize = 64;
/// How long a close frame may take to reach a client before the socket is dropped.
pub const CLOSE_FLUSH_MS: u64 = 5_000;
/// How long to wait for the client's answer to our close frame.
pub const CLOSE_LINGER_MS: u64 = 2_000;
/// Stream audiences kept in memory by the hub before idle ones are evicted.
pub const AUDIENCE_CACHE_STREAMS_MAX: usize = 100_000;
/// Pause before the hub retries a failed store call.
pub const STORE_RETRY_BACKOFF_MS: u64 = 200;

/// Close code: missing, invalid or expired token.
pub const CLOSE_NOT_AUTHENTICATED: u16 = 4001;
/// Close code: the principal may not use the feed.
pub const CLOSE_FORBIDDEN: u16 = 4003;
/// Close code: too slow, rate limited or unresponsive; resume with `after`.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code: a client frame was over [`CLIENT_FRAME_BYTES_MAX`].
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code: the client closed; we only complete its handshake.
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code: the server is shutting down.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: the client broke the WebSocket protocol.
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
