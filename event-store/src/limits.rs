//! Every limit of the event store, named, with units last.

/// Most events one append may carry.
pub const APPEND_EVENTS_MAX: usize = 64;
/// Largest encoded record accepted (payload and envelope).
pub const RECORD_BYTES_MAX: usize = 64 * 1024;
/// Most append requests the writer folds into one batch and one flush.
pub const BATCH_APPENDS_MAX: usize = 256;
/// Depth of the queue in front of the single writer (appends waiting).
pub const WRITER_QUEUE_DEPTH: usize = 4096;
/// Longest an append waits for the writer's answer before it is refused as
/// stalled: far above any healthy group commit (milliseconds), short enough
/// that a wedged disk turns into errors instead of a hung server.
pub const APPEND_ACK_WAIT_MILLIS_MAX: u64 = 30_000;
/// Largest page a read may ask for.
pub const READ_PAGE_MAX: usize = 1000;
/// Live events buffered per subscriber before it is told it lagged.
pub const SUBSCRIBER_BUFFER_EVENTS: usize = 4096;
/// Records at the tail whose chain is checked when a store is opened.
pub const OPEN_TAIL_CHECK_RECORDS: u64 = 1024;
/// Streams whose head (version, kind, tenant) the sled writer keeps in memory
/// before it forgets them all and reloads lazily from disk.
pub const STREAM_HEADS_CACHED_MAX: usize = 100_000;
/// A log page (one sled value holding the records of one group commit) is
/// closed once it holds this many bytes; larger batches span several pages.
/// Small enough that a sled leaf of pages (at most 17 values) stays below
/// sled's blob threshold (a quarter of its 512 KiB segment).
pub const LOG_PAGE_BYTES_TARGET: usize = 4 * 1024;
/// Durable events the stream and command index may lag behind the log
/// before the indexer folds the oldest of them into index keys (they are
/// rebuilt from the log on open, so this also bounds the work of opening).
pub const INDEX_LAG_EVENTS: u64 = 4096;
/// Lag at which the writer stops waiting for the indexer and folds chunks
/// itself, so the in-memory index stays bounded whatever the load.
pub const INDEX_LAG_EVENTS_MAX: u64 = 4 * INDEX_LAG_EVENTS;
/// Most index keys (stream runs and command buckets) one chunk writes.
/// Large enough that a chunk of `INDEX_LAG_EVENTS` spread over a thousand
/// busy streams coalesces several appends per stream run (at 256, nearly
/// every append cost its own sled key).
pub const INDEX_CHUNK_KEYS_MAX: usize = 2048;
/// Most index keys per sled batch while a chunk is written: a sled batch
/// holds sled's global write lock, so small ones keep the writer's group
/// commits from waiting behind the indexer.
pub const INDEX_KEYS_PER_APPLY_MAX: usize = 16;
/// How long `open` waits for sled's directory lock, which a just-dropped
/// instance of the store may hold for a moment while its threads finish.
pub const OPEN_LOCK_WAIT_MILLIS: u64 = 2000;
/// Pause between two attempts to take sled's directory lock.
pub const OPEN_LOCK_RETRY_MILLIS: u64 = 10;
/// Records `verify` checks per blocking step between progress reports.
pub const VERIFY_STEP_RECORDS: u64 = 10_000;
/// Connections in a PostgreSQL store's read pool (the writer and the
/// listener have their own).
pub const PG_READ_POOL_CONNECTIONS: usize = 8;
/// Longest a PostgreSQL connection attempt may take.
pub const PG_CONNECT_TIMEOUT_MILLIS: u64 = 5_000;
/// A PostgreSQL session idle inside a transaction for this long is ended by
/// the server, so a hung writer (alive but stopped) releases the log head.
/// The store's writer never idles in a transaction: its statements go out
/// pipelined.
pub const PG_IDLE_IN_TRANSACTION_TIMEOUT_MILLIS: u64 = 5_000;
/// TCP keepalive on the store's PostgreSQL sessions (both ends): idle
/// seconds before the first probe, so a vanished peer is noticed and a
/// dead writer's transaction, with the head lock, is ended.
pub const PG_KEEPALIVE_IDLE_SECS: u64 = 5;
/// Seconds between TCP keepalive probes.
pub const PG_KEEPALIVE_INTERVAL_SECS: u64 = 2;
/// Unanswered TCP keepalive probes before the connection is dropped.
pub const PG_KEEPALIVE_RETRIES: u32 = 3;
/// Longest the writer waits for the log head's lock (another writer, or a
/// dead one not yet noticed) before the batch fails as unavailable.
pub const PG_HEAD_LOCK_TIMEOUT_MILLIS: u64 = 20_000;
/// How long the writer keeps trying to reconnect and look up the command
/// ids of a batch whose COMMIT lost its connection, before it answers
/// `OutcomeUnknown`.
pub const PG_OUTCOME_LOOKUP_WAIT_MILLIS: u64 = 10_000;
/// Pause between two reconnection attempts.
pub const PG_RECONNECT_PAUSE_MILLIS: u64 = 100;
/// How often the tailer reads the log even without a notification (the
/// listening connection may be down, and reconnecting takes a while).
pub const PG_TAIL_POLL_MILLIS: u64 = 1_000;
/// Threads (each with its own PostgreSQL session) that run side-tree
/// statements for a PostgreSQL store.
pub const PG_KV_SESSIONS: usize = 4;
/// Side-tree statements waiting for a thread before callers block.
pub const PG_KV_QUEUE_DEPTH: usize = 256;
/// Longest a side-tree caller waits for its answer.
pub const PG_KV_ANSWER_WAIT_MILLIS: u64 = 30_000;
