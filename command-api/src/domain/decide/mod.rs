//! `decide`: which events a command produces, or why it is refused.
//!
//! Every command on an existing ticket checks, in this order: the ticket
//! exists and the principal may see it (else `NotFound`, never `Forbidden`,
//! so existence does not leak); the permission (`Forbidden`); the input
//! (`Invalid`); the state (`InvalidTransition` / `Conflict`). An empty list
//! means the command changes nothing (e.g. assigning the current assignee)
//! and succeeds without appending.

mod comment;
mod dispatch;
pub mod read;
mod technician;
mod ticket;

use event_store::{can_see_stream, EventPayload, Permission, Principal, StreamKind};

use super::command::{Action, Command, Context, CreateTicket};
use super::error::DomainError;
use super::state::{Ticket, TicketState};

/// The events `command` produces on `state` given what the service
/// supplies in `context` (pure).
pub fn decide(
    state: &TicketState,
    command: &Command,
    context: &Context,
) -> Result<Vec<EventPayload>, DomainError> {
    let p = &command.principal;
    match &command.action {
        Action::CreateTicket(c) => {
            // The service allocates the number before deciding; a create
            // decided without one is refused rather than numbered 0.
            let number = context
                .ticket_number
                .ok_or_else(|| DomainError::invalid("number", "no ticket number was allocated"))?;
            ticket::create(state, p, c, number)
        }
        Action::EditTicket(c) => ticket::edit(visible(state, p, Some(c.ticket_id))?, p, c),
        Action::AssignTicket(c) => {
            ticket::assign(visible(state, p, Some(c.ticket_id))?, p, c, context)
        }
        Action::ChangeStatus(c) => {
            ticket::change_status(visible(state, p, Some(c.ticket_id))?, p, c)
        }
        Action::PostComment(c) => comment::post(visible(state, p, Some(c.ticket_id))?, p, c),
        Action::AssignDispatch(c) => {
            dispatch::assign(visible(state, p, Some(c.ticket_id))?, p, c, context)
        }
        Action::RespondDispatch(c) => dispatch::respond(visible(state, p, None)?, p, c),
        Action::ProgressDispatch(c) => dispatch::progress(visible(state, p, None)?, p, c),
        Action::ReportLocation(c) => technician::report_location(state, p, c),
        Action::ExpireDispatch(c) => dispatch::expire(
            visible(state, p, None)?,
            p,
            c,
            context.dispatch_timeout_secs,
            command.at,
        ),
        Action::RecordRead(c) => read::record(state, p, c),
    }
}

/// Whether `principal` may create ticket `c` on `state`: every check of
/// [`decide`], before the service allocates the ticket's number (so a
/// refused create takes none).
pub fn check_create(
    state: &TicketState,
    principal: &Principal,
    c: &CreateTicket,
) -> Result<(), DomainError> {
    ticket::check_create(state, principal, c).map(|_| ())
}

/// The ticket, if it exists, is the one asked for, and `principal` may see it.
fn visible<'a>(
    state: &'a TicketState,
    principal: &Principal,
    id: Option<event_store::TicketId>,
) -> Result<&'a Ticket, DomainError> {
    let ticket = state.ticket.as_ref().ok_or(DomainError::NotFound)?;
    if id.is_some_and(|id| id != ticket.id) || !can_see_stream(principal, &state.audience) {
        return Err(DomainError::NotFound);
    }
    Ok(ticket)
}

/// `Conflict` unless `state` is a new stream or one of `kind` that
/// `principal` owns: streams named after a user (a technician's, a
/// reader's) must not be written into by anyone else, nor be a ticket.
fn own_stream(
    state: &TicketState,
    principal: &Principal,
    kind: StreamKind,
) -> Result<(), DomainError> {
    let a = &state.audience;
    let own =
        a.kind == Some(kind) && a.tenant == principal.tenant && a.owner == Some(principal.user_id);
    if a.kind.is_some() && !own {
        return Err(DomainError::conflict("the stream belongs to someone else"));
    }
    Ok(())
}

/// `Forbidden` unless `principal` has `permission`.
fn require(principal: &Principal, permission: Permission) -> Result<(), DomainError> {
    if principal.has(permission) {
        Ok(())
    } else {
        Err(DomainError::forbidden(format!(
            "requires {}",
            permission.as_str()
        )))
    }
}
