//! The heap as the allocator counts it. The `ticketlog` binary runs on
//! jemalloc; these figures are what `/metrics` and `bench soak` report next
//! to RSS, so that live data can be told from memory the allocator holds.
//! (In a test binary, which keeps the system allocator, they count only
//! jemalloc's own small use.)

use tikv_jemalloc_ctl::{background_thread, epoch, stats};

/// jemalloc's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes of live allocations.
    pub allocated_bytes: u64,
    /// Bytes of pages the allocator holds resident (live, free in its
    /// caches, and its own metadata).
    pub resident_bytes: u64,
}

/// The counters now, or `None` if jemalloc cannot report them.
pub fn read() -> Option<HeapStats> {
    // jemalloc caches its statistics; advancing the epoch refreshes them.
    epoch::advance().ok()?;
    Some(HeapStats {
        allocated_bytes: stats::allocated::read().ok()? as u64,
        resident_bytes: stats::resident::read().ok()? as u64,
    })
}

/// Lets jemalloc's background threads return freed pages to the system
/// on their own clock, so an idle server shrinks after a burst (without
/// them, purging waits for the next allocations). Whether it worked.
pub fn purge_in_background() -> bool {
    background_thread::write(true).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_what_it_holds() {
        let s = read().expect("jemalloc statistics");
        assert!(s.resident_bytes >= s.allocated_bytes, "{s:?}");
    }
}
