//! HTTP command bodies: the JSON of every command route, parsed as the API
//! parses it (`http::extract::parse_json` into the route's body type), then
//! turned into the route's domain `Action` and decided (`domain::decide`)
//! against several ticket states by every kind of principal.
//!
//! Invariants: no panic, no hang; a refused body is a 400 naming a field
//! (`malformed_json` or `invalid_input`); a refused command is a typed
//! `DomainError` with a 4xx status; the events of an accepted command fold
//! into the state and, when they fit a record, encode and decode unchanged.
//!
//! The body fields are private to command-api, so the mapping body -> Action
//! is mirrored here (`mirror`) with the same serde attributes; the target
//! checks that the mirror accepts exactly what the real body type accepts.
#![no_main]

use std::sync::OnceLock;

use command_api::domain::{self, Action, Command, DomainError, TicketState};
use command_api::http::extract::parse_json;
use command_api::http::routes::commands as api;
use command_api::http::ApiError;
use event_store::limits::RECORD_BYTES_MAX;
use event_store::Principal;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use ticketlog_fuzz::world::{self, DISPATCH, SPEED_KMH, TICKET};
use uuid::Uuid;

struct World {
    states: Vec<TicketState>,
    principals: Vec<Principal>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| World {
        states: world::states(),
        principals: world::principals(),
    })
}

/// The command routes. Input: `who` (route and principal), `what`
/// (state and target), then the body.
const ROUTES: usize = 10;

fuzz_target!(|data: &[u8]| {
    let Some(([who, what], body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let w = world();
    let route = usize::from(*who) % ROUTES;
    let principal = &w.principals[(usize::from(*who) / ROUTES) % w.principals.len()];
    let state = &w.states[usize::from(*what) % w.states.len()];
    // Paths name the ticket or dispatch of the state, or (rarely) another.
    let (ticket, dispatch) = if what & 0xf0 == 0xf0 {
        (Uuid::from_u128(u128::from(*what)), Uuid::nil())
    } else {
        (TICKET, DISPATCH)
    };
    let action = match route {
        0 => required::<api::CreateTicketBody, mirror::CreateTicketBody>(body)
            .map(|b| b.action(TICKET)),
        1 => {
            required::<api::EditTicketBody, mirror::EditTicketBody>(body).map(|b| b.action(ticket))
        }
        2 => required::<api::AssignBody, mirror::AssignBody>(body).map(|b| b.action(ticket)),
        3 => required::<api::StatusBody, mirror::StatusBody>(body).map(|b| b.action(ticket)),
        4 => required::<api::CommentBody, mirror::CommentBody>(body).map(|b| b.action(ticket)),
        5 => optional::<api::DispatchBody, mirror::DispatchBody>(body).map(|b| b.action(ticket)),
        6 => optional::<api::RespondBody, mirror::RespondBody>(body)
            .map(|b| b.action(dispatch, domain::DispatchResponse::Accept)),
        7 => optional::<api::RespondBody, mirror::RespondBody>(body)
            .map(|b| b.action(dispatch, domain::DispatchResponse::Decline)),
        8 => required::<api::ProgressBody, mirror::ProgressBody>(body).map(|b| b.action(dispatch)),
        _ => required::<api::LocationBody, mirror::LocationBody>(body).map(|b| b.action()),
    };
    if let Some(action) = action {
        decided(state, principal, action);
    }
});

/// An optional body (`OptionalJson`): blank is the default, else as [`required`].
fn optional<Real, Mirror>(body: &[u8]) -> Option<Mirror>
where
    Real: DeserializeOwned + std::fmt::Debug,
    Mirror: DeserializeOwned + Default,
{
    if body.iter().all(u8::is_ascii_whitespace) {
        return Some(Mirror::default());
    }
    required::<Real, Mirror>(body)
}

/// Parses a required body as the route does, checks refusals are typed
/// and that the mirror agrees.
fn required<Real, Mirror>(body: &[u8]) -> Option<Mirror>
where
    Real: DeserializeOwned + std::fmt::Debug,
    Mirror: DeserializeOwned,
{
    let real = parse_json::<Real>(body);
    let mirrored = parse_json::<Mirror>(body);
    match (&real, &mirrored) {
        (Ok(_), Ok(_)) => {}
        (Err(e), Err(_)) => typed_refusal(e),
        (Ok(r), Err(e)) => panic!("mirror refuses a body the API accepts: {r:?} / {e:?}"),
        (Err(e), Ok(_)) => panic!("mirror accepts a body the API refuses: {e:?}"),
    }
    mirrored.ok()
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
    match domain::decide(state, &command) {
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
            assert!((400..500).contains(&e.status()), "{e:?}");
            if let DomainError::Invalid { field, .. } = &e {
                assert!(!field.is_empty(), "{e:?}");
            }
        }
    }
}

/// The route bodies with public fields and the API's serde attributes,
/// and the action each route builds from its body.
mod mirror {
    use command_api::domain::{
        Action, AssignDispatch, AssignTicket, ChangeStatus, CreateTicket, DispatchResponse,
        EditTicket, PostComment, ProgressDispatch, DispatchPhase, ReportLocation, RespondDispatch,
    };
    use event_store::{GeoPoint, Location, Priority, TicketKind, TicketStatus, UserId};
    use serde::Deserialize;
    use uuid::Uuid;

    use super::{world, SPEED_KMH};

    fn new_id() -> Uuid {
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0e00)
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CreateTicketBody {
        title: String,
        #[serde(default)]
        description: String,
        priority: Priority,
        kind: TicketKind,
        #[serde(default)]
        location: Option<Location>,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        device: Option<String>,
    }

    impl CreateTicketBody {
        pub fn action(self, ticket_id: Uuid) -> Action {
            Action::CreateTicket(CreateTicket {
                ticket_id,
                number: 7,
                title: self.title,
                description: self.description,
                priority: self.priority,
                kind: self.kind,
                location: self.location,
                tags: self.tags,
                device: self.device,
            })
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct EditTicketBody {
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        priority: Option<Priority>,
        #[serde(default)]
        tags: Option<Vec<String>>,
    }

    impl EditTicketBody {
        pub fn action(self, ticket_id: Uuid) -> Action {
            Action::EditTicket(EditTicket {
                ticket_id,
                title: self.title,
                description: self.description,
                priority: self.priority,
                tags: self.tags,
            })
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AssignBody {
        assignee_id: UserId,
    }

    impl AssignBody {
        pub fn action(self, ticket_id: Uuid) -> Action {
            Action::AssignTicket(AssignTicket {
                ticket_id,
                assignee_id: self.assignee_id,
            })
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct StatusBody {
        status: TicketStatus,
        #[serde(default)]
        note: Option<String>,
    }

    impl StatusBody {
        pub fn action(self, ticket_id: Uuid) -> Action {
            Action::ChangeStatus(ChangeStatus {
                ticket_id,
                status: self.status,
                note: self.note,
            })
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CommentBody {
        body: String,
        #[serde(default)]
        internal: bool,
    }

    impl CommentBody {
        pub fn action(self, ticket_id: Uuid) -> Action {
            Action::PostComment(PostComment {
                ticket_id,
                comment_id: new_id(),
                body: self.body,
                internal: self.internal,
            })
        }
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct DispatchBody {
        #[serde(default)]
        technician_id: Option<UserId>,
        #[serde(default)]
        radius_km: Option<f64>,
    }

    impl DispatchBody {
        pub fn action(self, ticket_id: Uuid) -> Action {
            Action::AssignDispatch(AssignDispatch {
                ticket_id,
                dispatch_id: new_id(),
                technician_id: self.technician_id,
                radius_km: self.radius_km,
                speed_kmh: SPEED_KMH,
                technicians: world::technicians(),
            })
        }
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RespondBody {
        #[serde(default)]
        reason: Option<String>,
    }

    impl RespondBody {
        pub fn action(self, dispatch_id: Uuid, response: DispatchResponse) -> Action {
            Action::RespondDispatch(RespondDispatch {
                dispatch_id,
                response,
                reason: self.reason,
            })
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ProgressBody {
        #[serde(deserialize_with = "DispatchPhase::deserialize_reported")]
        status: DispatchPhase,
        #[serde(default)]
        location: Option<GeoPoint>,
    }

    impl ProgressBody {
        pub fn action(self, dispatch_id: Uuid) -> Action {
            Action::ProgressDispatch(ProgressDispatch {
                dispatch_id,
                stage: self.status,
                location: self.location,
            })
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct LocationBody {
        lat: f64,
        lon: f64,
        #[serde(default)]
        site: Option<String>,
        #[serde(default)]
        building: Option<String>,
        #[serde(default)]
        floor: Option<String>,
    }

    impl LocationBody {
        pub fn action(self) -> Action {
            Action::ReportLocation(ReportLocation {
                lat: self.lat,
                lon: self.lon,
                site: self.site,
                building: self.building,
                floor: self.floor,
            })
        }
    }
}
