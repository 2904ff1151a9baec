//! What is appended and what comes back: the record around a payload.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access::Role;
use crate::schema::{EventPayload, StreamId, UserId};

/// A tenant's name (e.g. `demo`); every record belongs to exactly one.
pub type Tenant = String;

/// Length of a record hash in bytes (BLAKE3).
pub const HASH_BYTES: usize = 32;

/// A record hash; the hash of "no previous record" is all zeroes.
pub type Hash = [u8; HASH_BYTES];

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The user id (the token's `sub`).
    pub user_id: UserId,
    /// The role the user acted in.
    pub role: Role,
}

/// Who may see an event beyond the tenant and ticket rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Anyone who may see the stream.
    Public,
    /// Only principals with `tickets.view.internal`.
    Internal,
}

/// What the stream's version must be for an append to succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// No check (used for streams with a single writer, like read receipts).
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version (0 = no stream).
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether `actual` satisfies this expectation.
    pub fn matches(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => v == actual,
        }
    }

    /// The number reported in a conflict (Any never conflicts).
    pub fn as_number(self) -> u64 {
        match self {
            ExpectedVersion::Any | ExpectedVersion::NoStream => 0,
            ExpectedVersion::Exact(v) => v,
        }
    }
}

/// One event to append, before the store gives it a position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// UUID v7, chosen by the caller so retries carry the same id.
    pub event_id: Uuid,
    /// The fact.
    pub payload: EventPayload,
    /// Public or internal; internal comments must be `Internal`.
    pub visibility: Visibility,
}

impl NewEvent {
    /// A new event with a fresh v7 id and the visibility its payload implies.
    pub fn new(payload: EventPayload) -> Self {
        let visibility = if payload.is_internal() {
            Visibility::Internal
        } else {
            Visibility::Public
        };
        NewEvent {
            event_id: Uuid::now_v7(),
            payload,
            visibility,
        }
    }
}

/// One atomic append to one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppendRequest {
    /// The stream appended to.
    pub stream_id: StreamId,
    /// Optimistic concurrency check.
    pub expected: ExpectedVersion,
    /// The events, all or none (1..=`limits::APPEND_EVENTS_MAX`).
    pub events: Vec<NewEvent>,
    /// Idempotency key: a second append with the same id returns the first
    /// outcome and appends nothing.
    pub command_id: Uuid,
    /// What was asked, as a hash the caller computes over its request
    /// (`None` binds nothing: the service's own commands). Stored in every
    /// record of the append; a second append with the same `command_id` and
    /// another fingerprint is refused with [`crate::StoreError::CommandReused`].
    pub request_fingerprint: Option<Hash>,
    /// Ties the events of one user action together across streams.
    pub correlation_id: Uuid,
    /// The tenant the stream belongs to.
    pub tenant: Tenant,
    /// Who caused the events.
    pub actor: Actor,
    /// When the command was decided (the command's clock, not the disk's).
    pub recorded_at: DateTime<Utc>,
}

/// What a successful append returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOutcome {
    /// The stream appended to.
    pub stream_id: StreamId,
    /// The stream's version after the append (its last event's version).
    pub version: u64,
    /// Global position of the first appended event.
    pub first_position: u64,
    /// Global position of the last appended event.
    pub position: u64,
    /// True when this was a retry of an earlier command and nothing was appended.
    pub duplicate: bool,
}

/// The first append of a command id, as the store remembers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorCommand {
    /// What that append returned (`duplicate: true`, as a retry sees it).
    pub outcome: AppendOutcome,
    /// The fingerprint of the request it answered, if one was stored.
    pub request_fingerprint: Option<Hash>,
}

/// Whether a request with fingerprint `offered` may be answered by an
/// earlier append stored with `stored`: yes unless both are known and
/// differ (records without one, and requests without one, bind nothing).
pub fn same_request(stored: Option<&Hash>, offered: Option<&Hash>) -> bool {
    match (stored, offered) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// A successful append together with its records as stored (empty for a
/// duplicate), so the caller can fold them without reading them back.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    /// What [`crate::EventStore::append`] returns.
    pub outcome: AppendOutcome,
    /// The appended records, in version order (hash and position set).
    pub records: Vec<Arc<RecordedEvent>>,
}

/// A stored event with everything the log knows about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Global position, gapless from 1.
    pub position: u64,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Version within the stream, gapless from 1.
    pub stream_version: u64,
    /// UUID v7.
    pub event_id: Uuid,
    /// The command that appended it.
    pub command_id: Uuid,
    /// The fingerprint of the command's request (see
    /// [`AppendRequest::request_fingerprint`]); `None` in records written
    /// before fingerprints were stored (codec format 1).
    #[serde(default)]
    pub request_fingerprint: Option<Hash>,
    /// Ties one user action's events together.
    pub correlation_id: Uuid,
    /// Owning tenant.
    pub tenant: Tenant,
    /// Who caused it.
    pub actor: Actor,
    /// When the command was decided.
    pub recorded_at: DateTime<Utc>,
    /// Schema version the record was written in (the payload is upcast to the current one).
    pub schema_version: u16,
    /// Public or internal.
    pub visibility: Visibility,
    /// The fact.
    pub payload: EventPayload,
    /// Hash of the previous record (zeroes for position 1).
    pub prev_hash: Hash,
    /// This record's hash, covering `prev_hash` and the record's bytes.
    pub hash: Hash,
}

impl RecordedEvent {
    /// Short hex of a hash for people and JSON.
    pub fn hex(hash: &Hash) -> String {
        hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The record as the API's JSON event object (payload fields, `kind`,
    /// `actor`, `at`, and the record's coordinates) for a reader who is
    /// shown versions (`Principal::sees_versions`); for one who is not, the
    /// object has no `version`.
    pub fn to_json(&self, with_version: bool) -> serde_json::Value {
        let mut v = self.payload.to_json();
        if let serde_json::Value::Object(map) = &mut v {
            map.insert(
                "actor".into(),
                serde_json::json!({"id": self.actor.user_id, "role": self.actor.role}),
            );
            map.insert("at".into(), serde_json::json!(self.recorded_at));
            map.insert("stream_id".into(), serde_json::json!(self.stream_id));
            if with_version {
                map.insert("version".into(), serde_json::json!(self.stream_version));
            }
            map.insert("position".into(), serde_json::json!(self.position));
            map.insert("event_id".into(), serde_json::json!(self.event_id));
            map.insert("visibility".into(), serde_json::json!(self.visibility));
        }
        v
    }
}
