//! A scripted scenario with known timings, shared by the tests.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use event_store::testing::Script;
use event_store::{
    Actor, DispatchChoice, DispatchPhase, EventPayload, Location, Principal, Priority,
    RecordedEvent, Role, TicketKind, TicketStatus,
};
use uuid::Uuid;

/// Text of the internal comments; must never reach a customer.
pub const SECRET: &str = "SECRET-INTERNAL";

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 3, 9, 0, 0)
        .single()
        .expect("valid date")
}

pub fn user(n: u128) -> Uuid {
    Uuid::from_u128(0x1000 + n)
}

pub const CAROL: u128 = 1;
pub const ALICE: u128 = 2;
pub const BOB: u128 = 3;
pub const DAVE: u128 = 4;
pub const ERIN: u128 = 5;
pub const FRANK: u128 = 6;
pub const ROOT: u128 = 7;
pub const MALLORY: u128 = 8;
pub const EVE: u128 = 9;

pub fn principal(n: u128, role: Role) -> Principal {
    principal_in("acme", n, role)
}

pub fn principal_in(tenant: &str, n: u128, role: Role) -> Principal {
    Principal {
        user_id: user(n),
        tenant: tenant.into(),
        role,
        name: format!("user{n}"),
    }
}

pub fn carol() -> Principal {
    principal(CAROL, Role::Customer)
}
pub fn alice() -> Principal {
    principal(ALICE, Role::Agent)
}
pub fn dave() -> Principal {
    principal(DAVE, Role::Technician)
}
pub fn erin() -> Principal {
    principal(ERIN, Role::Auditor)
}
pub fn frank() -> Principal {
    principal(FRANK, Role::Analyst)
}
pub fn mallory() -> Principal {
    principal(MALLORY, Role::Customer)
}
pub fn eve_other_tenant_admin() -> Principal {
    principal_in("globex", EVE, Role::Admin)
}

pub fn actor(n: u128, role: Role) -> Actor {
    Actor {
        user_id: user(n),
        role,
    }
}

pub const T1: Uuid = Uuid::from_u128(0xa1);
pub const T2: Uuid = Uuid::from_u128(0xa2);
pub const T3: Uuid = Uuid::from_u128(0xa3);
pub const T4: Uuid = Uuid::from_u128(0xa4);
pub const DAVE_STREAM: Uuid = Uuid::from_u128(0xd4);
pub const COUNTER: Uuid = Uuid::from_u128(0xc0);
pub const DISPATCH: Uuid = Uuid::from_u128(0xd1);

pub const HOUR: i64 = 3600;

fn created(
    number: u64,
    title: &str,
    priority: Priority,
    kind: TicketKind,
    reporter: u128,
    site: Option<&str>,
) -> EventPayload {
    EventPayload::TicketCreated {
        number,
        title: title.into(),
        description: format!("Description of {title}"),
        priority,
        kind,
        reporter: user(reporter),
        location: site.map(|s| Location {
            site: Some(s.into()),
            building: Some("B1".into()),
            ..Location::default()
        }),
        tags: vec!["hw".into()],
        device: None,
    }
}

fn status(from: TicketStatus, to: TicketStatus) -> EventPayload {
    EventPayload::TicketStatusChanged {
        from,
        to,
        note: None,
    }
}

fn comment(n: u128, body: &str, internal: bool) -> EventPayload {
    EventPayload::CommentPosted {
        comment_id: Uuid::from_u128(0xcc00 + n),
        body: body.into(),
        internal,
    }
}

/// The scenario: four tickets in two tenants, with reopen, reassignment,
/// internal comments, a dispatch and read receipts.
///
/// T1 (critical, HQ, carol): resolved at 1 h, reopened, resolved again at
/// 9000 s (2.5 h): resolution 9000 s, no breach of 4 h; first staff public
/// response at 300 s (the internal note at 120 s does not count).
/// T2 (high, Depot, carol): created at 1000 s, first response 800 s later,
/// resolved 10 h after creation: breach of 8 h.
/// T3 (low, no site, mallory): never resolved: breach of 72 h at day 4.
/// T4 (other tenant).
pub fn scenario() -> Script {
    use TicketStatus::*;
    let mut s = Script::new("acme", t0());
    let (carol, alice, bob, dave) = (
        actor(CAROL, Role::Customer),
        actor(ALICE, Role::Agent),
        actor(BOB, Role::Agent),
        actor(DAVE, Role::Technician),
    );
    s.emit(
        COUNTER,
        0,
        &carol,
        EventPayload::TicketNumberAllocated {
            number: 1,
            ticket: T1,
        },
    );
    s.emit(
        T1,
        0,
        &carol,
        created(
            1,
            "Printer on fire",
            Priority::Critical,
            TicketKind::Incident,
            CAROL,
            Some("HQ"),
        ),
    );
    s.emit(
        T1,
        60,
        &alice,
        EventPayload::TicketAssigned {
            assignee: user(ALICE),
            previous: None,
        },
    );
    s.emit(T1, 61, &alice, status(Open, Assigned));
    s.emit(
        T1,
        120,
        &alice,
        comment(1, &format!("{SECRET}: vendor firmware is known bad"), true),
    );
    s.emit(
        T1,
        200,
        &alice,
        EventPayload::TicketEdited {
            title: Some("Printer smoking".into()),
            description: None,
            priority: None,
            tags: Some(vec!["hw".into(), "fire".into()]),
        },
    );
    s.emit(
        T1,
        300,
        &alice,
        comment(2, "We are looking into it.", false),
    );
    s.emit(T1, 600, &alice, status(Assigned, InProgress));
    s.emit(
        T1,
        900,
        &carol,
        comment(3, "Thanks, it is getting worse.", false),
    );
    s.emit(
        T1,
        1200,
        &alice,
        EventPayload::TicketAssigned {
            assignee: user(BOB),
            previous: Some(user(ALICE)),
        },
    );
    s.emit(
        DAVE_STREAM,
        1300,
        &dave,
        EventPayload::TechnicianLocationReported {
            technician: user(DAVE),
            point: event_store::GeoPoint {
                lat: 52.0,
                lon: 13.0,
            },
            site: Some("HQ".into()),
            building: None,
            floor: None,
        },
    );
    s.emit(
        T1,
        1500,
        &bob,
        EventPayload::DispatchRequested {
            dispatch_id: DISPATCH,
            technician: Some(user(DAVE)),
            choice: DispatchChoice::Explicit,
            distance_km: Some(1.5),
            eta_minutes: Some(6.0),
            radius_km: 50.0,
            candidates: vec![],
        },
    );
    s.emit(
        T1,
        1560,
        &dave,
        EventPayload::DispatchAccepted {
            dispatch_id: DISPATCH,
            technician: user(DAVE),
        },
    );
    s.emit(
        T1,
        2000,
        &dave,
        EventPayload::DispatchProgressed {
            dispatch_id: DISPATCH,
            stage: DispatchPhase::EnRoute,
            location: Some(event_store::GeoPoint {
                lat: 48.8700,
                lon: 2.3300,
            }),
        },
    );
    s.emit(
        T1,
        2400,
        &dave,
        EventPayload::DispatchProgressed {
            dispatch_id: DISPATCH,
            stage: DispatchPhase::OnSite,
            location: Some(event_store::GeoPoint {
                lat: 48.8566,
                lon: 2.3522,
            }),
        },
    );
    s.emit(
        T1,
        3000,
        &dave,
        EventPayload::DispatchCompleted {
            dispatch_id: DISPATCH,
            location: None,
        },
    );
    s.emit(T1, 3600, &bob, status(InProgress, Resolved));
    // T2 created while T1 is being worked.
    s.emit(
        T2,
        3700,
        &carol,
        created(
            2,
            "Replace filters",
            Priority::High,
            TicketKind::Maintenance,
            CAROL,
            Some("Depot"),
        ),
    );
    s.emit(T1, 4000, &carol, comment(4, "Still broken!", false));
    s.emit(T1, 4100, &bob, status(Resolved, Open));
    s.emit(T1, 4200, &bob, status(Open, Assigned));
    s.emit(T1, 4300, &bob, status(Assigned, InProgress));
    s.emit(
        T2,
        3700 + 800,
        &alice,
        comment(5, "Scheduled for tomorrow.", false),
    );
    s.emit(
        T3,
        5000,
        &actor(MALLORY, Role::Customer),
        created(
            3,
            "How do I reset my password?",
            Priority::Low,
            TicketKind::Question,
            MALLORY,
            None,
        ),
    );
    s.emit(
        T3,
        5100,
        &bob,
        comment(6, &format!("{SECRET}-2: customer asked twice before"), true),
    );
    s.emit(T1, 9000, &bob, status(InProgress, Resolved));
    s.emit(
        T1,
        9100,
        &carol,
        EventPayload::ReadReceiptRecorded {
            user: user(CAROL),
            position: 4,
        },
    );
    s.emit(
        T1,
        9200,
        &alice,
        EventPayload::ReadReceiptRecorded {
            user: user(ALICE),
            position: 4,
        },
    );
    s.emit(T2, 3700 + HOUR, &alice, status(Open, Assigned));
    s.emit(T2, 3700 + 2 * HOUR, &alice, status(Assigned, InProgress));
    s.emit(T2, 3700 + 10 * HOUR, &alice, status(InProgress, Resolved));
    s.emit(T1, 20_000, &bob, status(Resolved, Closed));
    s.emit_in(
        "globex",
        T4,
        100,
        &actor(EVE, Role::Admin),
        created(
            1,
            "Other tenant's ticket",
            Priority::Medium,
            TicketKind::Incident,
            EVE,
            Some("HQ"),
        ),
    );
    s
}

/// The scenario folded in one go.
pub fn folded(events: &[RecordedEvent]) -> projections::ReadModel {
    let mut m = projections::ReadModel::default();
    for e in events {
        m.apply(e).expect("scenario is gapless");
    }
    m
}

/// The instant the statistics are taken at: day 4.
pub fn day4() -> DateTime<Utc> {
    t0() + chrono::Duration::days(4)
}
