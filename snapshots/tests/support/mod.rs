//! Helpers over the in-memory doubles of `event_store::testing`.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
pub use event_store::testing::{MemoryStore, MemoryTree};
use event_store::{Actor, AppendRequest, EventPayload, EventStore, Role, StreamId, Visibility};
use uuid::Uuid;

pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0)
        .single()
        .expect("valid time")
}

/// Appends `payloads` to `stream` one append each (so versions are 1..).
pub async fn append_all(store: &MemoryStore, stream: StreamId, payloads: &[EventPayload]) {
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
                request_fingerprint: None,
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

pub fn shared_kv() -> Arc<MemoryTree> {
    Arc::new(MemoryTree::default())
}
