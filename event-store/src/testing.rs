//! The test doubles of this crate's traits, for every crate's tests (the
//! `testing` feature, enabled only in `[dev-dependencies]`): an in-memory
//! [`EventStore`] ([`MemoryStore`]), side tree ([`MemoryTree`]) and tree
//! provider ([`MemoryKv`]), and a script builder for recorded events with
//! fixed times ([`Script`]). Not for production use.

#[cfg(feature = "testing")]
pub mod postgres;
#[cfg(feature = "testing")]
pub mod stores;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::codec;
use crate::error::StoreError;
use crate::kv::{KvEntry, KvProvider, KvTree};
use crate::limits::READ_PAGE_MAX;
use crate::record::{
    same_request, Actor, AppendOutcome, AppendRequest, Hash, PriorCommand, RecordedEvent,
    Visibility,
};
use crate::schema::{EventPayload, StreamId, SCHEMA_VERSION};
use crate::store::{EventStore, EventStream, VerifyReport};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Builds recorded events of a scenario: positions, stream versions and a
/// real hash chain, at fixed offsets (seconds) from `t0`.
pub struct Script {
    /// Tenant used by [`Script::emit`].
    pub tenant: String,
    /// Instant of offset 0.
    pub t0: DateTime<Utc>,
    events: Vec<RecordedEvent>,
    versions: HashMap<StreamId, u64>,
    prev_hash: Hash,
}

impl Script {
    /// An empty script for `tenant` starting at `t0`.
    pub fn new(tenant: &str, t0: DateTime<Utc>) -> Self {
        Script {
            tenant: tenant.into(),
            t0,
            events: vec![],
            versions: HashMap::new(),
            prev_hash: [0; 32],
        }
    }

    /// Appends an event of `stream` by `actor`, `at_s` seconds after `t0`.
    pub fn emit(
        &mut self,
        stream: StreamId,
        at_s: i64,
        actor: &Actor,
        payload: EventPayload,
    ) -> RecordedEvent {
        let tenant = self.tenant.clone();
        self.emit_in(&tenant, stream, at_s, actor, payload)
    }

    /// Like [`Script::emit`] for another tenant.
    pub fn emit_in(
        &mut self,
        tenant: &str,
        stream: StreamId,
        at_s: i64,
        actor: &Actor,
        payload: EventPayload,
    ) -> RecordedEvent {
        let position = self.events.len() as u64 + 1;
        let version = self.versions.entry(stream).or_insert(0);
        *version += 1;
        let visibility = if payload.is_internal() {
            Visibility::Internal
        } else {
            Visibility::Public
        };
        let mut e = RecordedEvent {
            position,
            stream_id: stream,
            stream_version: *version,
            event_id: Uuid::from_u128(0xe000_0000 + position as u128),
            command_id: Uuid::from_u128(0xc000_0000 + position as u128),
            request_fingerprint: None,
            correlation_id: Uuid::from_u128(0xc000_0000 + position as u128),
            tenant: tenant.into(),
            actor: actor.clone(),
            recorded_at: self.t0 + chrono::Duration::seconds(at_s),
            schema_version: SCHEMA_VERSION,
            visibility,
            payload,
            prev_hash: self.prev_hash,
            hash: [0; 32],
        };
        e.hash = codec::encode(&e).map(|(_, h)| h).unwrap_or([0; 32]);
        self.prev_hash = e.hash;
        self.events.push(e.clone());
        e
    }

    /// Every event so far, in position order.
    pub fn events(&self) -> &[RecordedEvent] {
        &self.events
    }
}

/// An in-memory [`EventStore`] with the real store's rules (optimistic
/// concurrency, a repeated command id answered as a duplicate, no empty
/// append, a hash chain) and subscription semantics (log first, then live,
/// no gap, no duplicate), an injectable lag, and counters of stream reads.
pub struct MemoryStore {
    log: Arc<Mutex<Vec<Arc<RecordedEvent>>>>,
    head: tokio::sync::watch::Sender<u64>,
    lag_at: Mutex<Option<u64>>,
    commands: Mutex<HashMap<Uuid, PriorCommand>>,
    reads: Mutex<StreamReads>,
}

/// What `read_stream` handed out so far.
#[derive(Default)]
struct StreamReads {
    calls: u64,
    events: u64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            log: Arc::new(Mutex::new(vec![])),
            head: tokio::sync::watch::channel(0).0,
            lag_at: Mutex::new(None),
            commands: Mutex::default(),
            reads: Mutex::default(),
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Arc<Self> {
        Arc::new(MemoryStore::default())
    }

    /// Events handed out by `read_stream` so far.
    pub fn events_read(&self) -> u64 {
        lock(&self.reads).events
    }

    /// Calls of `read_stream` so far (an empty page counts too).
    pub fn stream_reads(&self) -> u64 {
        lock(&self.reads).calls
    }

    /// Appends pre-built events (their positions must continue the log).
    pub fn push_all(&self, events: &[RecordedEvent]) {
        let mut log = lock(&self.log);
        for e in events {
            assert_eq!(
                e.position,
                log.len() as u64 + 1,
                "pushed events must continue the log"
            );
            log.push(Arc::new(e.clone()));
        }
        let head = log.len() as u64;
        drop(log);
        self.head.send_replace(head);
    }

    /// The next subscription that reaches `position` ends with `Lagged`.
    pub fn lag_once_at(&self, position: u64) {
        *lock(&self.lag_at) = Some(position);
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let mut commands = lock(&self.commands);
        if let Some(first) = commands.get(&req.command_id) {
            if !same_request(
                first.request_fingerprint.as_ref(),
                req.request_fingerprint.as_ref(),
            ) {
                return Err(StoreError::CommandReused {
                    command_id: req.command_id,
                });
            }
            return Ok(first.outcome);
        }
        if req.events.is_empty() {
            return Err(StoreError::Invalid("no events".into()));
        }
        let mut log = lock(&self.log);
        let actual = log.iter().filter(|e| e.stream_id == req.stream_id).count() as u64;
        if !req.expected.matches(actual) {
            return Err(StoreError::Conflict {
                expected: req.expected.as_number(),
                actual,
            });
        }
        let first_position = log.len() as u64 + 1;
        let mut prev_hash = log.last().map_or([0; 32], |e| e.hash);
        for (i, ne) in req.events.iter().enumerate() {
            let mut e = RecordedEvent {
                position: first_position + i as u64,
                stream_id: req.stream_id,
                stream_version: actual + 1 + i as u64,
                event_id: ne.event_id,
                command_id: req.command_id,
                request_fingerprint: req.request_fingerprint,
                correlation_id: req.correlation_id,
                tenant: req.tenant.clone(),
                actor: req.actor.clone(),
                recorded_at: req.recorded_at,
                schema_version: SCHEMA_VERSION,
                visibility: ne.visibility,
                payload: ne.payload.clone(),
                prev_hash,
                hash: [0; 32],
            };
            e.hash = codec::encode(&e)?.1;
            prev_hash = e.hash;
            log.push(Arc::new(e));
        }
        let position = log.len() as u64;
        drop(log);
        let outcome = AppendOutcome {
            stream_id: req.stream_id,
            version: actual + req.events.len() as u64,
            first_position,
            position,
            duplicate: false,
        };
        commands.insert(
            req.command_id,
            PriorCommand {
                outcome: AppendOutcome {
                    duplicate: true,
                    ..outcome
                },
                request_fingerprint: req.request_fingerprint,
            },
        );
        drop(commands);
        self.head.send_replace(position);
        Ok(outcome)
    }

    async fn find_command(&self, command_id: Uuid) -> Result<Option<PriorCommand>, StoreError> {
        Ok(lock(&self.commands).get(&command_id).copied())
    }

    async fn read_stream(
        &self,
        stream: StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = limit.min(READ_PAGE_MAX);
        let page: Vec<RecordedEvent> = lock(&self.log)
            .iter()
            .filter(|e| e.stream_id == stream && e.stream_version >= from_version)
            .take(limit)
            .map(|e| (**e).clone())
            .collect();
        let mut reads = lock(&self.reads);
        reads.calls += 1;
        reads.events += page.len() as u64;
        Ok(page)
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = limit.min(READ_PAGE_MAX);
        let log = lock(&self.log);
        let start = usize::try_from(from_position.max(1) - 1)
            .unwrap_or(usize::MAX)
            .min(log.len());
        Ok(log[start..]
            .iter()
            .take(limit)
            .map(|e| (**e).clone())
            .collect())
    }

    async fn stream_version(&self, stream: StreamId) -> Result<u64, StoreError> {
        Ok(lock(&self.log)
            .iter()
            .filter(|e| e.stream_id == stream)
            .count() as u64)
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(lock(&self.log).len() as u64)
    }

    fn subscribe(&self, from_position: u64) -> EventStream {
        let rx = self.head.subscribe();
        let lag_at = lock(&self.lag_at).take();
        let log = self.log.clone();
        let state = (from_position.max(1), rx, log, lag_at, false);
        Box::pin(futures::stream::unfold(
            state,
            |(next, mut rx, log, lag_at, done)| async move {
                if done {
                    return None;
                }
                if lag_at == Some(next) {
                    return Some((
                        Err(StoreError::Lagged { resume_from: next }),
                        (next, rx, log, None, true),
                    ));
                }
                loop {
                    // Mark the head as seen before looking, so an append between
                    // the look and the wait still wakes us.
                    rx.borrow_and_update();
                    let found = lock(&log).get(usize::try_from(next - 1).ok()?).cloned();
                    if let Some(e) = found {
                        return Some((Ok(e), (next + 1, rx, log, lag_at, false)));
                    }
                    rx.changed().await.ok()?;
                }
            },
        ))
    }

    async fn verify(
        &self,
        _progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<VerifyReport, StoreError> {
        let head = lock(&self.log).len() as u64;
        Ok(VerifyReport {
            records: head,
            head,
            failure: None,
        })
    }

    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// An in-memory side tree.
#[derive(Default)]
pub struct MemoryTree {
    entries: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryTree {
    /// Every entry, in key order (for tests that look at what was written).
    pub fn entries(&self) -> Vec<KvEntry> {
        lock(&self.entries)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        lock(&self.entries).is_empty()
    }
}

impl KvTree for MemoryTree {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(lock(&self.entries).get(key).cloned())
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<KvEntry>, StoreError> {
        Ok(lock(&self.entries)
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .last()
            .map(|(k, v)| (k.clone(), v.clone())))
    }

    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<KvEntry>, StoreError> {
        Ok(lock(&self.entries)
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn scan_from(&self, start: &[u8], limit: usize) -> Result<Vec<KvEntry>, StoreError> {
        Ok(lock(&self.entries)
            .range(start.to_vec()..)
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn apply(&self, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        let mut entries = lock(&self.entries);
        for (k, v) in writes {
            match v {
                Some(v) => entries.insert(k, v),
                None => entries.remove(&k),
            };
        }
        Ok(())
    }

    fn insert_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
        Ok(lock(&self.entries)
            .entry(key.to_vec())
            .or_insert_with(|| value.to_vec())
            .clone())
    }

    fn clear(&self) -> Result<(), StoreError> {
        lock(&self.entries).clear();
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// An in-memory [`KvProvider`]; trees survive as long as the provider, so
/// reopening a reader over the same provider is a restart.
#[derive(Default)]
pub struct MemoryKv {
    trees: Mutex<HashMap<String, Arc<MemoryTree>>>,
}

impl MemoryKv {
    /// An empty provider.
    pub fn new() -> Arc<Self> {
        Arc::new(MemoryKv::default())
    }

    /// The tree called `name`, typed (for tests that damage it on purpose).
    pub fn mem_tree(&self, name: &str) -> Arc<MemoryTree> {
        lock(&self.trees)
            .entry(name.to_string())
            .or_default()
            .clone()
    }
}

impl KvProvider for MemoryKv {
    fn tree(&self, name: &str) -> Result<Arc<dyn KvTree>, StoreError> {
        Ok(self.mem_tree(name))
    }

    fn drop_tree(&self, name: &str) -> Result<(), StoreError> {
        lock(&self.trees).remove(name);
        Ok(())
    }

    fn tree_names(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = lock(&self.trees).keys().cloned().collect();
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ExpectedVersion, NewEvent};

    fn comment(command_id: Uuid, fingerprint: Option<Hash>) -> AppendRequest {
        AppendRequest {
            stream_id: Uuid::from_u128(1),
            expected: ExpectedVersion::Any,
            events: vec![NewEvent::new(EventPayload::CommentPosted {
                comment_id: Uuid::now_v7(),
                body: "hi".into(),
                internal: false,
            })],
            command_id,
            request_fingerprint: fingerprint,
            correlation_id: command_id,
            tenant: "demo".into(),
            actor: Actor {
                user_id: Uuid::from_u128(2),
                role: crate::access::Role::Agent,
            },
            recorded_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
        }
    }

    #[tokio::test]
    async fn the_memory_store_binds_command_ids_to_their_request_as_the_real_one() {
        let store = MemoryStore::new();
        let id = Uuid::now_v7();
        let first = store
            .append(comment(id, Some([1; 32])))
            .await
            .expect("first");
        let retry = store
            .append(comment(id, Some([1; 32])))
            .await
            .expect("retry");
        assert!(retry.duplicate && retry.position == first.position);
        assert!(matches!(
            store.append(comment(id, Some([2; 32]))).await,
            Err(StoreError::CommandReused { .. })
        ));
        let unbound = store
            .append(comment(id, None))
            .await
            .expect("binds nothing");
        assert!(unbound.duplicate);
        assert_eq!(store.head().await.expect("head"), 1);
        let prior = store
            .find_command(id)
            .await
            .expect("lookup")
            .expect("known");
        assert_eq!(prior.request_fingerprint, Some([1; 32]));
    }
}
