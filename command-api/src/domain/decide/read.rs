//! Read receipts: checked against the ticket, stored in the reader's own
//! stream, so reading never changes a ticket's version.

use event_store::{can_see, EventPayload, Principal, RecordedEvent, StreamKind, Visibility};

use super::{own_stream, visible, DomainError};
use crate::domain::command::RecordRead;
use crate::domain::state::TicketState;

/// The one answer for every position a receipt may not name: an event of
/// another ticket, one the reader may not see, one beyond the log, or one
/// not after the reader's last receipt. Telling them apart would say what
/// lies at a position the reader may not see.
pub const NOT_READABLE: &str = "not a position of this room after your last read";

/// Whether `principal` may say it read `ticket`'s room up to `c.position`
/// (pure). `named` is the log's event at that position (`None` beyond the
/// log); `last` the reader's last receipt for the ticket (its reader
/// stream's, or one accepted and not yet stored); receipts of older logs
/// in the ticket's own stream count too. Answers the visibility of the
/// event named: who may hear of the receipt.
pub fn check(
    ticket: &TicketState,
    named: Option<&RecordedEvent>,
    last: u64,
    principal: &Principal,
    c: &RecordRead,
) -> Result<Visibility, DomainError> {
    let t = visible(ticket, principal, Some(c.ticket_id))?;
    let legacy = t.reads.get(&principal.user_id).copied().unwrap_or(0);
    match named {
        Some(e)
            if e.position == c.position
                && e.stream_id == t.id
                && can_see(principal, e, &ticket.audience)
                && c.position > last.max(legacy) =>
        {
            Ok(e.visibility)
        }
        _ => Err(DomainError::invalid("position", NOT_READABLE)),
    }
}

/// `ConversationRead` on the reader's own stream (`state` is that
/// stream's) when the position moves the reader forward; a stale or
/// repeated receipt changes nothing. The service checks the receipt
/// against the ticket first ([`check`]).
pub(super) fn record(
    state: &TicketState,
    principal: &Principal,
    c: &RecordRead,
) -> Result<Vec<EventPayload>, DomainError> {
    own_stream(state, principal, StreamKind::Reader)?;
    if c.position == 0 {
        return Err(DomainError::invalid("position", NOT_READABLE));
    }
    if state
        .read_up_to
        .get(&c.ticket_id)
        .is_some_and(|read| *read >= c.position)
    {
        return Ok(Vec::new());
    }
    Ok(vec![EventPayload::ConversationRead {
        reader: principal.user_id,
        ticket: c.ticket_id,
        position: c.position,
    }])
}
