//! Reading events written by older schema versions.
//!
//! Version 1 (the first public beta) had no tags, device or structured
//! location on tickets (only a site name), and no dispatch or technician
//! events. Each old payload is decoded with its own type and lifted to the
//! current schema; the stored bytes are never rewritten, so hashes hold.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::codec::{from_bincode, Body};
use crate::schema::{
    EventPayload, Location, Priority, TicketKind, TicketStatus, UserId, SCHEMA_VERSION,
};

/// Payloads as schema version 1 wrote them. Variant order is part of the
/// format: never reorder.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub enum EventPayloadV1 {
    /// v1 ticket creation: a site name instead of a location.
    TicketCreated(TicketCreatedV1),
    /// v1 edit: no tags.
    TicketEdited {
        /// New title.
        title: Option<String>,
        /// New description.
        description: Option<String>,
        /// New priority.
        priority: Option<Priority>,
    },
    /// Unchanged since v1.
    TicketAssigned {
        /// Assignee.
        assignee: UserId,
        /// Previous assignee.
        previous: Option<UserId>,
    },
    /// Unchanged since v1.
    TicketStatusChanged {
        /// From.
        from: TicketStatus,
        /// To.
        to: TicketStatus,
        /// Note.
        note: Option<String>,
    },
    /// v1 comments: no id of their own (the event id served as one).
    CommentPosted {
        /// Text.
        body: String,
        /// Staff-only.
        internal: bool,
    },
}

/// The fields of a v1 ticket creation. A newtype variant holding this struct
/// encodes exactly as the struct variant v1 was written with (bincode writes
/// the variant index, then the fields in order; the committed fixture in
/// `tests/upcast.rs` pins it), and lets the upcast name each field once.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct TicketCreatedV1 {
    /// Sequence number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Priority.
    pub priority: Priority,
    /// Kind.
    pub kind: TicketKind,
    /// Reporter.
    pub reporter: UserId,
    /// Site name, if any.
    pub site: Option<String>,
}

/// Lifts a v1 payload to the current schema. `event_id` stands in for
/// fields v1 did not have (a comment's own id).
pub fn upcast_v1(p: EventPayloadV1, event_id: uuid::Uuid) -> EventPayload {
    match p {
        EventPayloadV1::TicketCreated(created) => EventPayload::TicketCreated {
            number: created.number,
            title: created.title,
            description: created.description,
            priority: created.priority,
            kind: created.kind,
            reporter: created.reporter,
            location: created.site.map(|site| Location {
                site: Some(site),
                ..Location::default()
            }),
            tags: Vec::new(),
            device: None,
        },
        EventPayloadV1::TicketEdited {
            title,
            description,
            priority,
        } => EventPayload::TicketEdited {
            title,
            description,
            priority,
            tags: None,
        },
        EventPayloadV1::TicketAssigned { assignee, previous } => {
            EventPayload::TicketAssigned { assignee, previous }
        }
        EventPayloadV1::TicketStatusChanged { from, to, note } => {
            EventPayload::TicketStatusChanged { from, to, note }
        }
        EventPayloadV1::CommentPosted { body, internal } => EventPayload::CommentPosted {
            comment_id: event_id,
            body,
            internal,
        },
    }
}

/// Decodes a body of any known schema version into the current payload,
/// followed by what the record's format puts after the body (`T`: `()`
/// for format 1, the request fingerprint for format 2).
pub(crate) fn decode_body<T: DeserializeOwned>(
    schema_version: u16,
    bytes: &[u8],
) -> Result<(Body<EventPayload>, T), String> {
    match schema_version {
        SCHEMA_VERSION => from_bincode::<(Body<EventPayload>, T)>(bytes),
        1 => {
            let (b, tail) = from_bincode::<(Body<EventPayloadV1>, T)>(bytes)?;
            let payload = upcast_v1(b.payload, b.event_id);
            let body = Body {
                position: b.position,
                stream_id: b.stream_id,
                stream_version: b.stream_version,
                event_id: b.event_id,
                command_id: b.command_id,
                correlation_id: b.correlation_id,
                tenant: b.tenant,
                actor: b.actor,
                recorded_at_micros: b.recorded_at_micros,
                visibility: b.visibility,
                prev_hash: b.prev_hash,
                payload,
            };
            Ok((body, tail))
        }
        v => Err(format!("unknown schema version {v}")),
    }
}
