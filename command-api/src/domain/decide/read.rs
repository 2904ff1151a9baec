//! Read receipts.

use event_store::{EventPayload, Principal};

use super::DomainError;
use crate::domain::command::RecordRead;
use crate::domain::state::Ticket;

/// `ReadReceiptRecorded` when the position moves the reader forward; a
/// stale or repeated receipt changes nothing. Anyone who sees the ticket may
/// record one.
pub(super) fn record(
    ticket: &Ticket,
    last_position: u64,
    principal: &Principal,
    c: &RecordRead,
) -> Result<Vec<EventPayload>, DomainError> {
    if c.position == 0 {
        return Err(DomainError::invalid("position", "must be at least 1"));
    }
    if c.position > last_position {
        return Err(DomainError::invalid(
            "position",
            "beyond the ticket's last event",
        ));
    }
    if ticket
        .reads
        .get(&principal.user_id)
        .is_some_and(|read| *read >= c.position)
    {
        return Ok(Vec::new());
    }
    Ok(vec![EventPayload::ReadReceiptRecorded {
        user: principal.user_id,
        position: c.position,
    }])
}
