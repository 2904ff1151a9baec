//! Room names: `ticket:<id>`, `user:<id>` and `tickets`.

use std::fmt;

use event_store::schema::{TicketId, UserId};
use uuid::Uuid;

/// A room a connection can join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoomId {
    /// Every event of one ticket the principal may see.
    Ticket(TicketId),
    /// One user's own notifications (assignments, dispatch requests).
    User(UserId),
    /// Changes of the ticket list the principal may see.
    Tickets,
}

impl RoomId {
    /// Parses a room name from a client frame; `None` for anything else.
    pub fn parse(s: &str) -> Option<RoomId> {
        if s == "tickets" {
            return Some(RoomId::Tickets);
        }
        let (prefix, id) = s.split_once(':')?;
        let id = Uuid::parse_str(id).ok()?;
        match prefix {
            "ticket" => Some(RoomId::Ticket(id)),
            "user" => Some(RoomId::User(id)),
            _ => None,
        }
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomId::Ticket(id) => write!(f, "ticket:{id}"),
            RoomId::User(id) => write!(f, "user:{id}"),
            RoomId::Tickets => f.write_str("tickets"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        let id = Uuid::now_v7();
        for room in [RoomId::Ticket(id), RoomId::User(id), RoomId::Tickets] {
            assert_eq!(RoomId::parse(&room.to_string()), Some(room));
        }
    }

    #[test]
    fn rejects_unknown_names() {
        for s in [
            "",
            "ticket",
            "ticket:",
            "ticket:42",
            "team:0190c2b8-0000-7000-8000-000000000000",
            "Tickets",
        ] {
            assert_eq!(RoomId::parse(s), None, "{s}");
        }
    }
}
