//! Dispatching technicians and their answers and progress.
//!
//! The ticket's status follows the dispatch along the workflow's forward
//! path, one valid step per event: accepting moves it to `in_progress`
//! (via `assigned` when open), completing moves it to `resolved` unless it
//! is already resolved or closed.

use event_store::{DispatchPhase, EventPayload, Permission, Principal, TicketStatus};

use super::{require, DomainError};
use chrono::{DateTime, Utc};

use crate::domain::command::{
    AssignDispatch, Context, DispatchResponse, ExpireDispatch, ProgressDispatch, RespondDispatch,
};
use crate::domain::limits::{
    DISPATCH_RADIUS_KM_DEFAULT, DISPATCH_RADIUS_KM_MAX, DISPATCH_TIMEOUT_REASON, NOTE_CHARS_MAX,
};
use crate::domain::proximity::{choose_technician_excluding, explicit_choice};
use crate::domain::staffing::{can_be_dispatched, NOT_A_TECHNICIAN};
use crate::domain::state::{Dispatch, Ticket};
use crate::domain::validate;
use crate::domain::workflow::forward_steps;

/// `DispatchRequested` for the named technician (a technician of the
/// tenant), or the nearest available one (never one who declined this
/// ticket), or nobody (broadcast).
pub(super) fn assign(
    ticket: &Ticket,
    principal: &Principal,
    c: &AssignDispatch,
    context: &Context,
) -> Result<Vec<EventPayload>, DomainError> {
    require(principal, Permission::DispatchManage)?;
    let radius_km = c.radius_km.unwrap_or(DISPATCH_RADIUS_KM_DEFAULT);
    if !radius_km.is_finite() || radius_km <= 0.0 || radius_km > DISPATCH_RADIUS_KM_MAX {
        return Err(DomainError::invalid(
            "radius_km",
            format!("must be above 0 and at most {DISPATCH_RADIUS_KM_MAX}"),
        ));
    }
    if let Some(t) = c.technician_id {
        let role = context.members.get(&t).copied();
        if !role.is_some_and(can_be_dispatched) {
            return Err(DomainError::invalid("technician_id", NOT_A_TECHNICIAN));
        }
    }
    if matches!(ticket.status, TicketStatus::Resolved | TicketStatus::Closed) {
        return Err(DomainError::conflict(format!(
            "ticket is {}; reopen it before dispatching",
            ticket.status.as_str()
        )));
    }
    if let Some(active) = ticket.active_dispatch() {
        return Err(DomainError::conflict(format!(
            "dispatch {} is still {}",
            active.id,
            active.phase.as_str()
        )));
    }
    let location = ticket.location.as_ref();
    let chosen = match c.technician_id {
        Some(t) => explicit_choice(location, &context.fleet, t, context.speed_kmh),
        None => choose_technician_excluding(
            location,
            &context.fleet,
            &ticket.declined_by(),
            radius_km,
            context.speed_kmh,
        ),
    };
    Ok(vec![EventPayload::DispatchRequested {
        dispatch_id: c.dispatch_id,
        technician: chosen.technician,
        choice: chosen.choice,
        distance_km: chosen.distance_km,
        eta_minutes: chosen.eta_minutes,
        radius_km,
        candidates: chosen.candidates,
    }])
}

/// The dispatch `id` of this ticket, answerable only by its technician.
fn own_dispatch<'a>(
    ticket: &'a Ticket,
    principal: &Principal,
    id: event_store::DispatchId,
) -> Result<&'a Dispatch, DomainError> {
    let dispatch = ticket
        .dispatches
        .iter()
        .find(|d| d.id == id)
        .ok_or(DomainError::NotFound)?;
    require(principal, Permission::DispatchRespond)?;
    if dispatch.technician != Some(principal.user_id) {
        return Err(DomainError::forbidden(
            "this dispatch is another technician's",
        ));
    }
    Ok(dispatch)
}

/// `DispatchAccepted` (with the ticket moving to `in_progress`) or
/// `DispatchDeclined`; only a requested dispatch can be answered.
pub(super) fn respond(
    ticket: &Ticket,
    principal: &Principal,
    c: &RespondDispatch,
) -> Result<Vec<EventPayload>, DomainError> {
    let dispatch = own_dispatch(ticket, principal, c.dispatch_id)?;
    validate::chars_at_most("reason", c.reason.as_deref(), NOTE_CHARS_MAX)?;
    validate::text_opt("reason", c.reason.as_deref(), validate::Lines::Single)?;
    let to = match c.response {
        DispatchResponse::Accept => "accepted",
        DispatchResponse::Decline => "declined",
    };
    if dispatch.phase != DispatchPhase::Requested {
        return Err(DomainError::InvalidTransition {
            from: dispatch.phase.as_str().into(),
            to: to.into(),
        });
    }
    match c.response {
        DispatchResponse::Decline => Ok(vec![EventPayload::DispatchDeclined {
            dispatch_id: dispatch.id,
            technician: principal.user_id,
            reason: c.reason.clone(),
        }]),
        DispatchResponse::Accept => {
            // A ticket resolved or closed meanwhile must be reopened first.
            let steps = forward_steps(ticket.status, TicketStatus::InProgress, "dispatch accepted")
                .ok_or_else(|| DomainError::InvalidTransition {
                    from: ticket.status.as_str().into(),
                    to: TicketStatus::InProgress.as_str().into(),
                })?;
            let mut events = vec![EventPayload::DispatchAccepted {
                dispatch_id: dispatch.id,
                technician: principal.user_id,
            }];
            events.extend(steps);
            Ok(events)
        }
    }
}

/// `DispatchDeclined { reason: "timeout" }` for the technician of a request
/// unanswered since `timeout_secs` before `at`. A request answered meanwhile
/// changes nothing (the timer lost a race with the technician: not an
/// error); one not yet overdue is a conflict.
pub(super) fn expire(
    ticket: &Ticket,
    principal: &Principal,
    c: &ExpireDispatch,
    timeout_secs: u64,
    at: DateTime<Utc>,
) -> Result<Vec<EventPayload>, DomainError> {
    let dispatch = ticket
        .dispatches
        .iter()
        .find(|d| d.id == c.dispatch_id)
        .ok_or(DomainError::NotFound)?;
    require(principal, Permission::DispatchManage)?;
    let (DispatchPhase::Requested, Some(technician)) = (dispatch.phase, dispatch.technician) else {
        return Ok(Vec::new());
    };
    let due = i64::try_from(timeout_secs)
        .ok()
        .and_then(chrono::TimeDelta::try_seconds)
        .and_then(|timeout| dispatch.requested_at.checked_add_signed(timeout));
    if due.is_none_or(|due| at < due) {
        return Err(DomainError::conflict(format!(
            "dispatch {} is not overdue yet",
            dispatch.id
        )));
    }
    Ok(vec![EventPayload::DispatchDeclined {
        dispatch_id: dispatch.id,
        technician,
        reason: Some(DISPATCH_TIMEOUT_REASON.into()),
    }])
}

/// How far along a phase is, for "forward only" checks.
fn rank(phase: DispatchPhase) -> Option<u8> {
    match phase {
        DispatchPhase::Accepted => Some(1),
        DispatchPhase::EnRoute => Some(2),
        DispatchPhase::OnSite => Some(3),
        DispatchPhase::Completed => Some(4),
        DispatchPhase::Requested | DispatchPhase::Declined | DispatchPhase::Unassigned => None,
    }
}

/// `DispatchProgressed` or `DispatchCompleted` (with the ticket moving to
/// `resolved`). Stages only move forward, from an accepted dispatch; a
/// stage may be skipped (a technician already on site).
pub(super) fn progress(
    ticket: &Ticket,
    principal: &Principal,
    c: &ProgressDispatch,
) -> Result<Vec<EventPayload>, DomainError> {
    let dispatch = own_dispatch(ticket, principal, c.dispatch_id)?;
    if let Some(p) = c.location {
        validate::point("location.lat", p.lat, "location.lon", p.lon)?;
    }
    let reported = matches!(
        c.stage,
        DispatchPhase::EnRoute | DispatchPhase::OnSite | DispatchPhase::Completed
    );
    let forward = reported
        && matches!((rank(dispatch.phase), rank(c.stage)), (Some(from), Some(to)) if from < to && from < 4);
    if !forward {
        return Err(DomainError::InvalidTransition {
            from: dispatch.phase.as_str().into(),
            to: c.stage.as_str().into(),
        });
    }
    Ok(match c.stage {
        DispatchPhase::EnRoute | DispatchPhase::OnSite => vec![EventPayload::DispatchProgressed {
            dispatch_id: dispatch.id,
            stage: c.stage,
            location: c.location,
        }],
        // `Completed`, the only other phase a technician reports.
        _ => {
            let mut events = vec![EventPayload::DispatchCompleted {
                dispatch_id: dispatch.id,
                location: c.location,
            }];
            // Resolved or closed already (the agent decided): left alone.
            events.extend(
                forward_steps(ticket.status, TicketStatus::Resolved, "dispatch completed")
                    .unwrap_or_default(),
            );
            events
        }
    })
}
