//! Every limit of the read side, named, with units last.

/// Largest page any list query returns (the contract's cap).
pub const PAGE_ITEMS_MAX: usize = 500;
/// Page size when the client does not ask for one.
pub const PAGE_ITEMS_DEFAULT: usize = 50;
/// Most log records the raw event query inspects per call, so a principal
/// who sees little of the log cannot make one request scan all of it.
pub const EVENTS_SCAN_MAX: usize = 10_000;
/// Most events of one ticket stream an audit request folds.
pub const AUDIT_STREAM_EVENTS_MAX: usize = 100_000;
/// Most events the runner applies under one write lock, so readers wait
/// at most one small batch.
pub const APPLY_BATCH_EVENTS: usize = 1024;
/// Page size when the runner or a rebuild reads the log.
pub const READ_PAGE_EVENTS: usize = 1000;
/// Events applied between two projection snapshots.
pub const SNAPSHOT_EVERY_EVENTS: u64 = 100_000;
/// Longest time between two projection snapshots while events arrive.
pub const SNAPSHOT_EVERY_SECS: u64 = 60;
/// Size of one stored snapshot chunk.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;
/// Longest a read-your-writes wait may last, whatever the caller asks.
pub const WAIT_FOR_MAX_MS: u64 = 5_000;
/// Events left to apply below which a rebuild stops the live runner to swap.
pub const REBUILD_SWAP_GAP_EVENTS: u64 = 1_000;
/// Pause before the runner resubscribes after a store error.
pub const RESUBSCRIBE_BACKOFF_MS: u64 = 200;
/// Longest text search string accepted.
pub const SEARCH_QUERY_CHARS_MAX: usize = 200;
