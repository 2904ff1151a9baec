//! The disk-space guard: appends are refused while the store's filesystem
//! has less than a reserve free.
//!
//! sled 0.34 treats an I/O error as fatal: once a flush fails (ENOSPC
//! included) every later call returns that error until the database is
//! reopened. Refusing appends *before* sled runs out of room turns a full
//! disk into a clean, temporary 503 that ends by itself when space returns,
//! and leaves the reserve for sled's own bookkeeping (segment rewrites,
//! snapshots) and the side trees.

use std::path::PathBuf;

use crate::error::StoreError;
use crate::faults::StorageFaults;

/// Watches the free space of the filesystem holding the store.
#[derive(Debug)]
pub(crate) struct SpaceGuard {
    /// Any path on the store's filesystem (its directory).
    dir: PathBuf,
    /// Appends are refused below this many free bytes (0: never).
    reserve_bytes: u64,
    /// Whether the last check refused, so that only changes are logged.
    full: bool,
}

impl SpaceGuard {
    /// A guard for the filesystem of `dir`.
    pub(crate) fn new(dir: PathBuf, reserve_bytes: u64) -> Self {
        SpaceGuard {
            dir,
            reserve_bytes,
            full: false,
        }
    }

    /// `Err(StorageFull)` while free space is below the reserve. One
    /// `statvfs` per group commit: microseconds, next to a flush's milliseconds.
    pub(crate) fn check(&mut self, faults: Option<&StorageFaults>) -> Result<(), StoreError> {
        if self.reserve_bytes == 0 {
            return Ok(());
        }
        let free_bytes = match faults.and_then(StorageFaults::free_bytes) {
            Some(free) => free,
            None => fs2::available_space(&self.dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot read the free disk space: {e}"))
            })?,
        };
        let full = free_bytes < self.reserve_bytes;
        if full != self.full {
            if full {
                tracing::error!(
                    free_bytes,
                    reserve_bytes = self.reserve_bytes,
                    "disk below its reserve: appends refused until space returns"
                );
            } else {
                tracing::info!(free_bytes, "disk space is back: appends accepted again");
            }
            self.full = full;
        }
        if full {
            return Err(StoreError::StorageFull {
                free_bytes,
                reserve_bytes: self.reserve_bytes,
            });
        }
        Ok(())
    }
}
