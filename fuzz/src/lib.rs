//! Shared fixtures of the fuzz targets: valid records of every payload kind
//! (seeds and round-trip checks) and the input layout of the record target.

use chrono::{DateTime, TimeZone, Utc};
use event_store::upcast::EventPayloadV1;
use event_store::{
    Actor, DispatchCandidate, DispatchChoice, DispatchPhase, EventPayload, GeoPoint, Location,
    Priority, RecordedEvent, Role, TicketKind, TicketStatus, Visibility,
};
use serde::Serialize;
use uuid::Uuid;

/// First byte of a `record_decode` input: what the rest of the bytes are.
pub mod record_mode {
    /// The rest is a stored record, checked as is (checksum included).
    pub const RAW: u8 = 0;
    /// The rest is `schema version (u16 LE) | body`: sealed with a valid
    /// checksum first, so the fuzzer reaches the body decoder.
    pub const SEALED_BODY: u8 = 1;
    /// The rest is a log page (length-framed records), read as the store does.
    pub const PAGE: u8 = 2;
}

/// A fixed, valid point in time (micro-second precision, as stored).
pub fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
        + chrono::Duration::minutes(minutes)
}

/// A deterministic id for fixtures.
pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n)
}

/// One payload of every kind, with optional fields both set and unset.
pub fn sample_payloads() -> Vec<EventPayload> {
    let point = GeoPoint {
        lat: 48.8566,
        lon: 2.3522,
    };
    vec![
        EventPayload::TicketCreated {
            number: 42,
            title: "Printer on fire".into(),
            description: "Smoke from tray 2 — ünïcødé".into(),
            priority: Priority::High,
            kind: TicketKind::Incident,
            reporter: id(1),
            location: Some(Location {
                lat: Some(point.lat),
                lon: Some(point.lon),
                site: Some("HQ".into()),
                building: Some("A".into()),
                floor: Some("3".into()),
                address: None,
            }),
            tags: vec!["printer".into(), "fire".into()],
            device: Some("HP-4000".into()),
        },
        EventPayload::TicketEdited {
            title: Some("New title".into()),
            description: None,
            priority: Some(Priority::Low),
            tags: Some(vec![]),
        },
        EventPayload::TicketAssigned {
            assignee: id(2),
            previous: None,
        },
        EventPayload::TicketStatusChanged {
            from: TicketStatus::Open,
            to: TicketStatus::InProgress,
            note: Some("on it".into()),
        },
        EventPayload::CommentPosted {
            comment_id: id(3),
            body: "internal note".into(),
            internal: true,
        },
        EventPayload::DispatchRequested {
            dispatch_id: id(4),
            technician: Some(id(5)),
            choice: DispatchChoice::Nearest,
            distance_km: Some(1.5),
            eta_minutes: Some(3.0),
            radius_km: 50.0,
            candidates: vec![DispatchCandidate {
                technician: id(5),
                distance_km: Some(1.5),
                note: "nearest".into(),
            }],
        },
        EventPayload::DispatchAccepted {
            dispatch_id: id(4),
            technician: id(5),
        },
        EventPayload::DispatchDeclined {
            dispatch_id: id(4),
            technician: id(5),
            reason: Some("busy".into()),
        },
        EventPayload::DispatchProgressed {
            dispatch_id: id(4),
            stage: DispatchPhase::OnSite,
            location: Some(point),
        },
        EventPayload::DispatchCompleted {
            dispatch_id: id(4),
            location: None,
        },
        EventPayload::TechnicianLocationReported {
            technician: id(5),
            point,
            site: Some("HQ".into()),
            building: None,
            floor: None,
        },
        EventPayload::ReadReceiptRecorded {
            user: id(1),
            position: 7,
        },
        EventPayload::TicketNumberAllocated {
            number: 42,
            ticket: id(6),
        },
        EventPayload::ConversationRead {
            reader: id(1),
            ticket: id(6),
            position: 7,
        },
    ]
}

/// A valid record at `position` holding `payload`.
pub fn record(position: u64, payload: EventPayload) -> RecordedEvent {
    let visibility = if payload.is_internal() {
        Visibility::Internal
    } else {
        Visibility::Public
    };
    RecordedEvent {
        position,
        stream_id: id(6),
        stream_version: position,
        event_id: id(100 + u128::from(position)),
        command_id: id(200 + u128::from(position)),
        request_fingerprint: None,
        correlation_id: id(300),
        tenant: "acme".into(),
        actor: Actor {
            user_id: id(1),
            role: Role::Agent,
        },
        recorded_at: at(position as i64),
        schema_version: event_store::SCHEMA_VERSION,
        visibility,
        payload,
        prev_hash: [0; 32],
        hash: [0; 32],
    }
}

/// A hash-chained log of one record per sample payload, from position 1,
/// as (record, stored bytes).
pub fn sample_chain() -> Vec<(RecordedEvent, Vec<u8>)> {
    let mut prev = [0u8; 32];
    let mut out = Vec::new();
    for (i, payload) in sample_payloads().into_iter().enumerate() {
        let mut rec = record(i as u64 + 1, payload);
        rec.prev_hash = prev;
        let Ok((bytes, hash)) = event_store::codec::encode(&rec) else {
            continue;
        };
        rec.hash = hash;
        prev = hash;
        out.push((rec, bytes));
    }
    out
}

/// A schema version 1 body (as the first beta wrote it), for seeds that
/// reach the upcaster. Field order is the stored format.
#[derive(Serialize)]
pub struct BodyV1 {
    /// Position.
    pub position: u64,
    /// Stream.
    pub stream_id: Uuid,
    /// Version in the stream.
    pub stream_version: u64,
    /// Event id.
    pub event_id: Uuid,
    /// Command id.
    pub command_id: Uuid,
    /// Correlation id.
    pub correlation_id: Uuid,
    /// Tenant.
    pub tenant: String,
    /// Actor.
    pub actor: Actor,
    /// Micro-seconds since the epoch.
    pub recorded_at_micros: i64,
    /// Visibility.
    pub visibility: Visibility,
    /// Previous hash.
    pub prev_hash: [u8; 32],
    /// v1 payload.
    pub payload: EventPayloadV1,
}

/// A v1 comment body at `position`.
pub fn v1_comment(position: u64) -> BodyV1 {
    BodyV1 {
        position,
        stream_id: id(6),
        stream_version: position,
        event_id: id(100 + u128::from(position)),
        command_id: id(200),
        correlation_id: id(300),
        tenant: "acme".into(),
        actor: Actor {
            user_id: id(1),
            role: Role::Customer,
        },
        recorded_at_micros: at(1).timestamp_micros(),
        visibility: Visibility::Public,
        prev_hash: [0; 32],
        payload: EventPayloadV1::CommentPosted {
            body: "v1 comment".into(),
            internal: false,
        },
    }
}

/// Ticket states and principals that fuzzed commands are decided against.
pub mod world {
    use command_api::domain::{
        decide, evolve, Action, AssignDispatch, AssignTicket, Command, Context, CreateTicket,
        DispatchResponse, RespondDispatch, TechnicianInfo, TicketState,
    };
    use event_store::{
        EventPayload, GeoPoint, Location, Principal, Priority, RecordedEvent, Role, TicketKind,
    };
    use uuid::Uuid;

    use super::{at, id, record};

    /// The states and principals every target decides against, built once
    /// per fuzzing process.
    pub struct World {
        /// Ticket states from new to closed, with and without dispatches.
        pub states: Vec<TicketState>,
        /// One principal per role, plus another tenant's.
        pub principals: Vec<Principal>,
    }

    /// The process's [`World`].
    pub fn cached() -> &'static World {
        static WORLD: std::sync::OnceLock<World> = std::sync::OnceLock::new();
        WORLD.get_or_init(|| World {
            states: states(),
            principals: principals(),
        })
    }

    /// The ticket every state is about (its stream id).
    pub const TICKET: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0006);
    /// The dispatch of the dispatched states.
    pub const DISPATCH: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00d1);
    /// Average travel speed handed to dispatch decisions.
    pub const SPEED_KMH: f64 = 30.0;
    /// The number a create is given.
    pub const TICKET_NUMBER: u64 = 7;
    /// How long a dispatch request may stay unanswered.
    pub const DISPATCH_TIMEOUT_SECS: u64 = 120;

    /// A principal of tenant `acme` (or `other` for `foreign`).
    pub fn principal(n: u128, role: Role, foreign: bool) -> Principal {
        Principal {
            user_id: id(0x1000 + n),
            tenant: if foreign { "other" } else { "acme" }.into(),
            role,
            name: format!("user{n}"),
        }
    }

    /// The reporter (a customer).
    pub fn reporter() -> Principal {
        principal(1, Role::Customer, false)
    }

    /// The technician of the dispatched states.
    pub fn technician() -> Principal {
        principal(4, Role::Technician, false)
    }

    /// Everyone who may send a command: each role, another customer, the
    /// technician, and an agent of another tenant.
    pub fn principals() -> Vec<Principal> {
        let mut all = vec![reporter(), technician()];
        for (i, role) in Role::ALL.into_iter().enumerate() {
            all.push(principal(10 + i as u128, role, false));
        }
        all.push(principal(30, Role::Agent, true));
        all
    }

    /// Technicians known to the dispatcher: near, far, at the site, busy.
    pub fn technicians() -> Vec<TechnicianInfo> {
        vec![
            TechnicianInfo {
                id: technician().user_id,
                position: Some(GeoPoint {
                    lat: 48.86,
                    lon: 2.35,
                }),
                site: Some("HQ".into()),
                available: true,
            },
            TechnicianInfo {
                id: id(0x1005),
                position: Some(GeoPoint {
                    lat: -33.86,
                    lon: 151.2,
                }),
                site: None,
                available: true,
            },
            TechnicianInfo {
                id: id(0x1006),
                position: None,
                site: Some("HQ".into()),
                available: true,
            },
            TechnicianInfo {
                id: id(0x1007),
                position: Some(GeoPoint { lat: 0.0, lon: 0.0 }),
                site: None,
                available: false,
            },
        ]
    }

    /// What the service would supply to every decision.
    pub fn context() -> Context {
        Context {
            ticket_number: Some(TICKET_NUMBER),
            fleet: technicians(),
            speed_kmh: SPEED_KMH,
            dispatch_timeout_secs: DISPATCH_TIMEOUT_SECS,
            // The tenant's directory: everyone of `acme` and its fleet.
            members: principals()
                .into_iter()
                .filter(|p| p.tenant == "acme")
                .map(|p| (p.user_id, p.role))
                .chain(technicians().into_iter().map(|t| (t.id, Role::Technician)))
                .collect(),
        }
    }

    /// Folds `payloads`, appended by `by` under one command, into `state`.
    pub fn fold(
        mut state: TicketState,
        by: &Principal,
        payloads: Vec<EventPayload>,
    ) -> TicketState {
        let command_id = Uuid::from_u128(0xc000 + u128::from(state.version));
        for payload in payloads {
            let version = state.version + 1;
            let mut rec: RecordedEvent = record(version * 10, payload);
            rec.stream_id = TICKET;
            rec.stream_version = version;
            rec.command_id = command_id;
            rec.tenant = by.tenant.clone();
            rec.actor = event_store::Actor {
                user_id: by.user_id,
                role: by.role,
            };
            state = evolve(state, &rec);
        }
        state
    }

    /// Decides `action` by `by` and folds its events; panics if refused
    /// (the fixtures are valid commands).
    pub fn apply(state: TicketState, by: &Principal, action: Action) -> TicketState {
        let command = Command {
            principal: by.clone(),
            at: at(10 + state.version as i64),
            action,
        };
        let events = decide(&state, &command, &context()).expect("fixture command is valid");
        fold(state, by, events)
    }

    /// States to decide against: none, open, assigned with a dispatch
    /// requested, and the dispatch accepted.
    pub fn states() -> Vec<TicketState> {
        let agent = principal(11, Role::Agent, false);
        let none = TicketState::default();
        let open = apply(
            none.clone(),
            &reporter(),
            Action::CreateTicket(CreateTicket {
                ticket_id: TICKET,
                title: "Printer on fire".into(),
                description: "Smoke".into(),
                priority: Priority::Critical,
                kind: TicketKind::Incident,
                location: Some(Location {
                    lat: Some(48.8566),
                    lon: Some(2.3522),
                    site: Some("HQ".into()),
                    ..Location::default()
                }),
                tags: vec!["printer".into()],
                device: None,
            }),
        );
        let assigned = apply(
            open.clone(),
            &agent,
            Action::AssignTicket(AssignTicket {
                ticket_id: TICKET,
                assignee_id: agent.user_id,
            }),
        );
        let dispatched = apply(
            assigned,
            &agent,
            Action::AssignDispatch(AssignDispatch {
                ticket_id: TICKET,
                dispatch_id: DISPATCH,
                technician_id: Some(technician().user_id),
                radius_km: None,
            }),
        );
        let accepted = apply(
            dispatched.clone(),
            &technician(),
            Action::RespondDispatch(RespondDispatch {
                dispatch_id: DISPATCH,
                response: DispatchResponse::Accept,
                reason: None,
            }),
        );
        vec![none, open, dispatched, accepted]
    }
}
