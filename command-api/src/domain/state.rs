//! A ticket's state, folded from its stream.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use event_store::{
    DispatchChoice, DispatchId, DispatchPhase, EventPayload, GeoPoint, Location, Priority,
    RecordedEvent, StreamAudience, TicketId, TicketKind, TicketStatus, UserId,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Everything decide needs to know about one ticket stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TicketState {
    /// Who may see the stream (the one visibility rule's input).
    pub audience: StreamAudience,
    /// Stream version folded in (0 = no stream).
    pub version: u64,
    /// Global position of the last event folded in.
    pub position: u64,
    /// The ticket, once `TicketCreated` is folded in.
    pub ticket: Option<Ticket>,
    /// The last commands that appended to this stream, oldest first, so a
    /// retried command is answered from the log even when a snapshot hides
    /// its events.
    pub recent_commands: VecDeque<AppliedCommand>,
    /// A reader stream's last read position per ticket (empty elsewhere).
    pub read_up_to: BTreeMap<TicketId, u64>,
}

/// Most commands remembered per stream for answering retries.
pub const RECENT_COMMANDS_MAX: usize = 64;

/// Where one command's events landed in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedCommand {
    /// The command (idempotency key).
    pub command_id: Uuid,
    /// Stream version of its last event.
    pub version: u64,
    /// Global position of its first event.
    pub first_position: u64,
    /// Global position of its last event.
    pub position: u64,
}

/// A created ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// Its id (= its stream id).
    pub id: TicketId,
    /// Tenant-wide number.
    pub number: u64,
    /// Short summary.
    pub title: String,
    /// Full text.
    pub description: String,
    /// Urgency.
    pub priority: Priority,
    /// Kind of work.
    pub kind: TicketKind,
    /// Who reported it.
    pub reporter: UserId,
    /// Where.
    pub location: Option<Location>,
    /// Labels.
    pub tags: Vec<String>,
    /// Device concerned.
    pub device: Option<String>,
    /// Workflow status.
    pub status: TicketStatus,
    /// Current assignee.
    pub assignee: Option<UserId>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed (read receipts excluded).
    pub updated_at: DateTime<Utc>,
    /// When it was last resolved (cleared on reopen).
    pub resolved_at: Option<DateTime<Utc>>,
    /// Comments posted.
    pub comments: u64,
    /// Every dispatch, in request order.
    pub dispatches: Vec<Dispatch>,
    /// Last read position per user, from receipts of older logs, which
    /// were kept in the ticket's stream (`ReadReceiptRecorded`).
    pub reads: BTreeMap<UserId, u64>,
}

/// One dispatch of a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispatch {
    /// Its id.
    pub id: DispatchId,
    /// The technician, if one was chosen.
    pub technician: Option<UserId>,
    /// How the technician was chosen.
    pub choice: DispatchChoice,
    /// Lifecycle phase.
    pub phase: DispatchPhase,
    /// Distance at request time.
    pub distance_km: Option<f64>,
    /// ETA at request time.
    pub eta_minutes: Option<f64>,
    /// Search radius of the request; a re-dispatch after a decline keeps it.
    pub radius_km: f64,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// Last position reported with a progress step.
    pub last_location: Option<GeoPoint>,
    /// Why it was declined.
    pub decline_reason: Option<String>,
}

impl TicketState {
    /// Where the events of `command_id` landed, if it is a recent command.
    pub fn applied(&self, command_id: Uuid) -> Option<AppliedCommand> {
        self.recent_commands
            .iter()
            .rev()
            .find(|c| c.command_id == command_id)
            .copied()
    }

    /// The dispatch with id `id`, if the ticket has one.
    pub fn dispatch(&self, id: DispatchId) -> Option<&Dispatch> {
        self.ticket.as_ref()?.dispatches.iter().find(|d| d.id == id)
    }
}

impl Ticket {
    /// The dispatch still in progress, if any.
    pub fn active_dispatch(&self) -> Option<&Dispatch> {
        self.dispatches.iter().find(|d| d.phase.is_active())
    }

    /// Technicians who declined this ticket (never chosen again for it).
    pub fn declined_by(&self) -> Vec<UserId> {
        self.dispatches
            .iter()
            .filter(|d| d.phase == DispatchPhase::Declined)
            .filter_map(|d| d.technician)
            .collect()
    }

    fn dispatch_mut(&mut self, id: DispatchId) -> Option<&mut Dispatch> {
        self.dispatches.iter_mut().find(|d| d.id == id)
    }
}

/// The state after `event` (pure). Events of other stream kinds only feed
/// the audience, so a non-ticket stream never looks like a ticket.
pub fn evolve(mut state: TicketState, event: &RecordedEvent) -> TicketState {
    state.audience.apply(event);
    state.version = event.stream_version;
    state.position = event.position;
    match state.recent_commands.back_mut() {
        Some(last) if last.command_id == event.command_id => {
            last.version = event.stream_version;
            last.position = event.position;
        }
        _ => {
            if state.recent_commands.len() >= RECENT_COMMANDS_MAX {
                state.recent_commands.pop_front();
            }
            state.recent_commands.push_back(AppliedCommand {
                command_id: event.command_id,
                version: event.stream_version,
                first_position: event.position,
                position: event.position,
            });
        }
    }
    let at = event.recorded_at;
    if let EventPayload::TicketCreated {
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
    {
        if state.ticket.is_none() {
            state.ticket = Some(Ticket {
                id: event.stream_id,
                number: *number,
                title: title.clone(),
                description: description.clone(),
                priority: *priority,
                kind: *kind,
                reporter: *reporter,
                location: location.clone(),
                tags: tags.clone(),
                device: device.clone(),
                status: TicketStatus::Open,
                assignee: None,
                created_at: at,
                updated_at: at,
                resolved_at: None,
                comments: 0,
                dispatches: Vec::new(),
                reads: BTreeMap::new(),
            });
        }
        return state;
    }
    if let EventPayload::ConversationRead {
        ticket, position, ..
    } = &event.payload
    {
        let read = state.read_up_to.entry(*ticket).or_insert(0);
        *read = (*read).max(*position);
        return state;
    }
    let Some(ticket) = state.ticket.as_mut() else {
        return state;
    };
    if !matches!(event.payload, EventPayload::ReadReceiptRecorded { .. }) {
        ticket.updated_at = at;
    }
    match &event.payload {
        EventPayload::TicketEdited { .. } => event_store::EditableFields {
            title: &mut ticket.title,
            description: &mut ticket.description,
            priority: &mut ticket.priority,
            tags: &mut ticket.tags,
        }
        .apply(&event.payload),
        EventPayload::TicketAssigned { assignee, .. } => ticket.assignee = Some(*assignee),
        EventPayload::TicketStatusChanged { to, .. } => {
            ticket.status = *to;
            match to {
                TicketStatus::Resolved => ticket.resolved_at = Some(at),
                TicketStatus::Open => ticket.resolved_at = None,
                _ => {}
            }
        }
        EventPayload::CommentPosted { .. } => ticket.comments += 1,
        EventPayload::DispatchRequested {
            dispatch_id,
            technician,
            choice,
            distance_km,
            eta_minutes,
            radius_km,
            ..
        } => ticket.dispatches.push(Dispatch {
            id: *dispatch_id,
            technician: *technician,
            choice: *choice,
            phase: if technician.is_some() {
                DispatchPhase::Requested
            } else {
                DispatchPhase::Unassigned
            },
            distance_km: *distance_km,
            eta_minutes: *eta_minutes,
            radius_km: *radius_km,
            requested_at: at,
            last_location: None,
            decline_reason: None,
        }),
        EventPayload::DispatchAccepted { dispatch_id, .. } => {
            if let Some(d) = ticket.dispatch_mut(*dispatch_id) {
                d.phase = DispatchPhase::Accepted;
            }
        }
        EventPayload::DispatchDeclined {
            dispatch_id,
            reason,
            ..
        } => {
            if let Some(d) = ticket.dispatch_mut(*dispatch_id) {
                d.phase = DispatchPhase::Declined;
                d.decline_reason = reason.clone();
            }
        }
        EventPayload::DispatchProgressed {
            dispatch_id,
            stage,
            location,
        } => {
            if let Some(d) = ticket.dispatch_mut(*dispatch_id) {
                d.phase = *stage;
                if location.is_some() {
                    d.last_location = *location;
                }
            }
        }
        EventPayload::DispatchCompleted {
            dispatch_id,
            location,
        } => {
            if let Some(d) = ticket.dispatch_mut(*dispatch_id) {
                d.phase = DispatchPhase::Completed;
                if location.is_some() {
                    d.last_location = *location;
                }
            }
        }
        EventPayload::ReadReceiptRecorded { user, position } => {
            let read = ticket.reads.entry(*user).or_insert(0);
            *read = (*read).max(*position);
        }
        EventPayload::TicketCreated { .. }
        | EventPayload::TechnicianLocationReported { .. }
        | EventPayload::TicketNumberAllocated { .. }
        | EventPayload::ConversationRead { .. }
        | EventPayload::UserCreated { .. }
        | EventPayload::UserRoleChanged { .. }
        | EventPayload::UserPasswordChanged { .. }
        | EventPayload::UserTokensRevoked { .. } => {}
    }
    state
}

impl snapshots::Aggregate for TicketState {
    const NAME: &'static str = "ticket";
    /// 2: dispatches keep their search radius. 3: `DispatchPhase` moved to
    /// the event schema with `EnRoute` and `OnSite` first. 4: reader
    /// streams' `read_up_to`.
    const SNAPSHOT_VERSION: u16 = 4;

    fn evolve(self, event: &RecordedEvent) -> Self {
        evolve(self, event)
    }
}
