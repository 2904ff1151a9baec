//! One ticket's current state, folded from its stream, and its JSON view.

use chrono::{DateTime, Utc};
use event_store::{
    DispatchChoice, DispatchId, DispatchStage, EventPayload, GeoPoint, Location, Priority,
    RecordedEvent, TicketId, TicketKind, TicketStatus, UserId,
};
use serde::{Deserialize, Serialize};

use crate::time::{instant, micros, Micros};

/// Where a dispatch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchStatus {
    /// Waiting for the technician's answer.
    Requested,
    /// The technician accepted.
    Accepted,
    /// The technician declined.
    Declined,
    /// Travelling.
    EnRoute,
    /// Arrived.
    OnSite,
    /// Work done.
    Completed,
}

impl DispatchStatus {
    /// Whether a technician is (or may be) on the way.
    pub fn is_active(self) -> bool {
        !matches!(self, DispatchStatus::Declined | DispatchStatus::Completed)
    }
}

/// A ticket's latest dispatch, as folded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchState {
    /// The dispatch.
    pub id: DispatchId,
    /// The technician asked, `None` on broadcast.
    pub technician: Option<UserId>,
    /// How the technician was chosen.
    pub choice: DispatchChoice,
    /// Where it stands.
    pub status: DispatchStatus,
    /// Distance at request time.
    pub distance_km: Option<f64>,
    /// Estimated travel time at request time.
    pub eta_minutes: Option<f64>,
    /// The technician's last position reported with a progress step.
    pub last_location: Option<GeoPoint>,
    /// When it was requested.
    pub requested_at: Micros,
    /// When it last changed.
    pub updated_at: Micros,
}

/// A ticket's state: the fold of its stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketState {
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
    pub created_at: Micros,
    /// Last change of anything but read receipts.
    pub updated_at: Micros,
    /// Time of the resolution that still stands (cleared by a reopen).
    pub resolved_at: Option<Micros>,
    /// Stream version after the last applied event.
    pub version: u64,
    /// The latest dispatch.
    pub dispatch: Option<DispatchState>,
    /// First public comment by someone other than a customer.
    pub first_response_at: Option<Micros>,
}

impl TicketState {
    /// The state created by a `TicketCreated` event, or `None` for any other.
    pub fn create(event: &RecordedEvent) -> Option<TicketState> {
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
        Some(TicketState {
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
                self.dispatch = Some(DispatchState {
                    id: *dispatch_id,
                    technician: *technician,
                    choice: *choice,
                    status: DispatchStatus::Requested,
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
            } => self.dispatch_moved(
                *dispatch_id,
                DispatchStatus::Accepted,
                Some(*technician),
                at,
            ),
            EventPayload::DispatchDeclined { dispatch_id, .. } => {
                self.dispatch_moved(*dispatch_id, DispatchStatus::Declined, None, at)
            }
            EventPayload::DispatchProgressed {
                dispatch_id,
                stage,
                location,
            } => {
                let status = match stage {
                    DispatchStage::EnRoute => DispatchStatus::EnRoute,
                    DispatchStage::OnSite => DispatchStatus::OnSite,
                };
                self.dispatch_moved(*dispatch_id, status, None, at);
                self.dispatch_located(*dispatch_id, location);
            }
            EventPayload::DispatchCompleted {
                dispatch_id,
                location,
            } => {
                self.dispatch_moved(*dispatch_id, DispatchStatus::Completed, None, at);
                self.dispatch_located(*dispatch_id, location);
            }
            // Reading changes nothing a person would call an update.
            EventPayload::ReadReceiptRecorded { .. } => return,
            EventPayload::TechnicianLocationReported { .. }
            | EventPayload::TicketNumberAllocated { .. } => {}
        }
        self.updated_at = at;
    }

    fn dispatch_moved(
        &mut self,
        id: DispatchId,
        status: DispatchStatus,
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

    /// The contract's JSON shape.
    pub fn view(&self) -> TicketView {
        TicketView {
            id: self.id,
            number: self.number,
            title: self.title.clone(),
            description: self.description.clone(),
            status: self.status,
            priority: self.priority,
            kind: self.kind,
            reporter: self.reporter,
            assignee: self.assignee,
            location: self.location.clone(),
            tags: self.tags.clone(),
            device: self.device.clone(),
            created_at: instant(self.created_at),
            updated_at: instant(self.updated_at),
            resolved_at: self.resolved_at.map(instant),
            version: self.version,
            dispatch: self.dispatch.as_ref().map(DispatchView::of),
        }
    }
}

/// A dispatch as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchView {
    /// The dispatch.
    pub id: DispatchId,
    /// The technician asked, `null` on broadcast.
    pub technician: Option<UserId>,
    /// Where it stands.
    pub status: DispatchStatus,
    /// How the technician was chosen.
    pub choice: DispatchChoice,
    /// Distance at request time.
    pub distance_km: Option<f64>,
    /// Estimated travel time at request time.
    pub eta_minutes: Option<f64>,
    /// The technician's last position reported with a progress step.
    pub last_location: Option<GeoPoint>,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl DispatchView {
    fn of(d: &DispatchState) -> DispatchView {
        DispatchView {
            id: d.id,
            technician: d.technician,
            status: d.status,
            choice: d.choice,
            distance_km: d.distance_km,
            eta_minutes: d.eta_minutes,
            last_location: d.last_location,
            requested_at: instant(d.requested_at),
            updated_at: instant(d.updated_at),
        }
    }
}

/// A ticket as the API shows it (`GET /api/v1/tickets/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketView {
    /// Ticket id.
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
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Time of the standing resolution, `null` when not resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Stream version (for `If-Match`).
    pub version: u64,
    /// The latest dispatch.
    pub dispatch: Option<DispatchView>,
}
