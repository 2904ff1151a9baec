//! What executing a command did: where its stream stands, what it appended
//! and the ids of what it created, so no caller reads the log to find out.

use event_store::{DispatchId, EventPayload, StreamId, TicketId};
use uuid::Uuid;

/// The result of a command the service accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome {
    /// The stream the command was decided on.
    pub stream_id: StreamId,
    /// The stream's version after the command's events (its version now,
    /// when nothing was appended).
    pub version: u64,
    /// Global position of the command's first event (the stream's last
    /// event when nothing was appended).
    pub first_position: u64,
    /// Global position of the command's last event (the stream's last
    /// event when nothing was appended).
    pub position: u64,
    /// Whether events were appended, and when.
    pub appended: Appended,
    /// The ids of what the command created or acted on.
    pub created: Created,
}

/// Whether a command appended events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// This attempt appended `events` events.
    Now {
        /// How many.
        events: usize,
    },
    /// An earlier attempt with the same command id appended them; this
    /// retry appended nothing.
    Earlier,
    /// Nothing: the command changes nothing (e.g. assigning the assignee).
    Nothing,
}

/// A ticket a command created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedTicket {
    /// Its id (= its stream id).
    pub id: TicketId,
    /// Its tenant-wide number.
    pub number: u64,
}

/// The ids in a command's events (the first attempt's, on a retry).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Created {
    /// The ticket it created.
    pub ticket: Option<CreatedTicket>,
    /// The comment it posted.
    pub comment_id: Option<Uuid>,
    /// The dispatch it requested, answered, progressed or expired.
    pub dispatch_id: Option<DispatchId>,
}

impl Created {
    /// The ids named by `payloads`, a command's events on `stream`.
    pub fn of<'a>(stream: StreamId, payloads: impl IntoIterator<Item = &'a EventPayload>) -> Self {
        let mut created = Created::default();
        for payload in payloads {
            match payload {
                EventPayload::TicketCreated { number, .. } => {
                    created.ticket = Some(CreatedTicket {
                        id: stream,
                        number: *number,
                    });
                }
                EventPayload::CommentPosted { comment_id, .. } => {
                    created.comment_id = Some(*comment_id);
                }
                EventPayload::DispatchRequested { dispatch_id, .. }
                | EventPayload::DispatchAccepted { dispatch_id, .. }
                | EventPayload::DispatchDeclined { dispatch_id, .. }
                | EventPayload::DispatchProgressed { dispatch_id, .. }
                | EventPayload::DispatchCompleted { dispatch_id, .. } => {
                    created.dispatch_id.get_or_insert(*dispatch_id);
                }
                _ => {}
            }
        }
        created
    }
}
