//! Applying the one visibility rule to items the read model keeps without
//! their full records (chat lines, counts).
//!
//! `event_store::access::can_see` decides on an event's tenant, its
//! visibility and its stream's audience. Evaluating it on one probe record
//! per visibility class of a stream therefore IS the rule for every event
//! of that class: nothing is re-implemented here.

use event_store::{
    can_see, can_see_stream, Actor, EventPayload, Principal, RecordedEvent, Role, StreamAudience,
    Visibility,
};
use uuid::Uuid;

/// What one principal may see of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// The stream itself (for a ticket: may open it).
    pub stream: bool,
    /// Its public events.
    pub public: bool,
    /// Its internal events.
    pub internal: bool,
}

impl Gate {
    /// Asks the rule about `audience`'s stream for `principal`.
    pub fn of(principal: &Principal, audience: &StreamAudience) -> Gate {
        Gate {
            stream: can_see_stream(principal, audience),
            public: can_see(principal, &probe(audience, Visibility::Public), audience),
            internal: can_see(principal, &probe(audience, Visibility::Internal), audience),
        }
    }

    /// Whether an item of the given internal flag may be shown.
    pub fn admits(&self, internal: bool) -> bool {
        if internal {
            self.internal
        } else {
            self.public
        }
    }
}

fn probe(audience: &StreamAudience, visibility: Visibility) -> RecordedEvent {
    RecordedEvent {
        position: 0,
        stream_id: Uuid::nil(),
        stream_version: 0,
        event_id: Uuid::nil(),
        command_id: Uuid::nil(),
        correlation_id: Uuid::nil(),
        tenant: audience.tenant.clone(),
        actor: Actor {
            user_id: Uuid::nil(),
            role: Role::Customer,
        },
        recorded_at: Default::default(),
        schema_version: 0,
        visibility,
        payload: EventPayload::ReadReceiptRecorded {
            user: Uuid::nil(),
            position: 0,
        },
        prev_hash: [0; 32],
        hash: [0; 32],
    }
}
