//! Commands: what a principal asks for, with the principal, the time and
//! the new ids; what only the service knows (the ticket number, the fleet,
//! its configuration) comes separately as the decision's [`Context`], so
//! deciding stays pure and no command carries a field to be filled in later.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use event_store::{
    DispatchId, DispatchPhase, GeoPoint, Location, Principal, Priority, Role, StreamId, TicketId,
    TicketKind, TicketStatus, UserId,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::proximity::TechnicianInfo;

/// A command with its context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Who asks (from a verified token).
    pub principal: Principal,
    /// When the command is decided; becomes the events' `recorded_at`.
    pub at: DateTime<Utc>,
    /// What is asked.
    pub action: Action,
}

/// Every command of the contract's command table, plus read receipts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// `POST /api/v1/tickets`
    CreateTicket(CreateTicket),
    /// `PATCH /api/v1/tickets/{id}`
    EditTicket(EditTicket),
    /// `POST /api/v1/tickets/{id}/assign`
    AssignTicket(AssignTicket),
    /// `POST /api/v1/tickets/{id}/status`
    ChangeStatus(ChangeStatus),
    /// `POST /api/v1/tickets/{id}/comments`
    PostComment(PostComment),
    /// `POST /api/v1/tickets/{id}/dispatches`
    AssignDispatch(AssignDispatch),
    /// `POST /api/v1/dispatches/{id}/{accept,decline}`
    RespondDispatch(RespondDispatch),
    /// `POST /api/v1/dispatches/{id}/status`
    ProgressDispatch(ProgressDispatch),
    /// `POST /api/v1/technicians/me/location`
    ReportLocation(ReportLocation),
    /// WebSocket `{"type":"read"}`: a read receipt.
    RecordRead(RecordRead),
    /// The service's timer: a dispatch request left unanswered too long.
    ExpireDispatch(ExpireDispatch),
}

/// Opens a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateTicket {
    /// The new ticket's id (v7), chosen by the caller.
    pub ticket_id: TicketId,
    /// Short summary.
    pub title: String,
    /// Full text (may be empty).
    pub description: String,
    /// Urgency.
    pub priority: Priority,
    /// Kind of work.
    pub kind: TicketKind,
    /// Where, if known.
    pub location: Option<Location>,
    /// Free labels.
    pub tags: Vec<String>,
    /// Device concerned.
    pub device: Option<String>,
}

/// Changes some of a ticket's fields (`None` = leave as is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditTicket {
    /// The ticket.
    pub ticket_id: TicketId,
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New priority.
    pub priority: Option<Priority>,
    /// New tag set (replaces the old one).
    pub tags: Option<Vec<String>>,
}

/// Gives a ticket an assignee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignTicket {
    /// The ticket.
    pub ticket_id: TicketId,
    /// The new assignee.
    pub assignee_id: UserId,
}

/// Moves a ticket in the workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeStatus {
    /// The ticket.
    pub ticket_id: TicketId,
    /// The target status.
    pub status: TicketStatus,
    /// Why, optionally.
    pub note: Option<String>,
}

/// Posts a comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostComment {
    /// The ticket.
    pub ticket_id: TicketId,
    /// The new comment's id (v7), chosen by the caller.
    pub comment_id: Uuid,
    /// The text (1..=8 KiB).
    pub body: String,
    /// Staff-only note.
    pub internal: bool,
}

/// Sends a technician to a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignDispatch {
    /// The ticket.
    pub ticket_id: TicketId,
    /// The new dispatch's id (v7), chosen by the caller.
    pub dispatch_id: DispatchId,
    /// The technician; `None` = nearest available.
    pub technician_id: Option<UserId>,
    /// Search radius (default 50 km).
    pub radius_km: Option<f64>,
}

/// A technician's answer to a dispatch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchResponse {
    /// Will go.
    Accept,
    /// Will not go.
    Decline,
}

/// Accepts or declines a dispatch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RespondDispatch {
    /// The dispatch (the service finds its ticket).
    pub dispatch_id: DispatchId,
    /// Accept or decline.
    pub response: DispatchResponse,
    /// Why, optionally (kept on declines).
    pub reason: Option<String>,
}

/// Reports progress on a dispatch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressDispatch {
    /// The dispatch (the service finds its ticket).
    pub dispatch_id: DispatchId,
    /// The new phase (`EnRoute`, `OnSite` or `Completed`; decide refuses others).
    pub stage: DispatchPhase,
    /// Where the technician is.
    pub location: Option<GeoPoint>,
}

/// A technician's position (goes to the technician's own stream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportLocation {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Site, if any.
    pub site: Option<String>,
    /// Building, if any.
    pub building: Option<String>,
    /// Floor, if any.
    pub floor: Option<String>,
}

/// Records that the principal read a ticket up to a position (in the
/// principal's reader stream, never the ticket's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordRead {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Global position of the last event read.
    pub position: u64,
}

/// Declines, on the technician's behalf, a request unanswered for
/// [`Context::dispatch_timeout_secs`] (reason `timeout`), so the ticket can
/// go to the next nearest technician.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpireDispatch {
    /// The dispatch (the service finds its ticket).
    pub dispatch_id: DispatchId,
}

/// What the service supplies to a decision beyond the command and the
/// stream's state: facts from elsewhere in the log and configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// The tenant-wide number allocated to a new ticket: `Some` only for a
    /// `CreateTicket`, once the service has allocated it.
    pub ticket_number: Option<u64>,
    /// The tenant's technicians with last positions and availability,
    /// gathered from their streams (`AssignDispatch`; may be empty).
    pub fleet: Vec<TechnicianInfo>,
    /// Average technician travel speed for dispatch ETAs.
    pub speed_kmh: f64,
    /// How long a dispatch request may stay unanswered (`ExpireDispatch`).
    pub dispatch_timeout_secs: u64,
    /// The roles of the users the command names to take work
    /// ([`Action::named_user`]) who are members of the command's tenant, as
    /// the service found them in the directory. A named user missing here is
    /// unknown or another tenant's: decide cannot, and must not, tell which.
    pub members: BTreeMap<UserId, Role>,
}

/// Which stream a command is decided against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A ticket that must not exist yet.
    NewTicket(TicketId),
    /// An existing ticket.
    Ticket(TicketId),
    /// The ticket a dispatch belongs to (looked up by the service).
    Dispatch(DispatchId),
    /// A technician's own location stream (stream id = user id).
    Technician(UserId),
    /// A user's own read receipts (`event_store::reader_stream_id`).
    Reader(StreamId),
}

impl Command {
    /// The stream this command reads and appends to.
    pub fn target(&self) -> Target {
        match &self.action {
            Action::CreateTicket(c) => Target::NewTicket(c.ticket_id),
            Action::EditTicket(c) => Target::Ticket(c.ticket_id),
            Action::AssignTicket(c) => Target::Ticket(c.ticket_id),
            Action::ChangeStatus(c) => Target::Ticket(c.ticket_id),
            Action::PostComment(c) => Target::Ticket(c.ticket_id),
            Action::AssignDispatch(c) => Target::Ticket(c.ticket_id),
            Action::RespondDispatch(c) => Target::Dispatch(c.dispatch_id),
            Action::ProgressDispatch(c) => Target::Dispatch(c.dispatch_id),
            Action::ReportLocation(_) => Target::Technician(self.principal.user_id),
            Action::RecordRead(_) => Target::Reader(event_store::reader_stream_id(
                &self.principal.tenant,
                self.principal.user_id,
            )),
            Action::ExpireDispatch(c) => Target::Dispatch(c.dispatch_id),
        }
    }
}

impl Action {
    /// The user this command names to take work (a ticket's assignee, a
    /// dispatch's technician), whom the service looks up for [`Context::members`].
    pub fn named_user(&self) -> Option<UserId> {
        match self {
            Action::AssignTicket(c) => Some(c.assignee_id),
            Action::AssignDispatch(c) => c.technician_id,
            _ => None,
        }
    }

    /// The command's name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Action::CreateTicket(_) => "CreateTicket",
            Action::EditTicket(_) => "EditTicket",
            Action::AssignTicket(_) => "AssignTicket",
            Action::ChangeStatus(_) => "ChangeStatus",
            Action::PostComment(_) => "PostComment",
            Action::AssignDispatch(_) => "AssignDispatch",
            Action::RespondDispatch(_) => "RespondDispatch",
            Action::ProgressDispatch(_) => "ProgressDispatch",
            Action::ReportLocation(_) => "ReportLocation",
            Action::RecordRead(_) => "RecordRead",
            Action::ExpireDispatch(_) => "ExpireDispatch",
        }
    }
}
