//! Folding the in-memory index into index keys, off the writer's path.
//!
//! A chunk only covers appends that are already durable, and it is derived
//! data: if it is lost in a crash before sled's next flush, the store
//! rebuilds the same entries from the log on open. So it needs no flush of
//! its own and never delays an acknowledgement. The indexer thread folds
//! chunks when the writer signals that the lag passed `INDEX_LAG_EVENTS`; the
//! writer folds them itself only past `INDEX_LAG_EVENTS_MAX` (backpressure).

use std::sync::mpsc;
use std::sync::Arc;

use crate::error::StoreError;
use crate::limits::{INDEX_CHUNK_KEYS_MAX, INDEX_KEYS_PER_APPLY_MAX};

use super::{keys, Shared};

/// Folds the oldest pending appends into index keys until fewer than
/// `lag_events` events are pending. Chunks are written one at a time.
pub(crate) fn catch_up(shared: &Shared, lag_events: u64) -> Result<(), StoreError> {
    let _one_at_a_time = shared.chunking.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let chunk = {
            let pending = shared.pending.read().unwrap_or_else(|e| e.into_inner());
            if pending.events() < lag_events {
                return Ok(());
            }
            pending.chunk(INDEX_CHUNK_KEYS_MAX)
        };
        let Some(mut chunk) = chunk else {
            return Ok(());
        };
        // Small batches, the last one moving the indexed-through position.
        // A crash in between leaves runs beyond it; the same appends are
        // then indexed again, and readers skip the repeated spans.
        let mut writes = std::mem::take(&mut chunk.writes);
        while writes.len() > INDEX_KEYS_PER_APPLY_MAX {
            let rest = writes.split_off(INDEX_KEYS_PER_APPLY_MAX);
            shared.log.apply_batch(batch_of(writes))?;
            writes = rest;
        }
        let mut batch = batch_of(writes);
        batch.insert(&keys::indexed_key(), &chunk.through.to_be_bytes()[..]);
        // On disk before it leaves memory: readers look in memory first, then
        // on disk, so they see every append at least once.
        shared.log.apply_batch(batch)?;
        shared
            .pending
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .indexed(&chunk);
    }
}

fn batch_of(writes: Vec<(Vec<u8>, Vec<u8>)>) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for (key, value) in writes {
        batch.insert(key, value);
    }
    batch
}

/// Runs the indexer until every signal sender is gone.
pub(crate) fn run(shared: Arc<Shared>, signals: mpsc::Receiver<()>, lag_events: u64) {
    while signals.recv().is_ok() {
        if let Err(e) = catch_up(&shared, lag_events) {
            // The log is intact and the index stays in memory; the next
            // signal (or the writer, past the hard limit) tries again.
            tracing::warn!(error = %e, "could not write an index chunk");
        }
    }
    // The last chunk may have come after the writer's last flush; not needed
    // for correctness (the log holds it all), but it spares the next open.
    if let Err(e) = shared.db.flush() {
        tracing::warn!(error = %e, "could not flush the last index chunk");
    }
}
