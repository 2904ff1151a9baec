//! The snapshot store: save aggregate states, load = snapshot + tail.

use std::sync::Arc;

use event_store::record::{Hash, HASH_BYTES};
use event_store::{EventStore, KvTree, Pages, RecordedEvent, StreamId};
use tracing::{debug, warn};

/// Most bytes one decoded aggregate snapshot may claim (64 MiB).
pub const SNAPSHOT_DECODE_BYTES_MAX: usize = 64 << 20;

use crate::aggregate::Aggregate;
use crate::envelope::Envelope;
use crate::error::SnapshotError;
use crate::keys;

/// Default number of events between two snapshots of one stream.
pub const DEFAULT_EVERY_EVENTS: u64 = 64;

/// When to take snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotConfig {
    /// A snapshot is written when a load replayed at least this many events
    /// past the last snapshot (0 disables writing snapshots).
    pub every_events: u64,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            every_events: DEFAULT_EVERY_EVENTS,
        }
    }
}

/// An aggregate state together with where in its stream it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// The state after every event up to `version`.
    pub state: A,
    /// The stream version folded in (0 = no events: the stream does not exist).
    pub version: u64,
    /// Hash of the event at `version` (zeroes when `version` is 0).
    pub last_hash: Hash,
    /// Version of the snapshot the load started from, if one was used.
    pub snapshot_version: Option<u64>,
    /// Events folded on top of the snapshot (or from the start) by this load.
    pub replayed: u64,
    /// Events folded since the last snapshot was read or written; a
    /// snapshot is due when it reaches `every_events`.
    pub pending: u64,
}

/// Snapshots of aggregates (and blobs of projections) in one side tree.
#[derive(Clone)]
pub struct SnapshotStore {
    tree: Arc<dyn KvTree>,
    config: SnapshotConfig,
}

impl std::fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStore")
            .field("config", &self.config)
            .finish()
    }
}

impl SnapshotStore {
    /// A store writing into `tree` (which it owns exclusively).
    pub fn new(tree: Arc<dyn KvTree>, config: SnapshotConfig) -> Self {
        SnapshotStore { tree, config }
    }

    /// The configuration.
    pub fn config(&self) -> SnapshotConfig {
        self.config
    }

    /// The side tree, for the blob API in `blob.rs`.
    pub(crate) fn tree(&self) -> &dyn KvTree {
        self.tree.as_ref()
    }

    /// Whether a state with `pending` events folded since its last
    /// snapshot should be snapshotted.
    pub fn is_due(&self, pending: u64) -> bool {
        self.config.every_events > 0 && pending >= self.config.every_events
    }

    /// Stores `state` as the snapshot of `stream` at `version`, where
    /// `last_hash` is the hash of the stream's event at `version` (so a
    /// snapshot that does not match the log is detected on load).
    pub fn save<A: Aggregate>(
        &self,
        stream: StreamId,
        version: u64,
        last_hash: Hash,
        state: &A,
    ) -> Result<(), SnapshotError> {
        let body = bincode::serde::encode_to_vec(state, bincode::config::standard())
            .map_err(|e| SnapshotError::Encode(e.to_string()))?;
        let envelope = Envelope {
            schema_version: A::SNAPSHOT_VERSION,
            version,
            last_hash,
            body,
        };
        self.tree.apply(vec![(
            keys::aggregate_key(A::NAME, stream),
            Some(envelope.encode()),
        )])?;
        Ok(())
    }

    /// Removes the snapshot of `stream` (if any).
    pub fn delete<A: Aggregate>(&self, stream: StreamId) -> Result<(), SnapshotError> {
        self.tree
            .apply(vec![(keys::aggregate_key(A::NAME, stream), None)])?;
        Ok(())
    }

    /// Removes every aggregate snapshot and blob.
    pub fn clear(&self) -> Result<(), SnapshotError> {
        self.tree.clear()?;
        Ok(())
    }

    /// The state of `stream`: its latest valid snapshot plus the events after
    /// it, or a full replay when there is no usable snapshot. Writes a fresh
    /// snapshot when the tail was long (see [`SnapshotConfig::every_events`]);
    /// failing to write it only costs speed and is logged.
    pub async fn load<A: Aggregate>(
        &self,
        store: &dyn EventStore,
        stream: StreamId,
    ) -> Result<Loaded<A>, SnapshotError> {
        let start = self
            .usable_snapshot::<A>(store, stream)
            .await?
            .unwrap_or_else(Loaded::empty);
        self.catch_up(store, stream, start).await
    }

    /// Brings a state loaded earlier (e.g. cached in memory) up to the end
    /// of its stream, writing a snapshot when one is due. `from` must be a
    /// fold of this stream's first `from.version` events.
    pub async fn catch_up<A: Aggregate>(
        &self,
        store: &dyn EventStore,
        stream: StreamId,
        from: Loaded<A>,
    ) -> Result<Loaded<A>, SnapshotError> {
        let from = Loaded {
            replayed: 0,
            ..from
        };
        // A state that is already current (the common case for a cached
        // one) costs one version lookup instead of reading an empty tail.
        let loaded = if from.version > 0 && store.stream_version(stream).await? == from.version {
            from
        } else {
            fold_tail(store, stream, from).await?
        };
        Ok(self.save_if_due(stream, loaded))
    }

    /// Folds `events` (the next ones of `stream`, in version order, e.g. the
    /// records an append returned) into `from`, writing a snapshot when one
    /// is due. An event that is not the next version is a `Gap`.
    pub fn advance<'e, A: Aggregate>(
        &self,
        stream: StreamId,
        from: Loaded<A>,
        events: impl IntoIterator<Item = &'e RecordedEvent>,
    ) -> Result<Loaded<A>, SnapshotError> {
        let mut loaded = from;
        for event in events {
            loaded = loaded.apply(event)?;
        }
        Ok(self.save_if_due(stream, loaded))
    }

    /// Writes a snapshot of `loaded` if one is due; failing to write it only
    /// costs speed and is logged.
    fn save_if_due<A: Aggregate>(&self, stream: StreamId, mut loaded: Loaded<A>) -> Loaded<A> {
        if loaded.version > 0 && self.is_due(loaded.pending) {
            match self.save(stream, loaded.version, loaded.last_hash, &loaded.state) {
                Ok(()) => loaded.pending = 0,
                Err(e) => {
                    warn!(aggregate = A::NAME, %stream, error = %e, "could not write snapshot")
                }
            }
        }
        loaded
    }

    /// The stored snapshot if it decodes, has the current schema version and
    /// matches the log (the event at its version has the recorded hash).
    async fn usable_snapshot<A: Aggregate>(
        &self,
        store: &dyn EventStore,
        stream: StreamId,
    ) -> Result<Option<Loaded<A>>, SnapshotError> {
        let key = keys::aggregate_key(A::NAME, stream);
        let bytes = match self.tree.get(&key) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                debug!(aggregate = A::NAME, %stream, "no snapshot; full replay");
                return Ok(None);
            }
            Err(e) => {
                warn!(aggregate = A::NAME, %stream, error = %e, "snapshot unreadable; full replay");
                return Ok(None);
            }
        };
        let envelope = match Envelope::decode(&bytes) {
            Ok(envelope) => envelope,
            Err(reason) => {
                warn!(aggregate = A::NAME, %stream, %reason, "corrupt snapshot; full replay");
                return Ok(None);
            }
        };
        if envelope.schema_version != A::SNAPSHOT_VERSION {
            warn!(
                aggregate = A::NAME,
                %stream,
                stored = envelope.schema_version,
                current = A::SNAPSHOT_VERSION,
                "outdated snapshot schema; full replay"
            );
            return Ok(None);
        }
        if envelope.version == 0 {
            warn!(aggregate = A::NAME, %stream, "snapshot at version 0; full replay");
            return Ok(None);
        }
        // The limit makes a forged length prefix an error, not an abort.
        let config = bincode::config::standard().with_limit::<SNAPSHOT_DECODE_BYTES_MAX>();
        let state: A = match bincode::serde::decode_from_slice(&envelope.body, config) {
            Ok((state, used)) if used == envelope.body.len() => state,
            Ok((_, used)) => {
                warn!(aggregate = A::NAME, %stream, used, len = envelope.body.len(), "snapshot has trailing bytes; full replay");
                return Ok(None);
            }
            Err(e) => {
                warn!(aggregate = A::NAME, %stream, error = %e, "undecodable snapshot; full replay");
                return Ok(None);
            }
        };
        let at = store.read_stream(stream, envelope.version, 1).await?;
        match at.first() {
            Some(event)
                if event.stream_version == envelope.version && event.hash == envelope.last_hash =>
            {
                Ok(Some(Loaded {
                    state,
                    version: envelope.version,
                    last_hash: envelope.last_hash,
                    snapshot_version: Some(envelope.version),
                    replayed: 0,
                    pending: 0,
                }))
            }
            _ => {
                warn!(
                    aggregate = A::NAME,
                    %stream,
                    version = envelope.version,
                    "snapshot does not match the log; full replay"
                );
                Ok(None)
            }
        }
    }
}

impl<A: Aggregate> Loaded<A> {
    /// The state of a stream with no events.
    pub fn empty() -> Self {
        Loaded {
            state: A::default(),
            version: 0,
            last_hash: [0; HASH_BYTES],
            snapshot_version: None,
            replayed: 0,
            pending: 0,
        }
    }

    /// Folds one more event of the stream in, checking it is the next one.
    pub fn apply(mut self, event: &RecordedEvent) -> Result<Self, SnapshotError> {
        let expected = self.version + 1;
        if event.stream_version != expected {
            return Err(SnapshotError::Gap {
                stream: event.stream_id,
                expected,
                actual: event.stream_version,
            });
        }
        self.state = self.state.evolve(event);
        self.version = event.stream_version;
        self.last_hash = event.hash;
        self.replayed += 1;
        self.pending += 1;
        Ok(self)
    }
}

/// Folds every event of `stream` after `start.version`, page by page.
async fn fold_tail<A: Aggregate>(
    store: &dyn EventStore,
    stream: StreamId,
    mut loaded: Loaded<A>,
) -> Result<Loaded<A>, SnapshotError> {
    // A short page ends the walk: the stream's end as of this read.
    let mut pages = Pages::stream(store, stream, loaded.version + 1);
    while let Some(page) = pages.next_page().await? {
        for event in &page {
            loaded = loaded.apply(event)?;
        }
    }
    Ok(loaded)
}
