//! The single writer: group commit of concurrent appends.
//!
//! It drains up to `BATCH_APPENDS_MAX` queued appends, validates each against
//! the stream heads (including earlier appends of the same batch) and the
//! command index, packs all accepted records into log pages, and writes the
//! pages and the head meta in ONE atomic sled batch, flushes once, and only
//! then indexes the appends in memory, acknowledges and publishes (the
//! indexer folds them into index keys later). It runs on its own thread
//! because sled's writes and fsync block.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use crate::appending::{self, AppendReply, StreamHead, WriterMsg};
use crate::codec;
use crate::error::StoreError;
use crate::faults::{FaultPoint, StorageFaults};
use crate::limits::{
    BATCH_APPENDS_MAX, INDEX_LAG_EVENTS, INDEX_LAG_EVENTS_MAX, LOG_PAGE_BYTES_TARGET,
    RECORD_BYTES_MAX, STREAM_HEADS_CACHED_MAX,
};
use crate::record::{AppendOutcome, AppendRequest, Appended, Hash, PriorCommand, RecordedEvent};
use crate::schema::StreamId;

use super::index::{self, IndexedAppend, Span};
use super::space::SpaceGuard;
use super::{indexer, keys, page, Shared};

/// How far a failed group commit got.
struct WriteFailure {
    /// Whether the batch reached sled (and must be taken back).
    applied: bool,
    reason: String,
}

/// An accepted append, staged into the batch but not yet durable.
struct Staged {
    outcome: AppendOutcome,
    records: Vec<Arc<RecordedEvent>>,
    /// What the index learns once it is durable (`None` for a duplicate).
    indexed: Option<IndexedAppend>,
}

/// The encoded records of one batch, framed back to back as in a page.
#[derive(Default)]
struct Frames {
    bytes: Vec<u8>,
    /// End offset of each frame in `bytes`.
    ends: Vec<usize>,
}

impl Frames {
    /// Encodes `rec` in place as the next frame; returns its hash.
    fn push(&mut self, rec: &RecordedEvent) -> Result<Hash, StoreError> {
        let hash = page::push_with(&mut self.bytes, |out| codec::encode_into(rec, out))?;
        self.ends.push(self.bytes.len());
        Ok(hash)
    }

    /// Length of the last record (without its frame header).
    fn last_len(&self) -> usize {
        let n = self.ends.len();
        let start = if n >= 2 { self.ends[n - 2] } else { 0 };
        self.ends
            .last()
            .map_or(0, |end| end - start - page::FRAME_LENGTH_BYTES)
    }

    fn mark(&self) -> (usize, usize) {
        (self.bytes.len(), self.ends.len())
    }

    fn reset(&mut self, (bytes, frames): (usize, usize)) {
        self.bytes.truncate(bytes);
        self.ends.truncate(frames);
    }
}

/// Where the writer stands after opening the log.
pub(crate) struct WriterStart {
    pub(crate) head: u64,
    pub(crate) head_hash: Hash,
    /// Whether the layout version key is written.
    pub(crate) layout_written: bool,
    /// Wakes the indexer (it stops when the writer drops this).
    pub(crate) index_signal: std::sync::mpsc::SyncSender<()>,
    /// Why appends must be refused from the start, if they must.
    pub(crate) poisoned: Option<String>,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    live: broadcast::Sender<Arc<RecordedEvent>>,
    heads: HashMap<StreamId, StreamHead>,
    head: u64,
    head_hash: Hash,
    layout_written: bool,
    index_signal: std::sync::mpsc::SyncSender<()>,
    /// Injected faults (tests only).
    faults: Option<Arc<StorageFaults>>,
    /// Refuses batches while the disk is below its reserve.
    space: SpaceGuard,
    /// Set when a failed batch could not be undone: nothing more is accepted.
    poisoned: Option<String>,
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        live: broadcast::Sender<Arc<RecordedEvent>>,
        start: WriterStart,
        faults: Option<Arc<StorageFaults>>,
        space: SpaceGuard,
    ) -> Self {
        Writer {
            shared,
            live,
            heads: HashMap::new(),
            head: start.head,
            head_hash: start.head_hash,
            layout_written: start.layout_written,
            index_signal: start.index_signal,
            faults,
            space,
            poisoned: start.poisoned,
        }
    }

    /// Runs until the queue closes or a `Close` arrives.
    pub(crate) fn run(mut self, mut queue: mpsc::Receiver<WriterMsg>) {
        let mut msgs = Vec::with_capacity(BATCH_APPENDS_MAX);
        loop {
            let Some(first) = queue.blocking_recv() else {
                let _ = self.shared.db.flush();
                return;
            };
            msgs.push(first);
            while msgs.len() < BATCH_APPENDS_MAX {
                match queue.try_recv() {
                    Ok(m) => msgs.push(m),
                    Err(_) => break,
                }
            }
            let (appends, close) = appending::sort_messages(msgs.drain(..));
            if !appends.is_empty() {
                self.commit(appends);
            }
            if let Some(reply) = close {
                appending::refuse_queued(&mut queue);
                let flushed = self.shared.db.flush().map(|_| ()).map_err(StoreError::from);
                let _ = reply.send(flushed);
                return;
            }
        }
    }

    /// Validates, writes and flushes one batch, then replies and publishes.
    fn commit(&mut self, appends: Vec<(Box<AppendRequest>, AppendReply)>) {
        if let Some(reason) = &self.poisoned {
            for (_, reply) in appends {
                let _ = reply.send(Err(StoreError::Unavailable(reason.clone())));
            }
            return;
        }
        // Checked before anything is staged: a refused batch leaves no state behind.
        if let Err(e) = self.space.check(self.faults.as_deref()) {
            for (_, reply) in appends {
                let _ = reply.send(Err(e.clone()));
            }
            return;
        }
        let start_head = self.head;
        let start_hash = self.head_hash;
        let mut frames = Frames::default();
        let mut in_batch: HashMap<Uuid, PriorCommand> = HashMap::new();
        let mut replies = Vec::with_capacity(appends.len());
        let mut results: Vec<Result<Staged, StoreError>> = Vec::with_capacity(appends.len());
        for (req, reply) in appends {
            results.push(self.stage(*req, &mut in_batch, &mut frames));
            replies.push(reply);
        }
        if self.head != start_head {
            let (batch, written) = self.batch(start_head, &frames);
            if let Err(failure) = self.write(batch) {
                tracing::error!(reason = %failure.reason, "group commit failed; nothing acknowledged");
                self.undo(failure.applied.then_some(written), start_head, start_hash);
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Unavailable(failure.reason.clone())));
                }
                return;
            }
        }
        let lag = {
            let mut pending = self
                .shared
                .pending
                .write()
                .unwrap_or_else(|e| e.into_inner());
            for staged in results.iter().flatten() {
                if let Some(a) = staged.indexed {
                    pending.push(a);
                }
            }
            pending.events()
        };
        self.shared.set_durable_head(self.head);
        let mut published = Vec::new();
        for (reply, result) in replies.into_iter().zip(results) {
            let reply_value = result.map(|staged| {
                published.extend(staged.records.iter().cloned());
                Appended {
                    outcome: staged.outcome,
                    records: staged.records,
                }
            });
            let _ = reply.send(reply_value);
        }
        for rec in published {
            // No receivers is fine; lagging receivers find out on their own.
            let _ = self.live.send(rec);
        }
        if self.heads.len() > STREAM_HEADS_CACHED_MAX {
            self.heads.clear();
        }
        if lag >= INDEX_LAG_EVENTS_MAX {
            // The indexer is not keeping up: fold chunks here, after the
            // replies, so that memory stays bounded.
            if let Err(e) = indexer::catch_up(&self.shared, INDEX_LAG_EVENTS_MAX) {
                tracing::warn!(error = %e, "could not write an index chunk");
            }
        } else if lag >= INDEX_LAG_EVENTS {
            // Already signalled if full; gone only when the indexer stopped.
            let _ = self.index_signal.try_send(());
        }
    }

    /// The sled batch of one group commit: the records (positions after
    /// `start_head`) packed into pages and the head meta. Returns it with the
    /// keys it creates (to undo).
    fn batch(&mut self, start_head: u64, frames: &Frames) -> (sled::Batch, Vec<Vec<u8>>) {
        let mut batch = sled::Batch::default();
        let mut written: Vec<Vec<u8>> = Vec::new();
        let mut page_first = start_head + 1;
        let mut page_start = 0;
        let mut frame_start = 0;
        for (i, &frame_end) in frames.ends.iter().enumerate() {
            let full = frame_end - page_start > LOG_PAGE_BYTES_TARGET;
            if full && frame_start > page_start {
                let key = keys::page_key(page_first);
                batch.insert(&key, &frames.bytes[page_start..frame_start]);
                written.push(key.to_vec());
                page_first = start_head + 1 + i as u64;
                page_start = frame_start;
            }
            frame_start = frame_end;
        }
        let key = keys::page_key(page_first);
        batch.insert(&key, &frames.bytes[page_start..]);
        written.push(key.to_vec());
        batch.insert(
            &keys::head_key(),
            &keys::head_meta(self.head, &self.head_hash)[..],
        );
        if !self.layout_written {
            batch.insert(&keys::layout_key(), &keys::layout_value()[..]);
            written.push(keys::layout_key().to_vec());
        }
        (batch, written)
    }

    /// Writes, flushes and syncs one batch; says how far it got if not all the way.
    fn write(&mut self, batch: sled::Batch) -> Result<(), WriteFailure> {
        let before = |reason: String| WriteFailure {
            applied: false,
            reason,
        };
        let after = |reason: String| WriteFailure {
            applied: true,
            reason,
        };
        self.inject(FaultPoint::Write).map_err(before)?;
        self.shared
            .log
            .apply_batch(batch)
            .map_err(|e| before(e.to_string()))?;
        self.inject(FaultPoint::Flush).map_err(after)?;
        self.shared
            .db
            .flush()
            .map_err(|e| after(format!("flush: {e}")))?;
        if let Some(file) = &self.shared.data_file {
            self.inject(FaultPoint::Sync).map_err(after)?;
            file.sync_data()
                .map_err(|e| after(format!("fdatasync: {e}")))?;
        }
        self.layout_written = true;
        Ok(())
    }

    /// Asks the fault plan, if any, whether this step must fail.
    fn inject(&self, point: FaultPoint) -> Result<(), String> {
        match &self.faults {
            Some(faults) => faults.check(point),
            None => Ok(()),
        }
    }

    /// Takes back a batch that was applied but not made durable (`written`
    /// holds its new keys; `None` when it never reached sled), so that
    /// nothing unacknowledged stays visible, and forgets the cached heads.
    ///
    /// The undo is flushed at once so that a crash right after a failed
    /// flush brings the batch back only if the disk already held it; if
    /// that flush fails too, the next successful group commit carries it.
    fn undo(&mut self, written: Option<Vec<Vec<u8>>>, start_head: u64, start_hash: Hash) {
        self.head = start_head;
        self.head_hash = start_hash;
        self.heads.clear();
        let Some(written) = written else { return };
        let mut undo = sled::Batch::default();
        for key in written {
            undo.remove(key);
        }
        if start_head == 0 {
            undo.remove(&keys::head_key());
        } else {
            undo.insert(
                &keys::head_key(),
                &keys::head_meta(start_head, &start_hash)[..],
            );
        }
        if let Err(e) = self.shared.log.apply_batch(undo) {
            tracing::error!(error = %e, "could not undo a failed batch; store refuses further appends");
            self.poisoned = Some(format!("failed batch could not be undone: {e}"));
            return;
        }
        let flushed = self.inject(FaultPoint::Flush).and_then(|()| {
            self.shared
                .db
                .flush()
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        if let Err(e) = flushed {
            tracing::warn!(error = %e, "undo of a failed batch not flushed yet");
        }
    }

    /// Checks one append against the heads and, if accepted, encodes its
    /// records into `frames` and advances the in-memory heads.
    fn stage(
        &mut self,
        mut req: AppendRequest,
        in_batch: &mut HashMap<Uuid, PriorCommand>,
        frames: &mut Frames,
    ) -> Result<Staged, StoreError> {
        let kind = appending::validate_shape(&req)?;
        let prior = match in_batch.get(&req.command_id) {
            Some(first) => Some(*first),
            None => self.shared.prior_command(&req.command_id)?,
        };
        if let Some(first) = prior {
            return appending::replay(&req, first).map(|outcome| Staged {
                outcome,
                records: Vec::new(),
                indexed: None,
            });
        }
        let head = self.stream_head(&req.stream_id)?;
        let actual = appending::check_stream(&req, kind, head.as_ref())?;
        // Encode everything before touching any state, so a too-large event
        // rejects the whole append (its frames are taken back) and nothing else.
        let count = req.events.len() as u64;
        let mark = frames.mark();
        let mut prev_hash = self.head_hash;
        let mut records = Vec::with_capacity(req.events.len());
        let mut events = std::mem::take(&mut req.events);
        for (i, ev) in events.drain(..).enumerate() {
            let at = i as u64 + 1;
            let mut rec = appending::new_record(&req, ev, self.head + at, actual + at, prev_hash);
            let encoded = frames.push(&rec);
            let hash = match encoded {
                Ok(hash) => hash,
                Err(e) => {
                    frames.reset(mark);
                    return Err(e);
                }
            };
            let bytes = frames.last_len();
            if bytes > RECORD_BYTES_MAX {
                frames.reset(mark);
                return Err(StoreError::Invalid(format!(
                    "event {i} encodes to {bytes} bytes, more than {RECORD_BYTES_MAX}"
                )));
            }
            rec.hash = hash;
            prev_hash = hash;
            records.push(Arc::new(rec));
        }
        let first_position = self.head + 1;
        self.head += count;
        self.head_hash = prev_hash;
        let indexed = IndexedAppend {
            stream: req.stream_id,
            command: req.command_id,
            span: Span {
                first_version: actual + 1,
                first_position,
                count,
            },
        };
        let outcome = indexed.outcome(false);
        in_batch.insert(
            req.command_id,
            PriorCommand {
                outcome,
                request_fingerprint: req.request_fingerprint,
            },
        );
        self.heads.insert(
            req.stream_id,
            StreamHead {
                version: outcome.version,
                kind,
                tenant: req.tenant,
            },
        );
        Ok(Staged {
            outcome,
            records,
            indexed: Some(indexed),
        })
    }

    /// The head of `stream` from the cache, or from the index on a miss.
    fn stream_head(&mut self, stream: &StreamId) -> Result<Option<StreamHead>, StoreError> {
        if let Some(h) = self.heads.get(stream) {
            return Ok(Some(h.clone()));
        }
        let pending = self
            .shared
            .pending
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .stream_last(stream);
        let last = match pending {
            Some(span) => Some(span),
            None => index::last_span(&self.shared.log, stream)?,
        };
        let Some(last) = last else {
            return Ok(None);
        };
        let rec = self.shared.record_at(last.last_position())?;
        if rec.stream_id != *stream || rec.stream_version != last.last_version() {
            return Err(StoreError::Corrupt {
                position: rec.position,
                reason: format!("stream index of {stream} does not match the record"),
            });
        }
        let head = StreamHead {
            version: last.last_version(),
            kind: rec.payload.stream_kind(),
            tenant: rec.tenant,
        };
        self.heads.insert(*stream, head.clone());
        Ok(Some(head))
    }
}
