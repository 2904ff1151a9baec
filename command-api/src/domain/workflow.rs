//! Walking the ticket workflow forward when a dispatch moves the ticket.

use event_store::{EventPayload, TicketStatus};

/// The workflow's forward path (closing and reopening are not on it).
const FORWARD: [TicketStatus; 4] = [
    TicketStatus::Open,
    TicketStatus::Assigned,
    TicketStatus::InProgress,
    TicketStatus::Resolved,
];

/// The status changes that take a ticket from `from` forward to `to`, one
/// valid workflow step per event (so every `TicketStatusChanged` in the log
/// is a transition the contract allows). Empty when already there; `None`
/// when `to` is not ahead of `from` on the forward path.
pub fn forward_steps(
    from: TicketStatus,
    to: TicketStatus,
    note: &str,
) -> Option<Vec<EventPayload>> {
    let start = FORWARD.iter().position(|s| *s == from)?;
    let end = FORWARD.iter().position(|s| *s == to)?;
    if start > end {
        return None;
    }
    Some(
        FORWARD[start..=end]
            .windows(2)
            .map(|pair| EventPayload::TicketStatusChanged {
                from: pair[0],
                to: pair[1],
                note: Some(note.to_string()),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use TicketStatus::*;

    #[test]
    fn every_step_is_a_valid_transition() {
        for from in [Open, Assigned, InProgress, Resolved, Closed] {
            for to in [Open, Assigned, InProgress, Resolved, Closed] {
                if let Some(steps) = forward_steps(from, to, "n") {
                    let mut at = from;
                    for step in steps {
                        let EventPayload::TicketStatusChanged { from: f, to: t, .. } = step else {
                            panic!("not a status change");
                        };
                        assert_eq!(f, at);
                        assert!(f.can_become(t), "{f:?} -> {t:?}");
                        at = t;
                    }
                    assert_eq!(at, to);
                }
            }
        }
        assert_eq!(
            forward_steps(Open, InProgress, "n").map(|s| s.len()),
            Some(2)
        );
        assert_eq!(forward_steps(Resolved, InProgress, "n"), None);
        assert_eq!(forward_steps(Closed, Resolved, "n"), None);
    }
}
