//! The event schema of the whole product: the storage contract.
//!
//! Every type here is written to disk. Changing a field's meaning or order
//! breaks old logs: add a new schema version and an upcast in `upcast.rs`
//! instead. Names are past tense because an event is a fact that happened.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access::Role;

/// Schema version written by this build; older versions are upcast on read.
pub const SCHEMA_VERSION: u16 = 2;

/// Identifies one stream (a ticket, a technician, a tenant's counters).
pub type StreamId = Uuid;
/// Identifies a user (from the `sub` claim of a token).
pub type UserId = Uuid;
/// Identifies a ticket; a ticket's stream id equals its ticket id.
pub type TicketId = Uuid;
/// Identifies one dispatch of a technician to a ticket.
pub type DispatchId = Uuid;

/// How urgent a ticket is; drives SLA targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Service down; SLA default 4 h.
    Critical,
    /// SLA default 8 h.
    High,
    /// SLA default 24 h.
    Medium,
    /// SLA default 72 h.
    Low,
}

/// What sort of work a ticket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketKind {
    /// Something is broken.
    Incident,
    /// Planned upkeep.
    Maintenance,
    /// A request to change something.
    ChangeRequest,
    /// A question.
    Question,
}

/// Where a ticket is in its workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// New or reopened.
    Open,
    /// Someone owns it.
    Assigned,
    /// Work has started.
    InProgress,
    /// Fixed; may be reopened.
    Resolved,
    /// Done; may be reopened.
    Closed,
}

impl TicketStatus {
    /// The contract's workflow: open → assigned → in_progress → resolved →
    /// closed, and resolved or closed → open (reopen).
    pub fn can_become(self, to: TicketStatus) -> bool {
        use TicketStatus::*;
        matches!(
            (self, to),
            (Open, Assigned)
                | (Assigned, InProgress)
                | (InProgress, Resolved)
                | (Resolved, Closed)
                | (Resolved, Open)
                | (Closed, Open)
        )
    }

    /// Statuses a ticket can move to from this one, for UIs.
    pub fn next(self) -> Vec<TicketStatus> {
        use TicketStatus::*;
        [Open, Assigned, InProgress, Resolved, Closed]
            .into_iter()
            .filter(|to| self.can_become(*to))
            .collect()
    }

    /// The snake_case name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::Assigned => "assigned",
            TicketStatus::InProgress => "in_progress",
            TicketStatus::Resolved => "resolved",
            TicketStatus::Closed => "closed",
        }
    }
}

/// Where an incident is. Every part is optional because customers know
/// different things (a site name, or coordinates from a phone).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// Refused in bodies, as in every other body object (bincode never sees
// keys, so stored records are unaffected).
#[serde(deny_unknown_fields)]
pub struct Location {
    /// Latitude in degrees (WGS84).
    pub lat: Option<f64>,
    /// Longitude in degrees (WGS84).
    pub lon: Option<f64>,
    /// Site name, used as the dispatch fallback and a stats group.
    pub site: Option<String>,
    /// Building within the site.
    pub building: Option<String>,
    /// Floor within the building.
    pub floor: Option<String>,
    /// Street address, free text.
    pub address: Option<String>,
}

/// A point on Earth, in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoPoint {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
}

/// A technician considered for a dispatch, kept so the choice can be explained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchCandidate {
    /// The technician.
    pub technician: UserId,
    /// Great-circle distance to the incident, if both positions are known.
    pub distance_km: Option<f64>,
    /// Why this candidate was or was not chosen (e.g. "nearest", "busy").
    pub note: String,
}

/// How a dispatch's technician was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchChoice {
    /// The agent named the technician.
    Explicit,
    /// Nearest available technician within the radius.
    Nearest,
    /// No one in the radius; a technician at the ticket's site.
    Site,
    /// No one found; every technician of the tenant was notified.
    Broadcast,
}

/// Where a dispatch is in its lifecycle: the one lifecycle of the write
/// model, the read model, the progress request and the log.
///
/// `DispatchProgressed` stores it (only `EnRoute` or `OnSite`), and bincode
/// writes the variant index: `EnRoute` = 0 and `OnSite` = 1 are on disk and
/// must stay first and in this order; new variants go at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchPhase {
    /// Travelling to the site.
    EnRoute,
    /// Arrived.
    OnSite,
    /// Waiting for the technician's answer.
    Requested,
    /// Accepted, not yet moving.
    Accepted,
    /// Work done.
    Completed,
    /// The technician declined.
    Declined,
    /// No technician was found; everyone was notified (broadcast). The
    /// read model shows such a dispatch as `Requested` with no technician.
    Unassigned,
}

/// The phases a technician reports on an accepted dispatch, by their JSON
/// names: what `POST /api/v1/dispatches/{id}/status` accepts.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ReportedPhase {
    EnRoute,
    OnSite,
    Completed,
}

impl DispatchPhase {
    /// The snake_case name (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            DispatchPhase::Requested => "requested",
            DispatchPhase::Accepted => "accepted",
            DispatchPhase::EnRoute => "en_route",
            DispatchPhase::OnSite => "on_site",
            DispatchPhase::Completed => "completed",
            DispatchPhase::Declined => "declined",
            DispatchPhase::Unassigned => "unassigned",
        }
    }

    /// Whether the dispatch still occupies (or may occupy) its technician.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            DispatchPhase::Requested
                | DispatchPhase::Accepted
                | DispatchPhase::EnRoute
                | DispatchPhase::OnSite
        )
    }

    /// Deserializes only a phase a technician reports (`en_route`,
    /// `on_site`, `completed`), with serde's own errors for anything else,
    /// for `#[serde(deserialize_with)]` on request bodies.
    pub fn deserialize_reported<'de, D>(deserializer: D) -> Result<DispatchPhase, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        Ok(match ReportedPhase::deserialize(deserializer)? {
            ReportedPhase::EnRoute => DispatchPhase::EnRoute,
            ReportedPhase::OnSite => DispatchPhase::OnSite,
            ReportedPhase::Completed => DispatchPhase::Completed,
        })
    }
}

/// The typed payload of an event. Serialized with its variant name as
/// the `kind` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventPayload {
    /// A ticket was opened. `number` is the tenant-wide sequence number.
    TicketCreated {
        /// Per-tenant sequential number (#1, #2, …).
        number: u64,
        /// Short summary.
        title: String,
        /// Full text.
        description: String,
        /// Urgency.
        priority: Priority,
        /// Kind of work.
        kind: TicketKind,
        /// The user who reported it (owner for customers).
        reporter: UserId,
        /// Where, if known.
        location: Option<Location>,
        /// Free labels.
        tags: Vec<String>,
        /// Device concerned, if any.
        device: Option<String>,
    },
    /// Some of a ticket's fields changed; `None` means unchanged.
    TicketEdited {
        /// New title.
        title: Option<String>,
        /// New description.
        description: Option<String>,
        /// New priority.
        priority: Option<Priority>,
        /// New tag set.
        tags: Option<Vec<String>>,
    },
    /// A ticket got a (new) assignee.
    TicketAssigned {
        /// The new assignee.
        assignee: UserId,
        /// The assignee before, for the audit trail.
        previous: Option<UserId>,
    },
    /// A ticket moved in the workflow.
    TicketStatusChanged {
        /// Status before.
        from: TicketStatus,
        /// Status after.
        to: TicketStatus,
        /// Optional explanation.
        note: Option<String>,
    },
    /// A comment was posted; internal ones are staff-only notes.
    CommentPosted {
        /// Identifies the comment.
        comment_id: Uuid,
        /// The text (1..8 KiB).
        body: String,
        /// Staff-only note when true.
        internal: bool,
    },
    /// A technician was asked to go to a ticket (or everyone, on broadcast).
    DispatchRequested {
        /// Identifies this dispatch.
        dispatch_id: DispatchId,
        /// The chosen technician; `None` when no one was found.
        technician: Option<UserId>,
        /// How the technician was chosen.
        choice: DispatchChoice,
        /// Distance from the technician to the incident.
        distance_km: Option<f64>,
        /// Estimated travel time.
        eta_minutes: Option<f64>,
        /// Search radius used.
        radius_km: f64,
        /// Everyone considered, for explaining the choice.
        candidates: Vec<DispatchCandidate>,
    },
    /// The technician accepted the dispatch.
    DispatchAccepted {
        /// The dispatch.
        dispatch_id: DispatchId,
        /// Who accepted.
        technician: UserId,
    },
    /// The technician declined (or the request timed out).
    DispatchDeclined {
        /// The dispatch.
        dispatch_id: DispatchId,
        /// Who declined.
        technician: UserId,
        /// Why, if given.
        reason: Option<String>,
    },
    /// The technician reported progress.
    DispatchProgressed {
        /// The dispatch.
        dispatch_id: DispatchId,
        /// New phase: `EnRoute` or `OnSite` (completion is `DispatchCompleted`).
        stage: DispatchPhase,
        /// Where the technician was.
        location: Option<GeoPoint>,
    },
    /// The technician finished the work.
    DispatchCompleted {
        /// The dispatch.
        dispatch_id: DispatchId,
        /// Where the technician was.
        location: Option<GeoPoint>,
    },
    /// A technician's position (technician stream).
    TechnicianLocationReported {
        /// The technician.
        technician: UserId,
        /// Where.
        point: GeoPoint,
        /// Site the technician is at, if any.
        site: Option<String>,
        /// Building, if any.
        building: Option<String>,
        /// Floor, if any.
        floor: Option<String>,
    },
    /// A user read a ticket's conversation up to a position.
    ReadReceiptRecorded {
        /// The reader.
        user: UserId,
        /// Last read global position.
        position: u64,
    },
    /// A ticket number was taken from a tenant's sequence (counter stream).
    TicketNumberAllocated {
        /// The number.
        number: u64,
        /// The ticket it is for.
        ticket: TicketId,
    },
    /// A user read a ticket's conversation up to a position (the reader's
    /// own stream, [`reader_stream_id`]; replaces `ReadReceiptRecorded`,
    /// which changed the ticket's version).
    ConversationRead {
        /// The reader (the stream's owner).
        reader: UserId,
        /// The ticket read.
        ticket: TicketId,
        /// Global position of the last event of the ticket read.
        position: u64,
    },
    /// A user was added to the built-in directory (user stream). Never a
    /// password or its hash: only the fact.
    UserCreated {
        /// The new user.
        user: UserId,
        /// Their login name.
        name: String,
        /// Their role.
        role: Role,
    },
    /// A user's role changed (user stream).
    UserRoleChanged {
        /// The user.
        user: UserId,
        /// Role before.
        from: Role,
        /// Role after.
        to: Role,
    },
    /// A user's password was changed by themselves, or reset by an
    /// operator or admin (user stream); every earlier token was revoked.
    UserPasswordChanged {
        /// The user.
        user: UserId,
        /// True when someone other than the user set it.
        reset: bool,
    },
    /// Tokens of a user were revoked (user stream): one session (logout)
    /// or all of them.
    UserTokensRevoked {
        /// The user.
        user: UserId,
        /// All tokens issued before now, rather than the presenting one.
        all: bool,
    },
}

/// A ticket's editable fields, borrowed from whichever model holds them, so
/// the write model and the read models apply a `TicketEdited` the same way.
pub struct EditableFields<'a> {
    /// The title.
    pub title: &'a mut String,
    /// The description.
    pub description: &'a mut String,
    /// The priority.
    pub priority: &'a mut Priority,
    /// The tags.
    pub tags: &'a mut Vec<String>,
}

impl EditableFields<'_> {
    /// Applies the changed fields of `TicketEdited` (`None` = unchanged);
    /// any other payload changes nothing.
    pub fn apply(self, payload: &EventPayload) {
        if let EventPayload::TicketEdited {
            title,
            description,
            priority,
            tags,
        } = payload
        {
            if let Some(v) = title {
                self.title.clone_from(v);
            }
            if let Some(v) = description {
                self.description.clone_from(v);
            }
            if let Some(v) = priority {
                *self.priority = *v;
            }
            if let Some(v) = tags {
                self.tags.clone_from(v);
            }
        }
    }
}

/// Which kind of stream an event belongs to, derived from its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    /// A ticket's own stream.
    Ticket,
    /// A technician's location stream.
    Technician,
    /// A tenant's ticket-number sequence.
    TenantCounter,
    /// One user's read receipts ([`reader_stream_id`]).
    Reader,
    /// One user's administrative history (created, role, password, tokens).
    User,
}

/// The namespace of reader stream ids (UUID v5): fixed forever, as the ids
/// derived from it are in the log.
pub const READER_STREAM_NAMESPACE: Uuid =
    Uuid::from_u128(0x6c1e_93a4_0b5d_4f7e_8a21_5e0c_7d34_b9f2);

/// The stream holding `user`'s read receipts in `tenant`: derived, so it
/// needs no lookup, and distinct from every ticket (v7) and technician
/// (user id) stream id. The tenant is part of it because user ids from an
/// outside identity provider need not be unique across tenants.
pub fn reader_stream_id(tenant: &str, user: UserId) -> StreamId {
    let mut name = Vec::with_capacity(tenant.len() + 17);
    name.extend_from_slice(user.as_bytes());
    name.push(b'/');
    name.extend_from_slice(tenant.as_bytes());
    Uuid::new_v5(&READER_STREAM_NAMESPACE, &name)
}

impl EventPayload {
    /// The variant name, used as `kind` in JSON and in metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            EventPayload::TicketCreated { .. } => "TicketCreated",
            EventPayload::TicketEdited { .. } => "TicketEdited",
            EventPayload::TicketAssigned { .. } => "TicketAssigned",
            EventPayload::TicketStatusChanged { .. } => "TicketStatusChanged",
            EventPayload::CommentPosted { .. } => "CommentPosted",
            EventPayload::DispatchRequested { .. } => "DispatchRequested",
            EventPayload::DispatchAccepted { .. } => "DispatchAccepted",
            EventPayload::DispatchDeclined { .. } => "DispatchDeclined",
            EventPayload::DispatchProgressed { .. } => "DispatchProgressed",
            EventPayload::DispatchCompleted { .. } => "DispatchCompleted",
            EventPayload::TechnicianLocationReported { .. } => "TechnicianLocationReported",
            EventPayload::ReadReceiptRecorded { .. } => "ReadReceiptRecorded",
            EventPayload::TicketNumberAllocated { .. } => "TicketNumberAllocated",
            EventPayload::ConversationRead { .. } => "ConversationRead",
            EventPayload::UserCreated { .. } => "UserCreated",
            EventPayload::UserRoleChanged { .. } => "UserRoleChanged",
            EventPayload::UserPasswordChanged { .. } => "UserPasswordChanged",
            EventPayload::UserTokensRevoked { .. } => "UserTokensRevoked",
        }
    }

    /// The kind of stream this payload may be appended to.
    pub fn stream_kind(&self) -> StreamKind {
        match self {
            EventPayload::TechnicianLocationReported { .. } => StreamKind::Technician,
            EventPayload::TicketNumberAllocated { .. } => StreamKind::TenantCounter,
            EventPayload::ConversationRead { .. } => StreamKind::Reader,
            EventPayload::UserCreated { .. }
            | EventPayload::UserRoleChanged { .. }
            | EventPayload::UserPasswordChanged { .. }
            | EventPayload::UserTokensRevoked { .. } => StreamKind::User,
            _ => StreamKind::Ticket,
        }
    }

    /// Whether this payload must be stored as internal (staff-only).
    pub fn is_internal(&self) -> bool {
        matches!(self, EventPayload::CommentPosted { internal: true, .. })
    }

    /// The payload as a JSON object `{"kind": …, <fields>}` for the API.
    pub fn to_json(&self) -> serde_json::Value {
        // Serde's external tagging gives {"Variant": {fields}}; the API wants
        // the kind beside the fields, which bincode's serde cannot encode
        // directly (internally tagged enums need a self-describing format).
        let mut data = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut outer)) => outer
                .remove(self.kind())
                .unwrap_or(serde_json::Value::Object(Default::default())),
            _ => serde_json::Value::Object(Default::default()),
        };
        if let serde_json::Value::Object(map) = &mut data {
            map.insert("kind".into(), serde_json::Value::String(self.kind().into()));
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every phase with the bincode bytes and JSON name it must keep: the
    /// first two are what the old `DispatchStage` wrote into logs.
    const PINNED: [(DispatchPhase, &[u8], &str); 7] = [
        (DispatchPhase::EnRoute, &[0], "en_route"),
        (DispatchPhase::OnSite, &[1], "on_site"),
        (DispatchPhase::Requested, &[2], "requested"),
        (DispatchPhase::Accepted, &[3], "accepted"),
        (DispatchPhase::Completed, &[4], "completed"),
        (DispatchPhase::Declined, &[5], "declined"),
        (DispatchPhase::Unassigned, &[6], "unassigned"),
    ];

    #[test]
    fn dispatch_phase_encodings_are_pinned() {
        let config = bincode::config::standard();
        for (phase, bytes, name) in PINNED {
            let encoded = bincode::serde::encode_to_vec(phase, config).expect("encode");
            assert_eq!(encoded, bytes, "{phase:?}");
            let (decoded, _): (DispatchPhase, _) =
                bincode::serde::decode_from_slice(bytes, config).expect("decode");
            assert_eq!(decoded, phase);
            assert_eq!(serde_json::to_value(phase).expect("json"), name);
            assert_eq!(phase.as_str(), name);
        }
    }

    #[test]
    fn a_progressed_event_encodes_as_before() {
        // `DispatchProgressed` as the old `DispatchStage` wrote it: the
        // payload's variant index, the dispatch id (16 length-prefixed
        // bytes), the stage's variant index, `None` for the location.
        let id = Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        let event = EventPayload::DispatchProgressed {
            dispatch_id: id,
            stage: DispatchPhase::OnSite,
            location: None,
        };
        let config = bincode::config::standard();
        let encoded = bincode::serde::encode_to_vec(&event, config).expect("encode");
        let payload_index = encoded[0];
        let mut expected = vec![payload_index, 16];
        expected.extend_from_slice(id.as_bytes());
        expected.extend_from_slice(&[1, 0]);
        assert_eq!(encoded, expected);
    }

    #[test]
    fn a_reader_stream_id_is_fixed_per_tenant_and_user() {
        let user = Uuid::from_u128(7);
        let id = reader_stream_id("acme", user);
        assert_eq!(id, reader_stream_id("acme", user));
        assert_eq!(id.get_version_num(), 5);
        assert_ne!(id, reader_stream_id("globex", user));
        assert_ne!(id, reader_stream_id("acme", Uuid::from_u128(8)));
        assert_ne!(id, user);
    }

    #[test]
    fn a_request_reports_only_a_technicians_phases() {
        #[derive(Debug, Deserialize)]
        struct Body {
            #[serde(deserialize_with = "DispatchPhase::deserialize_reported")]
            status: DispatchPhase,
        }
        for (json, phase) in [
            (r#"{"status":"en_route"}"#, DispatchPhase::EnRoute),
            (r#"{"status":"on_site"}"#, DispatchPhase::OnSite),
            (r#"{"status":"completed"}"#, DispatchPhase::Completed),
        ] {
            let body: Body = serde_json::from_str(json).expect("reported phase");
            assert_eq!(body.status, phase);
        }
        let err =
            serde_json::from_str::<Body>(r#"{"status":"requested"}"#).expect_err("not reported");
        assert!(
            err.to_string().starts_with(
                "unknown variant `requested`, expected one of `en_route`, `on_site`, `completed`"
            ),
            "{err}"
        );
    }
}
