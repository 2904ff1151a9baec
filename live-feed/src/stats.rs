//! Counters of the live feed, for `/metrics` and tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, updated without locks.
#[derive(Debug, Default)]
pub struct FeedStats {
    connections_total: AtomicU64,
    slow_closed_total: AtomicU64,
    events_fanned_out_total: AtomicU64,
    frames_delivered_total: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeedStatsSnapshot {
    /// Connections open now.
    pub connections_open: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Connections closed with 4008 because their queue was full.
    pub slow_closed_total: u64,
    /// Log events the hub processed.
    pub events_fanned_out_total: u64,
    /// Event frames handed to connections' queues (live path).
    pub frames_delivered_total: u64,
}

impl FeedStats {
    pub(crate) fn connected(&self) {
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn slow_closed(&self) {
        self.slow_closed_total.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn fanned_out(&self, frames: u64) {
        self.events_fanned_out_total.fetch_add(1, Ordering::Relaxed);
        self.frames_delivered_total
            .fetch_add(frames, Ordering::Relaxed);
    }

    /// The counters now; `open` is supplied by the connection registry.
    pub(crate) fn snapshot(&self, open: u64) -> FeedStatsSnapshot {
        FeedStatsSnapshot {
            connections_open: open,
            connections_total: self.connections_total.load(Ordering::Relaxed),
            slow_closed_total: self.slow_closed_total.load(Ordering::Relaxed),
            events_fanned_out_total: self.events_fanned_out_total.load(Ordering::Relaxed),
            frames_delivered_total: self.frames_delivered_total.load(Ordering::Relaxed),
        }
    }
}
