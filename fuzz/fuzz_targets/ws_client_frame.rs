//! WebSocket client frames of `/ws`: the text of a data frame, parsed as the
//! session parses it (`serde_json::from_str::<ClientFrame>`), the room name
//! (`RoomId::parse`), the error frame echoing the room back, and read
//! receipts: checked against a ticket (`read::check`) and decided as the
//! command they become on a reader's stream (`Action::RecordRead`).
//!
//! Invariants: no panic, no hang; room names round-trip
//! (`parse(room.to_string()) == room`); error frames stay valid JSON that
//! carries the client's room name unchanged; a read receipt is accepted or
//! refused with a typed 4xx error.
#![no_main]

use command_api::domain::{self, Action, Command, RecordRead};
use command_api::http::ApiError;
use libfuzzer_sys::fuzz_target;
use live_feed::frames::{self, ClientFrame, ErrorCode};
use live_feed::limits::CLIENT_FRAME_BYTES_MAX;
use live_feed::RoomId;
use ticketlog_fuzz::world;

fuzz_target!(|data: &[u8]| {
    // The socket layer hands the session only UTF-8 text within the limit.
    if data.len() > CLIENT_FRAME_BYTES_MAX {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(frame) = serde_json::from_str::<ClientFrame>(text) else {
        return;
    };
    let room = match &frame {
        ClientFrame::Subscribe { room, .. }
        | ClientFrame::Unsubscribe { room }
        | ClientFrame::Typing { room, .. }
        | ClientFrame::Read { room, .. } => room.as_str(),
        ClientFrame::Ping => return,
    };
    let error = frames::error(ErrorCode::BadRequest, Some(room), "unknown room name");
    let echoed: serde_json::Value = serde_json::from_str(&error).expect("error frames are JSON");
    assert_eq!(echoed["room"].as_str(), Some(room));
    let Some(parsed) = RoomId::parse(room) else {
        return;
    };
    assert_eq!(RoomId::parse(&parsed.to_string()), Some(parsed));
    if let (ClientFrame::Read { position, .. }, RoomId::Ticket(ticket)) = (&frame, parsed) {
        read_receipt(ticket, *position, data.len());
    }
});

fn read_receipt(ticket: uuid::Uuid, position: u64, salt: usize) {
    let w = world::cached();
    let state = &w.states[salt % w.states.len()];
    let principal = &w.principals[(salt / w.states.len()) % w.principals.len()];
    let command = Command {
        principal: principal.clone(),
        at: ticketlog_fuzz::at(600),
        action: Action::RecordRead(RecordRead {
            ticket_id: ticket,
            position,
        }),
    };
    match domain::decide(state, &command, &world::context()) {
        Ok(events) => {
            let _ = world::fold(state.clone(), principal, events);
        }
        Err(e) => assert_client_error(e),
    }
    // Without the event at the position (beyond the log), always refused.
    let Action::RecordRead(c) = &command.action else {
        return;
    };
    match domain::decide::read::check(state, None, 0, principal, c) {
        Ok(v) => panic!("a receipt of no event was accepted: {v:?}"),
        Err(e) => assert_client_error(e),
    }
}

fn assert_client_error(e: domain::DomainError) {
    let status = ApiError::from(e.clone()).status.as_u16();
    assert!((400..500).contains(&status), "{e:?}");
}
