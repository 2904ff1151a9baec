//! HTTP command bodies: the JSON of every command route, parsed as the API
//! parses it (`http::extract::parse_body` into the route's body type from
//! `command_api::request`), mapped to its command by the API's one mapping
//! (`Request::into_action`) and decided (`domain::decide`) against several
//! ticket states by every kind of principal.
//!
//! Invariants: no panic, no hang; a refused body is a 400 naming a field
//! (`malformed_json` or `invalid_input`); a refused command is a typed
//! `DomainError` answered with a 4xx status; the events of an accepted
//! command fold into the state and, when they fit a record, encode and
//! decode unchanged.
#![no_main]

use command_api::domain::{self, Action, Command, DomainError, TicketState};
use command_api::http::extract::parse_body;
use command_api::http::ApiError;
use command_api::request::{Request, RequestBody};
use event_store::limits::RECORD_BYTES_MAX;
use event_store::Principal;
use libfuzzer_sys::fuzz_target;
use ticketlog_fuzz::world::{self, DISPATCH, TICKET};
use uuid::Uuid;

/// The command routes. Input: `who` (route and principal), `what`
/// (state and target), then the body.
const ROUTES: usize = 10;

/// The id of what a fuzzed command creates (ticket, comment, dispatch).
const NEW_ID: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0e00);

fuzz_target!(|data: &[u8]| {
    let Some(([who, what], body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let w = world::cached();
    let route = usize::from(*who) % ROUTES;
    let principal = &w.principals[(usize::from(*who) / ROUTES) % w.principals.len()];
    let state = &w.states[usize::from(*what) % w.states.len()];
    // Paths name the ticket or dispatch of the state, or (rarely) another.
    let (ticket, dispatch) = if what & 0xf0 == 0xf0 {
        (Uuid::from_u128(u128::from(*what)), Uuid::nil())
    } else {
        (TICKET, DISPATCH)
    };
    let request = match route {
        0 => parsed(body, Request::CreateTicket).map(|r| (r, None)),
        1 => parsed(body, Request::EditTicket).map(|r| (r, Some(ticket))),
        2 => parsed(body, Request::AssignTicket).map(|r| (r, Some(ticket))),
        3 => parsed(body, Request::ChangeStatus).map(|r| (r, Some(ticket))),
        4 => parsed(body, Request::PostComment).map(|r| (r, Some(ticket))),
        5 => parsed(body, Request::AssignDispatch).map(|r| (r, Some(ticket))),
        6 => parsed(body, Request::AcceptDispatch).map(|r| (r, Some(dispatch))),
        7 => parsed(body, Request::DeclineDispatch).map(|r| (r, Some(dispatch))),
        8 => parsed(body, Request::ProgressDispatch).map(|r| (r, Some(dispatch))),
        _ => parsed(body, Request::ReportLocation).map(|r| (r, None)),
    };
    if let Some((request, on)) = request {
        let action = request
            .into_action(on, NEW_ID)
            .expect("every route is given the id its path names");
        decided(state, principal, action);
    }
});

/// Parses `body` as the route does (a blank body is the default of an
/// optional one), checks a refusal is typed, and makes it the route's request.
fn parsed<B: RequestBody>(body: &[u8], route: fn(B) -> Request) -> Option<Request> {
    match parse_body(body, B::when_empty()) {
        Ok(b) => Some(route(b)),
        Err(e) => {
            typed_refusal(&e);
            None
        }
    }
}

fn typed_refusal(e: &ApiError) {
    assert_eq!(e.status.as_u16(), 400, "{e:?}");
    assert!(
        matches!(e.code, "malformed_json" | "invalid_input"),
        "{e:?}"
    );
    // Always names a field; it is empty only for an unknown key `""`.
    let field = e.details["field"].as_str().expect("details name the field");
    assert!(
        !field.is_empty() || e.message.contains("unknown field ``"),
        "{e:?}"
    );
}

fn decided(state: &TicketState, principal: &Principal, action: Action) {
    let command = Command {
        principal: principal.clone(),
        at: ticketlog_fuzz::at(500),
        action,
    };
    match domain::decide(state, &command, &world::context()) {
        Ok(events) => {
            let folded = world::fold(state.clone(), principal, events.clone());
            assert!(folded.version >= state.version);
            for (i, payload) in events.into_iter().enumerate() {
                let rec = ticketlog_fuzz::record(i as u64 + 1, payload);
                let (bytes, _) = event_store::codec::encode(&rec).expect("events encode");
                if bytes.len() > RECORD_BYTES_MAX {
                    // The writer refuses it (400), nothing is appended.
                    continue;
                }
                let back = event_store::codec::decode(rec.position, &bytes).expect("decodes");
                let (again, _) = event_store::codec::encode(&back).expect("re-encodes");
                assert_eq!(bytes, again);
            }
        }
        Err(e) => {
            let status = ApiError::from(e.clone()).status.as_u16();
            assert!((400..500).contains(&status), "{e:?}");
            if let DomainError::Invalid { field, .. } = &e {
                assert!(!field.is_empty(), "{e:?}");
            }
        }
    }
}
