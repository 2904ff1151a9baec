//! In-memory KvTree and EventStore for tests, independent of any backend.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use event_store::limits::READ_PAGE_MAX;
use event_store::{
    Actor, AppendOutcome, AppendRequest, EventPayload, EventStore, EventStream, KvTree,
    RecordedEvent, Role, StoreError, StreamId, VerifyReport, Visibility,
};
use uuid::Uuid;

/// A KvTree over a BTreeMap.
#[derive(Default)]
pub struct MemKv {
    pub map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl KvTree for MemKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.lock().expect("lock").get(key).cloned())
    }
    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
        let map = self.map.lock().expect("lock");
        Ok(map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .last()
            .map(|(k, v)| (k.clone(), v.clone())))
    }
    fn scan_prefix(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let map = self.map.lock().expect("lock");
        Ok(map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    fn apply(&self, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        let mut map = self.map.lock().expect("lock");
        for (k, v) in writes {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        Ok(())
    }
    fn clear(&self) -> Result<(), StoreError> {
        self.map.lock().expect("lock").clear();
        Ok(())
    }
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// An EventStore over a Vec, with conflicts and idempotency; counts reads.
#[derive(Default)]
pub struct MemStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    log: Vec<RecordedEvent>,
    streams: HashMap<StreamId, Vec<usize>>,
    commands: HashMap<Uuid, AppendOutcome>,
    events_read: u64,
    stream_reads: u64,
}

impl MemStore {
    /// Events handed out by read_stream so far.
    pub fn events_read(&self) -> u64 {
        self.inner.lock().expect("lock").events_read
    }

    /// Calls of read_stream so far (an empty page counts too).
    pub fn stream_reads(&self) -> u64 {
        self.inner.lock().expect("lock").stream_reads
    }
}

pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0)
        .single()
        .expect("valid time")
}

#[async_trait]
impl EventStore for MemStore {
    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let mut inner = self.inner.lock().expect("lock");
        if let Some(first) = inner.commands.get(&req.command_id) {
            return Ok(AppendOutcome {
                duplicate: true,
                ..*first
            });
        }
        if req.events.is_empty() {
            return Err(StoreError::Invalid("no events".into()));
        }
        let actual = inner
            .streams
            .get(&req.stream_id)
            .map_or(0, |v| v.len() as u64);
        if !req.expected.matches(actual) {
            return Err(StoreError::Conflict {
                expected: req.expected.as_number(),
                actual,
            });
        }
        let first_position = inner.log.len() as u64 + 1;
        for (i, e) in req.events.into_iter().enumerate() {
            let position = inner.log.len() as u64 + 1;
            let prev_hash = inner.log.last().map_or([0; 32], |r| r.hash);
            let mut hash = [0u8; 32];
            hash[..8].copy_from_slice(&position.to_le_bytes());
            hash[8..24].copy_from_slice(e.event_id.as_bytes());
            let record = RecordedEvent {
                position,
                stream_id: req.stream_id,
                stream_version: actual + i as u64 + 1,
                event_id: e.event_id,
                command_id: req.command_id,
                correlation_id: req.correlation_id,
                tenant: req.tenant.clone(),
                actor: req.actor.clone(),
                recorded_at: req.recorded_at,
                schema_version: event_store::SCHEMA_VERSION,
                visibility: e.visibility,
                payload: e.payload,
                prev_hash,
                hash,
            };
            inner.log.push(record);
            let idx = inner.log.len() - 1;
            inner.streams.entry(req.stream_id).or_default().push(idx);
        }
        let position = inner.log.len() as u64;
        let outcome = AppendOutcome {
            stream_id: req.stream_id,
            version: inner
                .streams
                .get(&req.stream_id)
                .map_or(0, |v| v.len() as u64),
            first_position,
            position,
            duplicate: false,
        };
        inner.commands.insert(req.command_id, outcome);
        Ok(outcome)
    }

    async fn read_stream(
        &self,
        stream: StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut inner = self.inner.lock().expect("lock");
        let limit = limit.min(READ_PAGE_MAX);
        let from = from_version.max(1) as usize - 1;
        let out: Vec<RecordedEvent> = match inner.streams.get(&stream) {
            Some(idx) => idx
                .iter()
                .skip(from)
                .take(limit)
                .map(|i| inner.log[*i].clone())
                .collect(),
            None => Vec::new(),
        };
        inner.events_read += out.len() as u64;
        inner.stream_reads += 1;
        Ok(out)
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.inner.lock().expect("lock");
        let from = from_position.max(1) as usize - 1;
        Ok(inner
            .log
            .iter()
            .skip(from)
            .take(limit.min(READ_PAGE_MAX))
            .cloned()
            .collect())
    }

    async fn stream_version(&self, stream: StreamId) -> Result<u64, StoreError> {
        let inner = self.inner.lock().expect("lock");
        Ok(inner.streams.get(&stream).map_or(0, |v| v.len() as u64))
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.inner.lock().expect("lock").log.len() as u64)
    }

    fn subscribe(&self, _from_position: u64) -> EventStream {
        Box::pin(futures::stream::empty())
    }

    async fn verify(
        &self,
        _progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<VerifyReport, StoreError> {
        let head = self.inner.lock().expect("lock").log.len() as u64;
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

/// Appends `payloads` to `stream` one append each (so versions are 1..).
pub async fn append_all(store: &MemStore, stream: StreamId, payloads: &[EventPayload]) {
    for (i, p) in payloads.iter().enumerate() {
        store
            .append(AppendRequest {
                stream_id: stream,
                expected: event_store::ExpectedVersion::Any,
                events: vec![event_store::NewEvent {
                    event_id: Uuid::now_v7(),
                    payload: p.clone(),
                    visibility: Visibility::Public,
                }],
                command_id: Uuid::new_v4(),
                correlation_id: Uuid::new_v4(),
                tenant: "t".into(),
                actor: Actor {
                    user_id: Uuid::nil(),
                    role: Role::Agent,
                },
                recorded_at: at(i as i64),
            })
            .await
            .expect("append");
    }
}

pub fn shared_kv() -> Arc<MemKv> {
    Arc::new(MemKv::default())
}
