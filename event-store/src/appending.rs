//! What every backend's writer does the same way: the shape checks of an
//! append, the idempotency and concurrency checks against what the log
//! holds, the records it builds, and waiting for the writer's answer.

use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::limits::{APPEND_ACK_WAIT_MILLIS_MAX, APPEND_EVENTS_MAX};
use crate::record::{
    same_request, AppendOutcome, AppendRequest, Appended, Hash, NewEvent, PriorCommand,
    RecordedEvent, Visibility, HASH_BYTES,
};
use crate::schema::{StreamKind, SCHEMA_VERSION};

/// The reply to one append.
pub(crate) type AppendReply = oneshot::Sender<Result<Appended, StoreError>>;

/// What a writer's queue carries.
pub(crate) enum WriterMsg {
    /// Append and reply once durable.
    Append(Box<AppendRequest>, AppendReply),
    /// Finish everything queued before, make it durable, stop.
    Close(CloseReply),
}

/// The reply to a close.
pub(crate) type CloseReply = oneshot::Sender<Result<(), StoreError>>;

/// A drained batch of messages: the appends to carry, and the close
/// request if one came (appends queued after it are refused as `Closed`,
/// further closes answered at once).
pub(crate) fn sort_messages(
    msgs: impl IntoIterator<Item = WriterMsg>,
) -> (Vec<(Box<AppendRequest>, AppendReply)>, Option<CloseReply>) {
    let mut appends = Vec::new();
    let mut close = None;
    for m in msgs {
        match m {
            WriterMsg::Append(req, reply) if close.is_none() => appends.push((req, reply)),
            WriterMsg::Append(_, reply) => {
                let _ = reply.send(Err(StoreError::Closed));
            }
            WriterMsg::Close(reply) if close.is_none() => close = Some(reply),
            WriterMsg::Close(reply) => {
                let _ = reply.send(Ok(()));
            }
        }
    }
    (appends, close)
}

/// Closes a writer's queue and answers what is still in it.
pub(crate) fn refuse_queued(queue: &mut mpsc::Receiver<WriterMsg>) {
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
}

/// Sends the append that `message` wraps to a writer's queue and waits for
/// its answer, bounded: a wedged writer must not hang every caller with it.
pub(crate) async fn submit<M>(
    queue: &mpsc::Sender<M>,
    message: impl FnOnce(AppendReply) -> M,
) -> Result<Appended, StoreError> {
    let (reply, answer) = oneshot::channel();
    let wait = std::time::Duration::from_millis(APPEND_ACK_WAIT_MILLIS_MAX);
    let stalled = || {
        tracing::error!(
            wait_ms = APPEND_ACK_WAIT_MILLIS_MAX,
            "the writer did not answer in time"
        );
        StoreError::Unavailable(format!(
            "no acknowledgement within {APPEND_ACK_WAIT_MILLIS_MAX} ms: the storage is stalled; \
             the append is not acknowledged (retry with the same command id)"
        ))
    };
    let deadline = tokio::time::Instant::now() + wait;
    tokio::time::timeout_at(deadline, queue.send(message(reply)))
        .await
        .map_err(|_| stalled())?
        .map_err(|_| StoreError::Closed)?;
    tokio::time::timeout_at(deadline, answer)
        .await
        .map_err(|_| stalled())?
        .map_err(|_| StoreError::Closed)?
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

/// The answer to `req`, whose command id `first` appended already: that
/// append's outcome as a duplicate, unless it answered another request.
pub(crate) fn replay(
    req: &AppendRequest,
    first: PriorCommand,
) -> Result<AppendOutcome, StoreError> {
    if !same_request(
        first.request_fingerprint.as_ref(),
        req.request_fingerprint.as_ref(),
    ) {
        return Err(StoreError::CommandReused {
            command_id: req.command_id,
        });
    }
    Ok(AppendOutcome {
        duplicate: true,
        ..first.outcome
    })
}

/// What a writer knows about the end of a stream it appends to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamHead {
    /// The stream's version (its last event's).
    pub(crate) version: u64,
    /// The kind of events it holds.
    pub(crate) kind: StreamKind,
    /// The tenant it belongs to.
    pub(crate) tenant: String,
}

/// Checks `req` (of stream kind `kind`) against its stream's head:
/// expected version, then same kind and tenant. Returns the version now.
pub(crate) fn check_stream(
    req: &AppendRequest,
    kind: StreamKind,
    head: Option<&StreamHead>,
) -> Result<u64, StoreError> {
    let actual = head.map_or(0, |h| h.version);
    if !req.expected.matches(actual) {
        return Err(StoreError::Conflict {
            expected: req.expected.as_number(),
            actual,
        });
    }
    if let Some(h) = head {
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
    Ok(actual)
}

/// The record of `event`, the `index`th of `req`, at `position` and stream
/// version `version`, chained to `prev_hash` (its own hash still unset).
/// The time is cut to the microseconds the record stores, so what is
/// returned equals what reads back.
pub(crate) fn new_record(
    req: &AppendRequest,
    event: NewEvent,
    position: u64,
    version: u64,
    prev_hash: Hash,
) -> RecordedEvent {
    let recorded_at = chrono::DateTime::from_timestamp_micros(req.recorded_at.timestamp_micros())
        .unwrap_or(req.recorded_at);
    RecordedEvent {
        position,
        stream_id: req.stream_id,
        stream_version: version,
        event_id: event.event_id,
        command_id: req.command_id,
        request_fingerprint: req.request_fingerprint,
        correlation_id: req.correlation_id,
        tenant: req.tenant.clone(),
        actor: req.actor.clone(),
        recorded_at,
        schema_version: SCHEMA_VERSION,
        visibility: event.visibility,
        payload: event.payload,
        prev_hash,
        hash: [0; HASH_BYTES],
    }
}
