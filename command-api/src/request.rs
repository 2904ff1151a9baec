//! The command requests of the contract's command table: each route's JSON
//! body and the one mapping from a request to the domain's [`Action`].
//! The HTTP handlers, the demo seed and the fuzz target all map through
//! [`Request::into_action`].

use event_store::{
    DispatchPhase, GeoPoint, Hash, Location, Principal, Priority, TicketKind, TicketStatus, UserId,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod shape;

use crate::domain::{
    Action, AssignDispatch, AssignTicket, ChangeStatus, CreateTicket, DispatchResponse, EditTicket,
    PostComment, ProgressDispatch, ReportLocation, RespondDispatch,
};
use crate::service::CommandKey;

/// Namespace of command ids derived from `Idempotency-Key`s: keys are
/// scoped to the user who sent them, so one user's key can never replay
/// another user's answer.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x3e0f_9a77_51d2_4c8b_a6e4_0b9d_2c71_f5a3);

/// The command id of a request: derived from its `Idempotency-Key`, else fresh.
pub fn command_id(principal: &Principal, key: Option<Uuid>) -> Uuid {
    match key {
        Some(k) => Uuid::new_v5(
            &IDEMPOTENCY_NAMESPACE,
            format!("{}/{}/{k}", principal.tenant, principal.user_id).as_bytes(),
        ),
        None => Uuid::now_v7(),
    }
}

/// Domain separation of request fingerprints (BLAKE3 over other bytes
/// never collides with them).
const FINGERPRINT_DOMAIN: &[u8] = b"ticketlog/request/v1\0";

/// The command key of a request: its command id (from the
/// `Idempotency-Key`, scoped to the user, else fresh) and, when a key was
/// sent, the fingerprint of `request` on `on`, which binds the key to it.
pub fn command_key(
    principal: &Principal,
    key: Option<Uuid>,
    request: &Request,
    on: Option<Uuid>,
) -> CommandKey {
    CommandKey {
        id: command_id(principal, key),
        // A fresh id can never be retried: nothing to bind, nothing stored.
        fingerprint: key.map(|_| request.fingerprint(on)),
    }
}

/// A route's body type: JSON, and whether an empty body stands for one.
pub trait RequestBody: DeserializeOwned + Send + 'static {
    /// The body an empty request means, for routes whose body is optional.
    fn when_empty() -> Option<Self> {
        None
    }
}

/// `POST /api/v1/tickets` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketBody {
    /// Short summary.
    pub title: String,
    /// Full text.
    #[serde(default)]
    pub description: String,
    /// Urgency.
    #[serde(deserialize_with = "shape::string_enum")]
    pub priority: Priority,
    /// Kind of work.
    #[serde(deserialize_with = "shape::string_enum")]
    pub kind: TicketKind,
    /// Where, if known.
    #[serde(default, deserialize_with = "shape::object_opt")]
    pub location: Option<Location>,
    /// Free labels.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Device concerned.
    #[serde(default)]
    pub device: Option<String>,
}

/// `PATCH /api/v1/tickets/{id}` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditTicketBody {
    /// New title.
    #[serde(default)]
    pub title: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New priority.
    #[serde(default, deserialize_with = "shape::string_enum_opt")]
    pub priority: Option<Priority>,
    /// New tag set.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// `POST /api/v1/tickets/{id}/assign` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// The new assignee.
    pub assignee_id: UserId,
}

/// `POST /api/v1/tickets/{id}/status` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// The target status.
    #[serde(deserialize_with = "shape::string_enum")]
    pub status: TicketStatus,
    /// Why, optionally.
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /api/v1/tickets/{id}/comments` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// The text.
    pub body: String,
    /// Staff-only note.
    #[serde(default)]
    pub internal: bool,
}

/// `POST /api/v1/tickets/{id}/dispatches` body (may be empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchBody {
    /// The technician; none = nearest available.
    #[serde(default)]
    pub technician_id: Option<UserId>,
    /// Search radius.
    #[serde(default)]
    pub radius_km: Option<f64>,
}

/// `POST /api/v1/dispatches/{id}/{accept,decline}` body (may be empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondBody {
    /// Why, optionally.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /api/v1/dispatches/{id}/status` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressBody {
    /// The new stage: one a technician reports (en_route, on_site, completed).
    #[serde(deserialize_with = "reported_phase")]
    pub status: DispatchPhase,
    /// Where the technician is.
    #[serde(default, deserialize_with = "shape::object_opt")]
    pub location: Option<GeoPoint>,
}

/// `POST /api/v1/technicians/me/location` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationBody {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Site, if any.
    #[serde(default)]
    pub site: Option<String>,
    /// Building, if any.
    #[serde(default)]
    pub building: Option<String>,
    /// Floor, if any.
    #[serde(default)]
    pub floor: Option<String>,
}

/// A phase a technician reports, named by a string only.
fn reported_phase<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DispatchPhase, D::Error> {
    shape::string_with(d, |s| DispatchPhase::deserialize_reported(s))
}

impl RequestBody for CreateTicketBody {}
impl RequestBody for EditTicketBody {}
impl RequestBody for AssignBody {}
impl RequestBody for StatusBody {}
impl RequestBody for CommentBody {}
impl RequestBody for ProgressBody {}
impl RequestBody for LocationBody {}

impl RequestBody for DispatchBody {
    fn when_empty() -> Option<Self> {
        Some(Self::default())
    }
}

impl RequestBody for RespondBody {
    fn when_empty() -> Option<Self> {
        Some(Self::default())
    }
}

/// A command request: which route, with its body. As JSON (the demo seed)
/// `{"command": "<route>", "body": {..}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", content = "body", rename_all = "snake_case")]
pub enum Request {
    /// `POST /api/v1/tickets`
    CreateTicket(CreateTicketBody),
    /// `PATCH /api/v1/tickets/{id}`
    EditTicket(EditTicketBody),
    /// `POST /api/v1/tickets/{id}/assign`
    AssignTicket(AssignBody),
    /// `POST /api/v1/tickets/{id}/status`
    ChangeStatus(StatusBody),
    /// `POST /api/v1/tickets/{id}/comments`
    PostComment(CommentBody),
    /// `POST /api/v1/tickets/{id}/dispatches`
    AssignDispatch(DispatchBody),
    /// `POST /api/v1/dispatches/{id}/accept`
    AcceptDispatch(RespondBody),
    /// `POST /api/v1/dispatches/{id}/decline`
    DeclineDispatch(RespondBody),
    /// `POST /api/v1/dispatches/{id}/status`
    ProgressDispatch(ProgressBody),
    /// `POST /api/v1/technicians/me/location`
    ReportLocation(LocationBody),
}

impl Request {
    /// The method and route template of this request, as the router
    /// serves it (`command-api/src/http/routes/mod.rs`): part of its
    /// fingerprint, so changing one here re-binds every stored key.
    pub fn route(&self) -> (&'static str, &'static str) {
        match self {
            Request::CreateTicket(_) => ("POST", "/api/v1/tickets"),
            Request::EditTicket(_) => ("PATCH", "/api/v1/tickets/{id}"),
            Request::AssignTicket(_) => ("POST", "/api/v1/tickets/{id}/assign"),
            Request::ChangeStatus(_) => ("POST", "/api/v1/tickets/{id}/status"),
            Request::PostComment(_) => ("POST", "/api/v1/tickets/{id}/comments"),
            Request::AssignDispatch(_) => ("POST", "/api/v1/tickets/{id}/dispatches"),
            Request::AcceptDispatch(_) => ("POST", "/api/v1/dispatches/{id}/accept"),
            Request::DeclineDispatch(_) => ("POST", "/api/v1/dispatches/{id}/decline"),
            Request::ProgressDispatch(_) => ("POST", "/api/v1/dispatches/{id}/status"),
            Request::ReportLocation(_) => ("POST", "/api/v1/technicians/me/location"),
        }
    }

    /// What an `Idempotency-Key` is bound to: BLAKE3 over the method, the
    /// route template, the path's `{id}` (`on`) and the request's canonical
    /// JSON. Canonical means the typed request serialised again: fields in
    /// declaration order, defaults spelled out, no whitespace, numbers as
    /// parsed, so the client's key order, spacing, `5` vs `5.0` or an
    /// omitted default do not change it, and any change of meaning does.
    /// Each part is length-prefixed, so no two requests share their bytes.
    pub fn fingerprint(&self, on: Option<Uuid>) -> Hash {
        let (method, template) = self.route();
        // Serialising these plain data types cannot fail (string keys only).
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        let on = on.map(|id| id.into_bytes());
        let mut h = blake3::Hasher::new();
        h.update(FINGERPRINT_DOMAIN);
        for part in [
            method.as_bytes(),
            template.as_bytes(),
            on.as_ref().map_or(&[][..], |b| &b[..]),
            &canonical,
        ] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        *h.finalize().as_bytes()
    }

    /// The command this request asks for. `on` is the ticket or dispatch
    /// its path names (`{id}`), `new_id` the id of what it creates (ticket,
    /// comment or dispatch). `None` when the route needs `on` and has none.
    pub fn into_action(self, on: Option<Uuid>, new_id: Uuid) -> Option<Action> {
        Some(match self {
            Request::CreateTicket(b) => Action::CreateTicket(CreateTicket {
                ticket_id: new_id,
                title: b.title,
                description: b.description,
                priority: b.priority,
                kind: b.kind,
                location: b.location,
                tags: b.tags,
                device: b.device,
            }),
            Request::EditTicket(b) => Action::EditTicket(EditTicket {
                ticket_id: on?,
                title: b.title,
                description: b.description,
                priority: b.priority,
                tags: b.tags,
            }),
            Request::AssignTicket(b) => Action::AssignTicket(AssignTicket {
                ticket_id: on?,
                assignee_id: b.assignee_id,
            }),
            Request::ChangeStatus(b) => Action::ChangeStatus(ChangeStatus {
                ticket_id: on?,
                status: b.status,
                note: b.note,
            }),
            Request::PostComment(b) => Action::PostComment(PostComment {
                ticket_id: on?,
                comment_id: new_id,
                body: b.body,
                internal: b.internal,
            }),
            Request::AssignDispatch(b) => Action::AssignDispatch(AssignDispatch {
                ticket_id: on?,
                dispatch_id: new_id,
                technician_id: b.technician_id,
                radius_km: b.radius_km,
            }),
            Request::AcceptDispatch(b) => respond(on?, DispatchResponse::Accept, b),
            Request::DeclineDispatch(b) => respond(on?, DispatchResponse::Decline, b),
            Request::ProgressDispatch(b) => Action::ProgressDispatch(ProgressDispatch {
                dispatch_id: on?,
                stage: b.status,
                location: b.location,
            }),
            Request::ReportLocation(b) => Action::ReportLocation(ReportLocation {
                lat: b.lat,
                lon: b.lon,
                site: b.site,
                building: b.building,
                floor: b.floor,
            }),
        })
    }
}

fn respond(dispatch_id: Uuid, response: DispatchResponse, b: RespondBody) -> Action {
    Action::RespondDispatch(RespondDispatch {
        dispatch_id,
        response,
        reason: b.reason,
    })
}
