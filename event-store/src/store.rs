//! The event store's interface. Everything above this trait is backend
//! agnostic: it may not assume sled, nor that one process owns the log.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Stream;
use uuid::Uuid;

use crate::error::StoreError;
use crate::record::{AppendOutcome, AppendRequest, Appended, PriorCommand, RecordedEvent};
use crate::schema::StreamId;

/// A subscription: recorded events in position order, without gaps. Ends
/// with `Err(Lagged)` if the subscriber falls too far behind.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<Arc<RecordedEvent>, StoreError>> + Send>>;

/// Result of walking the whole log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// The log's head position.
    pub head: u64,
    /// The first failure, if any: (position, reason).
    pub failure: Option<(u64, String)>,
}

impl VerifyReport {
    /// True when every record passed.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// An append-only event log with optimistic concurrency and idempotency.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends all events of `req` to one stream atomically, or none.
    /// Returns only after the events are durable. A `command_id` seen before
    /// returns the first outcome with `duplicate: true` and appends nothing,
    /// unless both appends carry request fingerprints and they differ: then
    /// it is refused with [`StoreError::CommandReused`].
    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError>;

    /// [`EventStore::append`], also returning the appended records as
    /// stored (none for a duplicate). The default reads them back; a store
    /// that has them at hand returns them directly.
    async fn append_recorded(&self, req: AppendRequest) -> Result<Appended, StoreError> {
        let count = req.events.len();
        let outcome = self.append(req).await?;
        if outcome.duplicate || count == 0 {
            return Ok(Appended {
                outcome,
                records: Vec::new(),
            });
        }
        let first = (outcome.version + 1).saturating_sub(count as u64);
        let records = self
            .read_stream(outcome.stream_id, first, count)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect();
        Ok(Appended { outcome, records })
    }

    /// The first append of `command_id`, if the log holds one, with the
    /// request fingerprint it was stored with. For callers that must know
    /// before appending elsewhere (a create allocates its number on another
    /// stream first); [`EventStore::append`] checks again on its own.
    async fn find_command(&self, command_id: Uuid) -> Result<Option<PriorCommand>, StoreError>;

    /// Events of one stream with version ≥ `from_version`, at most `limit`
    /// (capped at `limits::READ_PAGE_MAX`); fewer only at the stream's end
    /// as of this read (`paging::Pages` relies on it).
    async fn read_stream(
        &self,
        stream: StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Events with position ≥ `from_position`, at most `limit` (capped);
    /// fewer only at the log's durable head as of this read.
    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The current version of a stream (0 if it does not exist).
    async fn stream_version(&self, stream: StreamId) -> Result<u64, StoreError>;

    /// The position of the last durable event (0 for an empty log).
    async fn head(&self) -> Result<u64, StoreError>;

    /// Every event with position ≥ `from_position`, first from the log, then
    /// live, with no gap and no duplicate at the seam.
    fn subscribe(&self, from_position: u64) -> EventStream;

    /// Walks the whole log checking checksums, contiguity and the hash chain,
    /// calling `progress(done, total)` as it goes.
    async fn verify(
        &self,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<VerifyReport, StoreError>;

    /// Waits until every acknowledged write is durable and stops the writer.
    async fn close(&self) -> Result<(), StoreError>;
}

/// A whole backend: the log and the side trees beside it (what `serve`
/// and the offline tools open, on either store).
pub trait Storage: EventStore + crate::kv::KvProvider {}

impl<T: EventStore + crate::kv::KvProvider> Storage for T {}
