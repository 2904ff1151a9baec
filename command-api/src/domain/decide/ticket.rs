//! Creating, editing, assigning and moving tickets.

use event_store::{EventPayload, Permission, Principal, TicketStatus};

use super::{require, DomainError};
use crate::domain::command::{AssignTicket, ChangeStatus, Context, CreateTicket, EditTicket};
use crate::domain::limits::{DESCRIPTION_BYTES_MAX, NOTE_CHARS_MAX, SHORT_TEXT_CHARS_MAX};
use crate::domain::staffing::{can_be_assignee, NOT_AN_ASSIGNEE};
use crate::domain::state::{Ticket, TicketState};
use crate::domain::validate::{self, Lines};

/// `TicketCreated` with the allocated `number`, reported by the principal.
/// The stream must be new.
pub(super) fn create(
    state: &TicketState,
    principal: &Principal,
    c: &CreateTicket,
    number: u64,
) -> Result<Vec<EventPayload>, DomainError> {
    let (title, tags) = check_create(state, principal, c)?;
    Ok(vec![EventPayload::TicketCreated {
        number,
        title,
        description: c.description.clone(),
        priority: c.priority,
        kind: c.kind,
        reporter: principal.user_id,
        location: c.location.clone(),
        tags,
        device: c.device.clone(),
    }])
}

/// Every check of a create; the normalized title and tags.
pub(super) fn check_create(
    state: &TicketState,
    principal: &Principal,
    c: &CreateTicket,
) -> Result<(String, Vec<String>), DomainError> {
    if state.version > 0 {
        return Err(DomainError::conflict(
            "a ticket with this id already exists",
        ));
    }
    require(principal, Permission::TicketsCreate)?;
    let title = validate::title("title", &c.title)?;
    validate::bytes_at_most("description", &c.description, DESCRIPTION_BYTES_MAX)?;
    validate::text("description", &c.description, Lines::Multi)?;
    if let Some(loc) = &c.location {
        validate::location(loc)?;
    }
    let tags = validate::tags(&c.tags)?;
    validate::chars_at_most("device", c.device.as_deref(), SHORT_TEXT_CHARS_MAX)?;
    validate::text_opt("device", c.device.as_deref(), Lines::Single)?;
    Ok((title, tags))
}

/// `TicketEdited` with only the fields that actually change.
pub(super) fn edit(
    ticket: &Ticket,
    principal: &Principal,
    c: &EditTicket,
) -> Result<Vec<EventPayload>, DomainError> {
    require(principal, Permission::TicketsManage)?;
    if c.title.is_none() && c.description.is_none() && c.priority.is_none() && c.tags.is_none() {
        return Err(DomainError::invalid(
            "body",
            "give at least one of title, description, priority, tags",
        ));
    }
    let title = c
        .title
        .as_deref()
        .map(|t| validate::title("title", t))
        .transpose()?;
    if let Some(d) = &c.description {
        validate::bytes_at_most("description", d, DESCRIPTION_BYTES_MAX)?;
        validate::text("description", d, Lines::Multi)?;
    }
    let tags = c.tags.as_deref().map(validate::tags).transpose()?;
    let title = title.filter(|t| *t != ticket.title);
    let description = c.description.clone().filter(|d| *d != ticket.description);
    let priority = c.priority.filter(|p| *p != ticket.priority);
    let tags = tags.filter(|t| *t != ticket.tags);
    if title.is_none() && description.is_none() && priority.is_none() && tags.is_none() {
        return Ok(Vec::new());
    }
    Ok(vec![EventPayload::TicketEdited {
        title,
        description,
        priority,
        tags,
    }])
}

/// `TicketAssigned`, plus `open → assigned` when the ticket is open.
/// The assignee must be a member of the tenant who can own tickets.
pub(super) fn assign(
    ticket: &Ticket,
    principal: &Principal,
    c: &AssignTicket,
    context: &Context,
) -> Result<Vec<EventPayload>, DomainError> {
    require(principal, Permission::TicketsManage)?;
    let role = context.members.get(&c.assignee_id).copied();
    if !role.is_some_and(can_be_assignee) {
        return Err(DomainError::invalid("assignee_id", NOT_AN_ASSIGNEE));
    }
    let mut events = Vec::new();
    if ticket.assignee != Some(c.assignee_id) {
        events.push(EventPayload::TicketAssigned {
            assignee: c.assignee_id,
            previous: ticket.assignee,
        });
    }
    // Owning an open ticket is what "assigned" means in the workflow; a
    // resolved or closed ticket keeps its status (reassigning its owner).
    if ticket.status == TicketStatus::Open {
        events.push(EventPayload::TicketStatusChanged {
            from: TicketStatus::Open,
            to: TicketStatus::Assigned,
            note: None,
        });
    }
    Ok(events)
}

/// `TicketStatusChanged` along the contract's workflow; anything else is 409.
pub(super) fn change_status(
    ticket: &Ticket,
    principal: &Principal,
    c: &ChangeStatus,
) -> Result<Vec<EventPayload>, DomainError> {
    require(principal, Permission::TicketsManage)?;
    validate::chars_at_most("note", c.note.as_deref(), NOTE_CHARS_MAX)?;
    validate::text_opt("note", c.note.as_deref(), Lines::Single)?;
    if !ticket.status.can_become(c.status) {
        return Err(DomainError::InvalidTransition {
            from: ticket.status.as_str().into(),
            to: c.status.as_str().into(),
        });
    }
    Ok(vec![EventPayload::TicketStatusChanged {
        from: ticket.status,
        to: c.status,
        note: c.note.clone(),
    }])
}
