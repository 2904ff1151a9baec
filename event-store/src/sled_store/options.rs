//! How a sled store is opened.

use std::sync::Arc;

use crate::faults::StorageFaults;
use crate::limits;

/// Options of [`super::SledStore::open`]; `Default` is right for production.
#[derive(Debug, Clone)]
pub struct SledOptions {
    /// sled's page cache, in bytes.
    pub cache_capacity_bytes: u64,
    /// Live events buffered per subscriber before it is told it lagged.
    pub subscriber_buffer_events: usize,
    /// Check the chain of the last records when opening (refuse if bad).
    /// Only `verify_dir`-like tools that must open damaged stores turn it off.
    pub check_tail_on_open: bool,
    /// Fault injection for tests (see [`crate::faults`]); `None` in production.
    pub faults: Option<Arc<StorageFaults>>,
    /// Appends are refused (`StorageFull`, a 503) while the store's
    /// filesystem has fewer free bytes than this; 0 turns the guard off.
    pub disk_reserve_bytes: u64,
    /// After each flush, also `fdatasync` sled's data file. sled 0.34 makes
    /// a flush durable with `sync_file_range`, which survives a process kill
    /// but not a power cut (no device cache flush, no metadata); one extra
    /// `fdatasync` per group commit gives an acknowledgement the same
    /// guarantee as PostgreSQL's or Redis's `appendfsync always`.
    pub fdatasync: bool,
}

/// Default sled page cache size in bytes.
pub const CACHE_CAPACITY_BYTES_DEFAULT: u64 = 256 * 1024 * 1024;

/// Free space appends leave on the disk by default: room for sled's
/// segment rewrites and snapshots, the side trees and a clean shutdown.
pub const DISK_RESERVE_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            cache_capacity_bytes: CACHE_CAPACITY_BYTES_DEFAULT,
            subscriber_buffer_events: limits::SUBSCRIBER_BUFFER_EVENTS,
            check_tail_on_open: true,
            faults: None,
            disk_reserve_bytes: DISK_RESERVE_BYTES_DEFAULT,
            fdatasync: true,
        }
    }
}
