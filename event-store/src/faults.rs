//! Fault injection: make the store's Nth write, flush or sync fail, once or
//! until cleared, and make the disk look full.
//!
//! Tests hand a [`StorageFaults`] to the backend (`SledOptions::faults`) and
//! arm it while appends run. The backend asks it at each step of a group
//! commit, so an injected failure takes exactly the path a real one would:
//! no acknowledgement, the batch taken back, the store usable once the
//! fault clears. Production opens with `faults: None`.

use std::sync::{Arc, Mutex};

/// The step of a group commit a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// Handing the batch to the storage engine (nothing of it lands).
    Write,
    /// The engine's flush (the batch is written but not durable).
    Flush,
    /// The `fdatasync` after the flush (the batch may or may not be durable).
    Sync,
}

/// How long an armed fault lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultSpan {
    /// Only the Nth operation fails.
    Once,
    /// The Nth operation and every later one fail until [`StorageFaults::clear`].
    Forever,
}

/// One armed fault.
#[derive(Debug, Clone, Copy)]
struct Armed {
    point: FaultPoint,
    /// The operation count at `point` at which it fires.
    at: u64,
    span: FaultSpan,
}

/// What is armed and how many operations each point has seen.
#[derive(Debug, Default)]
struct FaultState {
    /// Operations seen, indexed by [`point_index`].
    seen: [u64; 3],
    armed: Vec<Armed>,
    /// Overrides the free space the disk reports, when set.
    free_bytes: Option<u64>,
}

/// A shared, thread-safe plan of storage faults (see the module doc).
#[derive(Debug, Default)]
pub struct StorageFaults {
    state: Mutex<FaultState>,
}

fn point_index(point: FaultPoint) -> usize {
    match point {
        FaultPoint::Write => 0,
        FaultPoint::Flush => 1,
        FaultPoint::Sync => 2,
    }
}

impl StorageFaults {
    /// A plan with nothing armed.
    pub fn new() -> Arc<Self> {
        Arc::new(StorageFaults::default())
    }

    /// Makes the `nth` operation at `point` from now on fail (1 = the next);
    /// with [`FaultSpan::Forever`] every later one fails too, until cleared.
    pub fn fail(&self, point: FaultPoint, nth: u64, span: FaultSpan) {
        let mut state = self.lock();
        let at = state.seen[point_index(point)] + nth.max(1);
        state.armed.push(Armed { point, at, span });
    }

    /// Disarms every fault and gives the disk its real free space back.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.armed.clear();
        state.free_bytes = None;
    }

    /// Makes the disk report `free_bytes` free (`None`: the real figure).
    pub fn set_free_bytes(&self, free_bytes: Option<u64>) {
        self.lock().free_bytes = free_bytes;
    }

    /// The free space the disk is made to report, if overridden.
    pub fn free_bytes(&self) -> Option<u64> {
        self.lock().free_bytes
    }

    /// Operations seen at `point` so far (failed ones included).
    pub fn seen(&self, point: FaultPoint) -> u64 {
        self.lock().seen[point_index(point)]
    }

    /// Counts one operation at `point`; `Err` with a reason if it must fail.
    pub fn check(&self, point: FaultPoint) -> Result<(), String> {
        let mut state = self.lock();
        let i = point_index(point);
        state.seen[i] += 1;
        let n = state.seen[i];
        let fires = state.armed.iter().any(|a| {
            a.point == point
                && match a.span {
                    FaultSpan::Once => a.at == n,
                    FaultSpan::Forever => a.at <= n,
                }
        });
        if fires {
            Err(format!("injected failure of {point:?} #{n}"))
        } else {
            Ok(())
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        // A panicking test thread must not hide the plan from the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_fires_on_the_nth_operation_only() {
        let faults = StorageFaults::new();
        faults.check(FaultPoint::Flush).expect("before arming");
        faults.fail(FaultPoint::Flush, 2, FaultSpan::Once);
        let results: Vec<bool> = (0..4)
            .map(|_| faults.check(FaultPoint::Flush).is_ok())
            .collect();
        assert_eq!(results, [true, false, true, true]);
        assert!(
            faults.check(FaultPoint::Write).is_ok(),
            "other points untouched"
        );
    }

    #[test]
    fn forever_fires_until_cleared() {
        let faults = StorageFaults::new();
        faults.fail(FaultPoint::Sync, 1, FaultSpan::Forever);
        assert!(faults.check(FaultPoint::Sync).is_err());
        assert!(faults.check(FaultPoint::Sync).is_err());
        faults.set_free_bytes(Some(0));
        faults.clear();
        assert!(faults.check(FaultPoint::Sync).is_ok());
        assert_eq!(faults.free_bytes(), None);
        assert_eq!(faults.seen(FaultPoint::Sync), 3);
    }
}
