//! Re-making every dispatch choice from the log alone: the fleet and the
//! ticket as they stood just before each `DispatchRequested`, through the
//! same pure choice. A choice that replays differently means the log does
//! not explain it (it never should: see the service's fleet lock).

use std::collections::HashMap;

use event_store::{
    DispatchCandidate, DispatchChoice, DispatchId, EventPayload, RecordedEvent, StreamKind,
    TicketId, UserId,
};

use super::fleet::FleetView;
use crate::domain::proximity::choose_technician_excluding;
use crate::domain::{evolve, TicketState};

/// One automatic choice as recorded and as re-made from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayedChoice {
    /// The dispatch.
    pub dispatch_id: DispatchId,
    /// Its ticket.
    pub ticket_id: TicketId,
    /// Recorded technician, how, and candidates.
    pub recorded: (Option<UserId>, DispatchChoice, Vec<DispatchCandidate>),
    /// The same, re-made from the log before the event.
    pub replayed: (Option<UserId>, DispatchChoice, Vec<DispatchCandidate>),
}

impl ReplayedChoice {
    /// Whether the replay made the recorded choice, for the same reasons.
    pub fn agrees(&self) -> bool {
        self.recorded == self.replayed
    }
}

/// Every automatic (not named by a dispatcher) choice in `events` (the
/// log from position 1, in order), re-made on the state before it.
pub fn replay_dispatch_choices(events: &[RecordedEvent]) -> Vec<ReplayedChoice> {
    let mut fleet = FleetView::new();
    let mut tickets: HashMap<TicketId, TicketState> = HashMap::new();
    let mut out = Vec::new();
    for e in events {
        if let EventPayload::DispatchRequested {
            dispatch_id,
            technician,
            choice,
            radius_km,
            candidates,
            ..
        } = &e.payload
        {
            let ticket = tickets.get(&e.stream_id).and_then(|s| s.ticket.as_ref());
            if let (Some(ticket), false) = (ticket, *choice == DispatchChoice::Explicit) {
                // Speed only scales the ETA, which is not compared.
                let again = choose_technician_excluding(
                    ticket.location.as_ref(),
                    &fleet.technicians(&e.tenant),
                    &ticket.declined_by(),
                    *radius_km,
                    1.0,
                );
                out.push(ReplayedChoice {
                    dispatch_id: *dispatch_id,
                    ticket_id: e.stream_id,
                    recorded: (*technician, *choice, candidates.clone()),
                    replayed: (again.technician, again.choice, again.candidates),
                });
            }
        }
        fleet.apply(e);
        if e.payload.stream_kind() == StreamKind::Ticket {
            let state = tickets.remove(&e.stream_id).unwrap_or_default();
            tickets.insert(e.stream_id, evolve(state, e));
        }
    }
    out
}
