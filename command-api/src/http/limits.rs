//! Every limit of the HTTP layer, named, with units last.

/// Largest request body accepted (the contract's 64 KiB).
pub const BODY_BYTES_MAX: usize = 64 * 1024;
/// Sustained requests per second one user may make by default.
pub const RATE_LIMIT_PER_USER_PER_S_DEFAULT: u32 = 50;
/// Requests one user may make in a burst by default.
pub const RATE_LIMIT_BURST_REQUESTS_DEFAULT: u32 = 100;
/// Most users the rate limiter tracks at once (the map is bounded).
pub const RATE_LIMIT_USERS_MAX: usize = 100_000;
/// Checks between two looks at the rate limiter's key count (the map may
/// pass `RATE_LIMIT_USERS_MAX` by at most this many keys in between).
pub const RATE_LIMIT_SWEEP_EVERY_CHECKS: u64 = 1024;
/// Password verifications running at once (argon2 is CPU and memory heavy).
pub const LOGIN_CONCURRENCY_MAX: usize = 4;
/// How long a login waits for a password-hash slot before it is answered
/// 503 `busy` (not counted against the client).
pub const LOGIN_SLOT_WAIT_MILLIS: u64 = 2_000;
/// Longest `X-Request-Id` taken from a client; longer ones are replaced.
pub const REQUEST_ID_CHARS_MAX: usize = 64;
/// Longest query string accepted (after `?`); longer ones are refused with
/// 414 before routing.
pub const QUERY_BYTES_MAX: usize = 8 * 1024;
