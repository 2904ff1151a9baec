//! One ticket as the read model folds it from its stream and the API
//! shows it: one type for both, its instants encoded by `time::Shown`.

use event_store::{
    DispatchChoice, DispatchId, DispatchPhase, EventPayload, Gate, GeoPoint, Location, Priority,
    RecordedEvent, TicketId, TicketKind, TicketStatus, UserId, Visibility,
};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::time::{micros, Micros, Shown};

/// A ticket's latest dispatch, as folded and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchView {
    /// The dispatch.
    pub id: DispatchId,
    /// The technician asked, `None` (`null`) on broadcast.
    pub technician: Option<UserId>,
    /// Where it stands (a broadcast shows as `requested`, never
    /// `unassigned`).
    pub status: DispatchPhase,
    /// How the technician was chosen.
    pub choice: DispatchChoice,
    /// Distance at request time.
    pub distance_km: Option<f64>,
    /// Estimated travel time at request time.
    pub eta_minutes: Option<f64>,
    /// The technician's last position reported with a progress step.
    pub last_location: Option<GeoPoint>,
    /// When it was requested.
    #[serde(with = "crate::time::shown")]
    pub requested_at: Micros,
    /// When it last changed.
    #[serde(with = "crate::time::shown")]
    pub updated_at: Micros,
}

/// A ticket: the fold of its stream, kept by the read model and its
/// snapshot, and the contract's JSON (`GET /api/v1/tickets/{id}`), which
/// leaves out `first_response_at` (see the `Serialize` impl).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TicketView {
    /// Ticket (= stream) id.
    pub id: TicketId,
    /// Per-tenant number.
    pub number: u64,
    /// Summary.
    pub title: String,
    /// Full text.
    pub description: String,
    /// Workflow status.
    pub status: TicketStatus,
    /// Urgency.
    pub priority: Priority,
    /// Kind of work.
    pub kind: TicketKind,
    /// Who reported it.
    pub reporter: UserId,
    /// Who owns it.
    pub assignee: Option<UserId>,
    /// Where.
    pub location: Option<Location>,
    /// Labels.
    pub tags: Vec<String>,
    /// Device concerned.
    pub device: Option<String>,
    /// Creation time.
    #[serde(with = "crate::time::shown")]
    pub created_at: Micros,
    /// Last change of anything but read receipts.
    #[serde(with = "crate::time::shown")]
    pub updated_at: Micros,
    /// Time of the resolution that still stands (cleared by a reopen).
    #[serde(with = "crate::time::shown_opt")]
    pub resolved_at: Option<Micros>,
    /// Stream version after the last applied event.
    pub version: u64,
    /// The latest dispatch.
    pub dispatch: Option<DispatchView>,
    /// First public comment by someone other than a customer (not in JSON).
    #[serde(default)]
    pub first_response_at: Option<Micros>,
    /// Last change by a public event: the `updated_at` shown to those who
    /// may not see internal ones (issue 14; not in JSON).
    #[serde(default)]
    pub public_updated_at: Micros,
}

impl TicketView {
    /// The ticket created by a `TicketCreated` event, or `None` for any other.
    pub fn create(event: &RecordedEvent) -> Option<TicketView> {
        let EventPayload::TicketCreated {
            number,
            title,
            description,
            priority,
            kind,
            reporter,
            location,
            tags,
            device,
        } = &event.payload
        else {
            return None;
        };
        let at = micros(&event.recorded_at);
        Some(TicketView {
            id: event.stream_id,
            number: *number,
            title: title.clone(),
            description: description.clone(),
            status: TicketStatus::Open,
            priority: *priority,
            kind: *kind,
            reporter: *reporter,
            assignee: None,
            location: location.clone(),
            tags: tags.clone(),
            device: device.clone(),
            created_at: at,
            updated_at: at,
            resolved_at: None,
            version: event.stream_version,
            dispatch: None,
            first_response_at: None,
            public_updated_at: at,
        })
    }

    /// Folds one later event of the ticket's stream.
    pub fn apply(&mut self, event: &RecordedEvent) {
        let at = micros(&event.recorded_at);
        self.version = event.stream_version;
        match &event.payload {
            EventPayload::TicketCreated { .. } => {}
            EventPayload::TicketEdited { .. } => event_store::EditableFields {
                title: &mut self.title,
                description: &mut self.description,
                priority: &mut self.priority,
                tags: &mut self.tags,
            }
            .apply(&event.payload),
            EventPayload::TicketAssigned { assignee, .. } => self.assignee = Some(*assignee),
            EventPayload::TicketStatusChanged { to, .. } => {
                self.status = *to;
                match to {
                    TicketStatus::Resolved => self.resolved_at = Some(at),
                    TicketStatus::Closed => self.resolved_at = self.resolved_at.or(Some(at)),
                    _ => self.resolved_at = None,
                }
            }
            EventPayload::CommentPosted { .. } => {
                if event_store::is_staff_response(event.actor.role, event.visibility)
                    && self.first_response_at.is_none()
                {
                    self.first_response_at = Some(at);
                }
            }
            EventPayload::DispatchRequested {
                dispatch_id,
                technician,
                choice,
                distance_km,
                eta_minutes,
                ..
            } => {
                self.dispatch = Some(DispatchView {
                    id: *dispatch_id,
                    technician: *technician,
                    choice: *choice,
                    status: DispatchPhase::Requested,
                    distance_km: *distance_km,
                    eta_minutes: *eta_minutes,
                    last_location: None,
                    requested_at: at,
                    updated_at: at,
                })
            }
            EventPayload::DispatchAccepted {
                dispatch_id,
                technician,
            } => self.dispatch_moved(*dispatch_id, DispatchPhase::Accepted, Some(*technician), at),
            EventPayload::DispatchDeclined { dispatch_id, .. } => {
                self.dispatch_moved(*dispatch_id, DispatchPhase::Declined, None, at)
            }
            EventPayload::DispatchProgressed {
                dispatch_id,
                stage,
                location,
            } => {
                self.dispatch_moved(*dispatch_id, *stage, None, at);
                self.dispatch_located(*dispatch_id, location);
            }
            EventPayload::DispatchCompleted {
                dispatch_id,
                location,
            } => {
                self.dispatch_moved(*dispatch_id, DispatchPhase::Completed, None, at);
                self.dispatch_located(*dispatch_id, location);
            }
            // Reading changes nothing a person would call an update.
            EventPayload::ReadReceiptRecorded { .. } => return,
            // A user stream's events are not a ticket's.
            EventPayload::UserCreated { .. }
            | EventPayload::UserRoleChanged { .. }
            | EventPayload::UserPasswordChanged { .. }
            | EventPayload::UserTokensRevoked { .. } => return,
            EventPayload::TechnicianLocationReported { .. }
            | EventPayload::TicketNumberAllocated { .. } => {}
            // A reader stream's event; never a ticket's.
            EventPayload::ConversationRead { .. } => return,
        }
        self.updated_at = at;
        if event.visibility == Visibility::Public {
            self.public_updated_at = at;
        }
    }

    /// The ticket as a reader with `gate` is shown it.
    pub fn shown(self, gate: &Gate) -> ShownTicket {
        ShownTicket {
            everything: gate.shows_everything(),
            view: self,
        }
    }

    fn dispatch_moved(
        &mut self,
        id: DispatchId,
        status: DispatchPhase,
        technician: Option<UserId>,
        at: Micros,
    ) {
        if let Some(d) = self.dispatch.as_mut().filter(|d| d.id == id) {
            d.status = status;
            if technician.is_some() {
                d.technician = technician;
            }
            d.updated_at = at;
        }
    }

    /// Keeps the technician's position when a step reports one.
    fn dispatch_located(&mut self, id: DispatchId, location: &Option<GeoPoint>) {
        if let (Some(d), Some(l)) = (self.dispatch.as_mut().filter(|d| d.id == id), location) {
            d.last_location = Some(*l);
        }
    }

    /// Whether the ticket counts as resolved (resolved or closed).
    pub fn is_resolved(&self) -> bool {
        matches!(self.status, TicketStatus::Resolved | TicketStatus::Closed)
    }
}

/// A ticket as one reader is shown it: the contract's JSON. A reader who
/// may not see internal events is shown no `version` and the `updated_at`
/// of the last event it may see, so a hidden note leaves no trace.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownTicket {
    /// The ticket.
    pub view: TicketView,
    /// Whether the reader sees every event (`Gate::shows_everything`).
    pub everything: bool,
}

/// Reads as the ticket it shows.
impl std::ops::Deref for ShownTicket {
    type Target = TicketView;

    fn deref(&self) -> &TicketView {
        &self.view
    }
}

impl Serialize for ShownTicket {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.view.write(serializer, Some(self.everything))
    }
}

/// Human-readable encodings (the API's JSON) are the staff's view (see
/// [`ShownTicket`]); the snapshot keeps every field in the order
/// `Deserialize` expects.
impl Serialize for TicketView {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let shown = serializer.is_human_readable().then_some(true);
        self.write(serializer, shown)
    }
}

impl TicketView {
    /// Writes the JSON shown to a reader (`Some(everything)`) or, with
    /// `None`, every field for the snapshot.
    fn write<S: Serializer>(&self, serializer: S, shown: Option<bool>) -> Result<S::Ok, S::Error> {
        let fields = match shown {
            None => 19,
            Some(true) => 17,
            Some(false) => 16,
        };
        let mut t = serializer.serialize_struct("TicketView", fields)?;
        t.serialize_field("id", &self.id)?;
        t.serialize_field("number", &self.number)?;
        t.serialize_field("title", &self.title)?;
        t.serialize_field("description", &self.description)?;
        t.serialize_field("status", &self.status)?;
        t.serialize_field("priority", &self.priority)?;
        t.serialize_field("kind", &self.kind)?;
        t.serialize_field("reporter", &self.reporter)?;
        t.serialize_field("assignee", &self.assignee)?;
        t.serialize_field("location", &self.location)?;
        t.serialize_field("tags", &self.tags)?;
        t.serialize_field("device", &self.device)?;
        t.serialize_field("created_at", &Shown(self.created_at))?;
        let updated_at = match shown {
            Some(false) => self.public_updated_at,
            _ => self.updated_at,
        };
        t.serialize_field("updated_at", &Shown(updated_at))?;
        t.serialize_field("resolved_at", &self.resolved_at.map(Shown))?;
        if shown == Some(false) {
            t.skip_field("version")?;
        } else {
            t.serialize_field("version", &self.version)?;
        }
        t.serialize_field("dispatch", &self.dispatch)?;
        if shown.is_some() {
            t.skip_field("first_response_at")?;
            t.skip_field("public_updated_at")?;
        } else {
            t.serialize_field("first_response_at", &self.first_response_at)?;
            t.serialize_field("public_updated_at", &self.public_updated_at)?;
        }
        t.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_store::{DispatchChoice, Priority, TicketKind, TicketStatus};
    use uuid::Uuid;

    fn ticket() -> TicketView {
        TicketView {
            id: Uuid::from_u128(1),
            number: 7,
            title: "Printer".into(),
            description: String::new(),
            status: TicketStatus::Open,
            priority: Priority::High,
            kind: TicketKind::Incident,
            reporter: Uuid::from_u128(2),
            assignee: None,
            location: None,
            tags: vec![],
            device: None,
            created_at: 1_700_000_000_000_000,
            updated_at: 1_700_000_000_250_000,
            resolved_at: None,
            version: 3,
            dispatch: Some(DispatchView {
                id: Uuid::from_u128(3),
                technician: None,
                status: DispatchPhase::Requested,
                choice: DispatchChoice::Broadcast,
                distance_km: None,
                eta_minutes: None,
                last_location: None,
                requested_at: 1_700_000_000_000_000,
                updated_at: 1_700_000_000_000_001,
            }),
            first_response_at: Some(1_700_000_000_100_000),
            public_updated_at: 1_700_000_000_000_000,
        }
    }

    #[test]
    fn json_is_the_contracts_shape() {
        let json = serde_json::to_value(ticket()).expect("json");
        let keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert!(!keys.contains(&"first_response_at"), "{keys:?}");
        assert_eq!(keys.len(), 17, "{keys:?}");
        assert_eq!(json["created_at"], "2023-11-14T22:13:20Z");
        assert_eq!(json["updated_at"], "2023-11-14T22:13:20.250Z");
        assert_eq!(json["resolved_at"], serde_json::Value::Null);
        assert_eq!(json["dispatch"]["status"], "requested");
        assert_eq!(
            json["dispatch"]["updated_at"],
            "2023-11-14T22:13:20.000001Z"
        );
        let back: TicketView = serde_json::from_value(json).expect("back");
        assert_eq!(back.first_response_at, None);
        assert_eq!(back.dispatch, ticket().dispatch);
    }

    #[test]
    fn one_who_may_not_see_internal_events_is_shown_no_version() {
        let gate = |internal| Gate {
            stream: true,
            public: true,
            internal,
        };
        let staff = serde_json::to_value(ticket().shown(&gate(true))).expect("json");
        assert_eq!(staff, serde_json::to_value(ticket()).expect("json"));
        assert_eq!(staff["version"], 3);
        assert_eq!(staff["updated_at"], "2023-11-14T22:13:20.250Z");
        let customer = serde_json::to_value(ticket().shown(&gate(false))).expect("json");
        assert_eq!(customer.get("version"), None, "{customer}");
        assert_eq!(customer["updated_at"], "2023-11-14T22:13:20Z");
        assert_eq!(customer.as_object().map(|o| o.len()), Some(16));
    }

    #[test]
    fn the_snapshot_encoding_keeps_every_field() {
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(ticket(), config).expect("encode");
        let (back, _): (TicketView, _) =
            bincode::serde::decode_from_slice(&bytes, config).expect("decode");
        assert_eq!(back, ticket());
    }
}
