//! Which rooms an event belongs to, besides its ticket's own room. Who may
//! see it is decided elsewhere, by `event_store::access::can_see` alone.

use event_store::schema::{EventPayload, UserId};

/// Whether the event changes what the ticket list shows (the `tickets` room).
pub fn is_list_change(payload: &EventPayload) -> bool {
    !matches!(payload, EventPayload::ReadReceiptRecorded { .. })
}

/// The user whose own notification room (`user:<id>`) the event is for.
pub fn notified_user(payload: &EventPayload) -> Option<UserId> {
    match payload {
        EventPayload::TicketAssigned { assignee, .. } => Some(*assignee),
        EventPayload::DispatchRequested {
            technician: Some(t),
            ..
        } => Some(*t),
        _ => None,
    }
}
