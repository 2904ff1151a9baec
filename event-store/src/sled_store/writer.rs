//! The single writer: group commit of concurrent appends.
//!
//! It drains up to `BATCH_APPENDS_MAX` queued appends, validates each against
//! the stream heads (including earlier appends of the same batch), writes all
//! accepted records, index entries, command outcomes and the head meta in ONE
//! atomic sled batch, flushes once, and only then acknowledges and publishes.
//! It runs on its own thread because sled's writes and fsync block.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use crate::codec;
use crate::error::StoreError;
use crate::limits::{
    APPEND_EVENTS_MAX, BATCH_APPENDS_MAX, RECORD_BYTES_MAX, STREAM_HEADS_CACHED_MAX,
};
use crate::record::{AppendOutcome, AppendRequest, Hash, RecordedEvent, Tenant, Visibility};
use crate::schema::{StreamId, StreamKind, SCHEMA_VERSION};

use super::keys;
use super::Shared;

/// The reply to one append.
pub(crate) type AppendReply = oneshot::Sender<Result<AppendOutcome, StoreError>>;

/// What the writer's queue carries.
pub(crate) enum WriterMsg {
    /// Append and reply once durable.
    Append(Box<AppendRequest>, AppendReply),
    /// Finish everything queued before, flush, stop.
    Close(oneshot::Sender<Result<(), StoreError>>),
}

/// What the writer knows about a stream's end.
#[derive(Debug, Clone)]
struct StreamHead {
    version: u64,
    kind: StreamKind,
    tenant: Tenant,
}

/// An accepted append, staged into the batch but not yet durable.
struct Staged {
    outcome: AppendOutcome,
    records: Vec<Arc<RecordedEvent>>,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    live: broadcast::Sender<Arc<RecordedEvent>>,
    heads: HashMap<StreamId, StreamHead>,
    head: u64,
    head_hash: Hash,
    flushes: u64,
    fail_flush_at: Option<u64>,
    /// Set when a failed batch could not be undone: nothing more is accepted.
    poisoned: Option<String>,
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        live: broadcast::Sender<Arc<RecordedEvent>>,
        head: u64,
        head_hash: Hash,
        fail_flush_at: Option<u64>,
    ) -> Self {
        Writer {
            shared,
            live,
            heads: HashMap::new(),
            head,
            head_hash,
            flushes: 0,
            fail_flush_at,
            poisoned: None,
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
            let mut appends = Vec::with_capacity(msgs.len());
            let mut close = None;
            for m in msgs.drain(..) {
                match m {
                    WriterMsg::Append(req, reply) if close.is_none() => appends.push((req, reply)),
                    WriterMsg::Append(_, reply) => {
                        let _ = reply.send(Err(StoreError::Closed));
                    }
                    WriterMsg::Close(reply) => {
                        if close.is_none() {
                            close = Some(reply);
                        } else {
                            let _ = reply.send(Ok(()));
                        }
                    }
                }
            }
            if !appends.is_empty() {
                self.commit(appends);
            }
            if let Some(reply) = close {
                queue.close();
                while let Ok(m) = queue.try_recv() {
                    match m {
                        WriterMsg::Append(_, r) => {
                            let _ = r.send(Err(StoreError::Closed));
                        }
                        WriterMsg::Close(r) => {
                            let _ = r.send(Ok(()));
                        }
                    }
                }
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
        let start_head = self.head;
        let start_hash = self.head_hash;
        let mut batch = sled::Batch::default();
        let mut written: Vec<Vec<u8>> = Vec::new();
        let mut in_batch: HashMap<Uuid, AppendOutcome> = HashMap::new();
        let mut results: Vec<Result<Staged, StoreError>> = Vec::with_capacity(appends.len());
        for (req, _) in &appends {
            let staged = self.stage(req, &mut in_batch, &mut batch, &mut written);
            results.push(staged);
        }
        if self.head != start_head {
            batch.insert(
                &keys::head_key(),
                &keys::head_meta(self.head, &self.head_hash)[..],
            );
            if let Err(e) = self.write(batch) {
                self.undo(written, start_head, start_hash);
                for (_, reply) in appends {
                    let _ = reply.send(Err(StoreError::Unavailable(e.clone())));
                }
                return;
            }
            self.shared.set_durable_head(self.head);
        }
        let mut published = Vec::new();
        for ((_, reply), result) in appends.into_iter().zip(results) {
            let reply_value = result.map(|staged| {
                published.extend(staged.records);
                staged.outcome
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
    }

    fn write(&mut self, batch: sled::Batch) -> Result<(), String> {
        self.shared
            .log
            .apply_batch(batch)
            .map_err(|e| e.to_string())?;
        self.flushes += 1;
        if self.fail_flush_at == Some(self.flushes) {
            return Err(format!("injected failure of flush {}", self.flushes));
        }
        self.shared
            .db
            .flush()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Takes back a batch that was applied but not made durable, so that
    /// nothing unacknowledged stays visible, and forgets the cached heads.
    fn undo(&mut self, written: Vec<Vec<u8>>, start_head: u64, start_hash: Hash) {
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
        }
        self.head = start_head;
        self.head_hash = start_hash;
        self.heads.clear();
    }

    /// Checks one append against the heads and, if accepted, adds its keys
    /// to the batch and advances the in-memory heads.
    fn stage(
        &mut self,
        req: &AppendRequest,
        in_batch: &mut HashMap<Uuid, AppendOutcome>,
        batch: &mut sled::Batch,
        written: &mut Vec<Vec<u8>>,
    ) -> Result<Staged, StoreError> {
        let kind = validate_shape(req)?;
        if let Some(first) = in_batch.get(&req.command_id) {
            return Ok(duplicate(*first));
        }
        if let Some(bytes) = self.shared.log.get(keys::command_key(&req.command_id))? {
            let first: AppendOutcome =
                codec::from_bincode(&bytes).map_err(|e| StoreError::Corrupt {
                    position: 0,
                    reason: format!("command outcome of {}: {e}", req.command_id),
                })?;
            return Ok(duplicate(first));
        }
        let head = self.stream_head(&req.stream_id)?;
        let actual = head.as_ref().map_or(0, |h| h.version);
        if !req.expected.matches(actual) {
            return Err(StoreError::Conflict {
                expected: req.expected.as_number(),
                actual,
            });
        }
        if let Some(h) = &head {
            if h.kind != kind {
                return Err(StoreError::Invalid(format!(
                    "stream {} holds {:?} events, not {:?}",
                    req.stream_id, h.kind, kind
                )));
            }
            if h.tenant != req.tenant {
                return Err(StoreError::Invalid(format!(
                    "stream {} belongs to another tenant",
                    req.stream_id
                )));
            }
        }
        // Encode everything before touching any state, so a too-large event
        // rejects the whole append and nothing else.
        let recorded_at =
            chrono::DateTime::from_timestamp_micros(req.recorded_at.timestamp_micros())
                .unwrap_or(req.recorded_at);
        let mut prev_hash = self.head_hash;
        let mut encoded = Vec::with_capacity(req.events.len());
        for (i, ev) in req.events.iter().enumerate() {
            let mut rec = RecordedEvent {
                position: self.head + 1 + i as u64,
                stream_id: req.stream_id,
                stream_version: actual + 1 + i as u64,
                event_id: ev.event_id,
                command_id: req.command_id,
                correlation_id: req.correlation_id,
                tenant: req.tenant.clone(),
                actor: req.actor.clone(),
                recorded_at,
                schema_version: SCHEMA_VERSION,
                visibility: ev.visibility,
                payload: ev.payload.clone(),
                prev_hash,
                hash: [0; crate::record::HASH_BYTES],
            };
            let (bytes, hash) = codec::encode(&rec)?;
            if bytes.len() > RECORD_BYTES_MAX {
                return Err(StoreError::Invalid(format!(
                    "event {} encodes to {} bytes, more than {RECORD_BYTES_MAX}",
                    i,
                    bytes.len()
                )));
            }
            rec.hash = hash;
            prev_hash = hash;
            encoded.push((rec, bytes));
        }
        let first_position = self.head + 1;
        let mut records = Vec::with_capacity(encoded.len());
        for (rec, bytes) in encoded {
            let rk = keys::record_key(rec.position);
            let sk = keys::stream_key(&rec.stream_id, rec.stream_version);
            batch.insert(&rk, bytes);
            batch.insert(&sk, &rec.position.to_be_bytes());
            written.push(rk.to_vec());
            written.push(sk.to_vec());
            self.head = rec.position;
            self.head_hash = rec.hash;
            records.push(Arc::new(rec));
        }
        let outcome = AppendOutcome {
            stream_id: req.stream_id,
            version: actual + req.events.len() as u64,
            first_position,
            position: self.head,
            duplicate: false,
        };
        let ck = keys::command_key(&req.command_id);
        batch.insert(&ck, codec::to_bincode(&outcome)?);
        written.push(ck.to_vec());
        in_batch.insert(req.command_id, outcome);
        self.heads.insert(
            req.stream_id,
            StreamHead {
                version: outcome.version,
                kind,
                tenant: req.tenant.clone(),
            },
        );
        Ok(Staged { outcome, records })
    }

    /// The head of `stream` from the cache, or from disk on a miss.
    fn stream_head(&mut self, stream: &StreamId) -> Result<Option<StreamHead>, StoreError> {
        if let Some(h) = self.heads.get(stream) {
            return Ok(Some(h.clone()));
        }
        let Some(item) = self
            .shared
            .log
            .scan_prefix(keys::stream_prefix(stream))
            .next_back()
        else {
            return Ok(None);
        };
        let (key, value) = item?;
        let corrupt = |reason: &str| StoreError::Corrupt {
            position: 0,
            reason: format!("stream index of {stream}: {reason}"),
        };
        let version =
            keys::parse_stream_key_version(&key).ok_or_else(|| corrupt("malformed key"))?;
        let position = keys::parse_u64(&value).ok_or_else(|| corrupt("malformed value"))?;
        let bytes = self
            .shared
            .log
            .get(keys::record_key(position))?
            .ok_or_else(|| corrupt("indexed record missing"))?;
        let rec = codec::decode(position, &bytes)?;
        let head = StreamHead {
            version,
            kind: rec.payload.stream_kind(),
            tenant: rec.tenant,
        };
        self.heads.insert(*stream, head.clone());
        Ok(Some(head))
    }
}

fn duplicate(first: AppendOutcome) -> Staged {
    Staged {
        outcome: AppendOutcome {
            duplicate: true,
            ..first
        },
        records: Vec::new(),
    }
}

/// Checks what can be checked without the log: size, one stream kind,
/// internal payloads stored as internal. Returns the stream kind.
pub(crate) fn validate_shape(req: &AppendRequest) -> Result<StreamKind, StoreError> {
    let Some(first) = req.events.first() else {
        return Err(StoreError::Invalid(
            "an append needs at least one event".into(),
        ));
    };
    if req.events.len() > APPEND_EVENTS_MAX {
        return Err(StoreError::Invalid(format!(
            "{} events in one append, at most {APPEND_EVENTS_MAX}",
            req.events.len()
        )));
    }
    let kind = first.payload.stream_kind();
    for ev in &req.events {
        if ev.payload.stream_kind() != kind {
            return Err(StoreError::Invalid(
                "events of different stream kinds in one append".into(),
            ));
        }
        if ev.payload.is_internal() && ev.visibility != Visibility::Internal {
            return Err(StoreError::Invalid(format!(
                "event {} is internal but not stored as internal",
                ev.event_id
            )));
        }
    }
    Ok(kind)
}
