//! The audit view: a ticket's full history with what each event changed,
//! and the ticket's state as of a time or position. Folded on demand from
//! the ticket's stream, which is the record auditors trust.

use chrono::{DateTime, Utc};
use event_store::{
    can_see, can_see_stream, Permission, Principal, RecordedEvent, Role, StreamAudience,
    StreamKind, UserId,
};
use serde::{Deserialize, Serialize};

use crate::error::ProjectionError;
use crate::query::AsOf;
use crate::ticket::TicketView;

/// Who caused an event, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorView {
    /// User id.
    pub id: UserId,
    /// Role acted in.
    pub role: Role,
}

/// One record of a ticket's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Global position.
    pub position: u64,
    /// Version within the ticket's stream.
    pub version: u64,
    /// Event kind (`TicketAssigned`, …).
    pub kind: String,
    /// Who.
    pub actor: ActorView,
    /// When.
    pub at: DateTime<Utc>,
    /// The payload's fields, plus `changes`: `{field: {"old", "new"}}` for
    /// every ticket field the event changed.
    pub data: serde_json::Value,
    /// This record's hash (hex).
    pub hash: String,
    /// The previous record's hash (hex).
    pub prev_hash: String,
}

/// `GET /api/v1/tickets/{id}/audit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    /// The ticket as of the cut (`null` if it did not exist yet).
    pub ticket: Option<TicketView>,
    /// The history up to the cut, in order.
    pub events: Vec<AuditEntry>,
}

/// Fields that change with every event and say nothing on their own.
const NOISE_FIELDS: [&str; 2] = ["version", "updated_at"];

fn changes(before: &serde_json::Value, after: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    if let (serde_json::Value::Object(b), serde_json::Value::Object(a)) = (before, after) {
        for (k, new) in a {
            let old = b.get(k).unwrap_or(&serde_json::Value::Null);
            if old != new && !NOISE_FIELDS.contains(&k.as_str()) {
                out.insert(k.clone(), serde_json::json!({ "old": old, "new": new }));
            }
        }
    }
    serde_json::Value::Object(out)
}

fn to_value(t: &Option<TicketView>) -> serde_json::Value {
    t.as_ref()
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// The audit answer for `principal` over a ticket's whole stream `events`
/// (in version order). Not visible: `NotFound`; visible without
/// `audit.read`: `Forbidden`. Every entry passes `can_see`.
pub fn report(
    principal: &Principal,
    events: &[RecordedEvent],
    as_of: Option<AsOf>,
) -> Result<AuditReport, ProjectionError> {
    let audience = StreamAudience::of(events);
    if audience.kind != Some(StreamKind::Ticket) || !can_see_stream(principal, &audience) {
        return Err(ProjectionError::NotFound);
    }
    if !principal.has(Permission::AuditRead) {
        return Err(ProjectionError::Forbidden {
            permission: Permission::AuditRead.as_str(),
        });
    }
    let mut state: Option<TicketView> = None;
    let mut entries = vec![];
    for e in events
        .iter()
        .take_while(|e| as_of.is_none_or(|c| c.includes(e.position, &e.recorded_at)))
    {
        let created = state.is_none();
        let before = to_value(&state);
        match state.as_mut() {
            Some(s) => s.apply(e),
            None => state = TicketView::create(e),
        }
        if !can_see(principal, e, &audience) {
            continue;
        }
        let mut data = e.payload.to_json();
        if let serde_json::Value::Object(map) = &mut data {
            map.remove("kind");
            let diff = if created {
                serde_json::Value::Object(Default::default())
            } else {
                changes(&before, &to_value(&state))
            };
            map.insert("changes".into(), diff);
        }
        entries.push(AuditEntry {
            position: e.position,
            version: e.stream_version,
            kind: e.payload.kind().to_string(),
            actor: ActorView {
                id: e.actor.user_id,
                role: e.actor.role,
            },
            at: e.recorded_at,
            data,
            hash: RecordedEvent::hex(&e.hash),
            prev_hash: RecordedEvent::hex(&e.prev_hash),
        });
    }
    Ok(AuditReport {
        ticket: state,
        events: entries,
    })
}

/// `GET /api/v1/events`: one page of the raw log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsPage {
    /// Visible events in position order: the payload's fields with `kind`,
    /// `actor`, `at`, `stream_id`, `version`, `position`, `event_id`,
    /// `visibility`, `hash`, `prev_hash`.
    pub items: Vec<serde_json::Value>,
    /// `after` for the next page (the last position inspected); `null`
    /// when the projection's head was reached.
    pub next: Option<u64>,
    /// The same as `next`, as an opaque string, for list uniformity.
    pub next_cursor: Option<String>,
}

/// An event as the raw log query shows it (`version` when the reader is
/// shown versions).
pub fn event_json(e: &RecordedEvent, with_version: bool) -> serde_json::Value {
    let mut v = e.to_json(with_version);
    if let serde_json::Value::Object(map) = &mut v {
        map.insert("hash".into(), RecordedEvent::hex(&e.hash).into());
        map.insert("prev_hash".into(), RecordedEvent::hex(&e.prev_hash).into());
    }
    v
}

impl AuditReport {
    /// The history for a person in a terminal (`ticketlog replay`): one
    /// line per event with its changes, then the resulting state.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for e in &self.events {
            out.push_str(&format!(
                "#{:<8} v{:<4} {} {:<22} {} {}\n",
                e.position,
                e.version,
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                e.kind,
                e.actor.role.as_str(),
                e.actor.id
            ));
            if let Some(serde_json::Value::Object(changes)) = e.data.get("changes") {
                for (field, change) in changes {
                    out.push_str(&format!(
                        "           {field}: {} -> {}\n",
                        change["old"], change["new"]
                    ));
                }
            }
            if let Some(body) = e.data.get("body").and_then(|b| b.as_str()) {
                out.push_str(&format!("           \"{}\"\n", body.replace('\n', " ")));
            }
            out.push_str(&format!(
                "           hash {} prev {}\n",
                e.hash, e.prev_hash
            ));
        }
        match &self.ticket {
            Some(t) => out.push_str(&format!(
                "state: #{} \"{}\" {} {:?} assignee {}\n",
                t.number,
                t.title,
                t.status.as_str(),
                t.priority,
                t.assignee
                    .map_or_else(|| "-".to_string(), |a| a.to_string())
            )),
            None => out.push_str("state: (not created yet)\n"),
        }
        out
    }
}
