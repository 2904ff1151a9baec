//! The one visibility rule, case by case.

use chrono::Utc;
use event_store::{
    can_see, can_see_stream, Actor, DispatchChoice, EventPayload, GeoPoint, Principal, Priority,
    RecordedEvent, Role, StreamAudience, TicketKind, Visibility, SCHEMA_VERSION,
};
use uuid::Uuid;

const CUSTOMER: Uuid = Uuid::from_u128(1);
const OTHER_CUSTOMER: Uuid = Uuid::from_u128(2);
const TECH: Uuid = Uuid::from_u128(3);
const OTHER_TECH: Uuid = Uuid::from_u128(4);
const AGENT: Uuid = Uuid::from_u128(5);

fn principal(user_id: Uuid, role: Role, tenant: &str) -> Principal {
    Principal {
        user_id,
        tenant: tenant.into(),
        role,
        name: String::new(),
    }
}

fn event(version: u64, payload: EventPayload, stream: Uuid) -> RecordedEvent {
    let visibility = if payload.is_internal() {
        Visibility::Internal
    } else {
        Visibility::Public
    };
    RecordedEvent {
        position: version,
        stream_id: stream,
        stream_version: version,
        event_id: Uuid::now_v7(),
        command_id: Uuid::now_v7(),
        request_fingerprint: None,
        correlation_id: Uuid::now_v7(),
        tenant: "demo".into(),
        actor: Actor {
            user_id: AGENT,
            role: Role::Agent,
        },
        recorded_at: Utc::now(),
        schema_version: SCHEMA_VERSION,
        visibility,
        payload,
        prev_hash: [0; 32],
        hash: [0; 32],
    }
}

/// A ticket reported by CUSTOMER and dispatched to TECH, with a public and an internal comment.
fn ticket() -> (Vec<RecordedEvent>, StreamAudience) {
    let stream = Uuid::now_v7();
    let events = vec![
        event(
            1,
            EventPayload::TicketCreated {
                number: 1,
                title: "t".into(),
                description: "d".into(),
                priority: Priority::Low,
                kind: TicketKind::Question,
                reporter: CUSTOMER,
                location: None,
                tags: vec![],
                device: None,
            },
            stream,
        ),
        event(
            2,
            EventPayload::DispatchRequested {
                dispatch_id: Uuid::now_v7(),
                technician: Some(TECH),
                choice: DispatchChoice::Explicit,
                distance_km: None,
                eta_minutes: None,
                radius_km: 10.0,
                candidates: vec![],
            },
            stream,
        ),
        event(
            3,
            EventPayload::CommentPosted {
                comment_id: Uuid::now_v7(),
                body: "public".into(),
                internal: false,
            },
            stream,
        ),
        event(
            4,
            EventPayload::CommentPosted {
                comment_id: Uuid::now_v7(),
                body: "staff only".into(),
                internal: true,
            },
            stream,
        ),
    ];
    let audience = StreamAudience::of(&events);
    (events, audience)
}

fn visible(p: &Principal) -> Vec<u64> {
    let (events, audience) = ticket();
    events
        .iter()
        .filter(|e| can_see(p, e, &audience))
        .map(|e| e.stream_version)
        .collect()
}

#[test]
fn customers_see_their_own_tickets_without_internal_notes() {
    assert_eq!(
        visible(&principal(CUSTOMER, Role::Customer, "demo")),
        vec![1, 2, 3]
    );
    assert!(visible(&principal(OTHER_CUSTOMER, Role::Customer, "demo")).is_empty());
}

#[test]
fn technicians_see_only_tickets_dispatched_to_them() {
    assert_eq!(
        visible(&principal(TECH, Role::Technician, "demo")),
        vec![1, 2, 3, 4]
    );
    assert!(visible(&principal(OTHER_TECH, Role::Technician, "demo")).is_empty());
}

#[test]
fn staff_see_internal_notes() {
    for role in [Role::Agent, Role::Admin, Role::Auditor] {
        assert_eq!(
            visible(&principal(AGENT, role, "demo")),
            vec![1, 2, 3, 4],
            "{role:?}"
        );
    }
}

#[test]
fn analysts_see_no_ticket_events() {
    assert!(visible(&principal(AGENT, Role::Analyst, "demo")).is_empty());
}

#[test]
fn other_tenants_see_nothing() {
    for role in Role::ALL {
        assert!(
            visible(&principal(AGENT, role, "acme")).is_empty(),
            "{role:?}"
        );
    }
}

#[test]
fn unknown_streams_are_invisible() {
    let empty = StreamAudience {
        tenant: "demo".into(),
        ..StreamAudience::default()
    };
    assert!(!can_see_stream(
        &principal(AGENT, Role::Admin, "demo"),
        &empty
    ));
}

#[test]
fn technician_streams_are_seen_by_their_owner_and_dispatchers() {
    let stream = Uuid::now_v7();
    let report = event(
        1,
        EventPayload::TechnicianLocationReported {
            technician: TECH,
            point: GeoPoint {
                lat: 45.0,
                lon: 4.8,
            },
            site: None,
            building: None,
            floor: None,
        },
        stream,
    );
    let audience = StreamAudience::of([&report]);
    assert!(can_see(
        &principal(TECH, Role::Technician, "demo"),
        &report,
        &audience
    ));
    assert!(can_see(
        &principal(AGENT, Role::Agent, "demo"),
        &report,
        &audience
    ));
    assert!(!can_see(
        &principal(OTHER_TECH, Role::Technician, "demo"),
        &report,
        &audience
    ));
    assert!(!can_see(
        &principal(CUSTOMER, Role::Customer, "demo"),
        &report,
        &audience
    ));
    assert!(!can_see(
        &principal(AGENT, Role::Analyst, "demo"),
        &report,
        &audience
    ));
}
