//! Any prefix of the log, folded incrementally with restarts (state
//! persisted and reloaded) at random points, equals the prefix folded in
//! one go.

mod common;

use std::sync::Arc;

use common::*;
use event_store::testing::{MemoryTree, Script};
use event_store::{EventPayload, Priority, RecordedEvent, Role, TicketKind, TicketStatus};
use projections::persist::{self, Loaded, SnapshotSlot};
use projections::ReadModel;
use proptest::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Op {
    Create,
    Edit(u8),
    Assign(u8),
    Status(u8),
    Comment(bool),
    Dispatch(u8),
    Receipt(u8),
    Location,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Create),
        any::<u8>().prop_map(Op::Edit),
        any::<u8>().prop_map(Op::Assign),
        any::<u8>().prop_map(Op::Status),
        any::<bool>().prop_map(Op::Comment),
        any::<u8>().prop_map(Op::Dispatch),
        any::<u8>().prop_map(Op::Receipt),
        Just(Op::Location),
    ]
}

const STATUSES: [TicketStatus; 5] = [
    TicketStatus::Open,
    TicketStatus::Assigned,
    TicketStatus::InProgress,
    TicketStatus::Resolved,
    TicketStatus::Closed,
];

/// Turns ops into a log: each op targets ticket `pick % tickets`, by a
/// role chosen from the pick, at increasing times.
fn build(ops: &[(Op, u8, u16)]) -> Vec<RecordedEvent> {
    let mut s = Script::new("acme", t0());
    let mut tickets: Vec<Uuid> = vec![];
    let mut at = 0i64;
    for (i, (op, pick, dt)) in ops.iter().enumerate() {
        at += i64::from(*dt);
        let role = Role::ALL[*pick as usize % Role::ALL.len()];
        let who = actor(u128::from(*pick % 5), role);
        let tenant = if pick % 7 == 0 { "globex" } else { "acme" };
        if tickets.is_empty() || matches!(op, Op::Create) {
            let id = Uuid::from_u128(0xa000 + i as u128);
            tickets.push(id);
            s.emit_in(
                tenant,
                id,
                at,
                &who,
                EventPayload::TicketCreated {
                    number: tickets.len() as u64,
                    title: format!("t{i}"),
                    description: "d".into(),
                    priority: [
                        Priority::Critical,
                        Priority::High,
                        Priority::Medium,
                        Priority::Low,
                    ][*pick as usize % 4],
                    kind: TicketKind::Incident,
                    reporter: who.user_id,
                    location: None,
                    tags: vec![],
                    device: None,
                },
            );
            continue;
        }
        let id = tickets[*pick as usize % tickets.len()];
        let payload = match op {
            Op::Create => unreachable!("handled above"),
            Op::Edit(x) => EventPayload::TicketEdited {
                title: Some(format!("e{x}")),
                description: None,
                priority: None,
                tags: None,
            },
            Op::Assign(x) => EventPayload::TicketAssigned {
                assignee: user(u128::from(*x % 4)),
                previous: None,
            },
            Op::Status(x) => EventPayload::TicketStatusChanged {
                from: STATUSES[*x as usize % 5],
                to: STATUSES[(*x as usize / 5) % 5],
                note: None,
            },
            Op::Comment(internal) => EventPayload::CommentPosted {
                comment_id: Uuid::from_u128(i as u128),
                body: format!("c{i}"),
                internal: *internal,
            },
            Op::Dispatch(x) => match x % 3 {
                0 => EventPayload::DispatchRequested {
                    dispatch_id: Uuid::from_u128(0xd0 + u128::from(*x % 2)),
                    technician: Some(user(u128::from(*x % 3))),
                    choice: event_store::DispatchChoice::Nearest,
                    distance_km: Some(f64::from(*x)),
                    eta_minutes: None,
                    radius_km: 50.0,
                    candidates: vec![],
                },
                1 => EventPayload::DispatchAccepted {
                    dispatch_id: Uuid::from_u128(0xd0 + u128::from(*x % 2)),
                    technician: user(1),
                },
                _ => EventPayload::DispatchCompleted {
                    dispatch_id: Uuid::from_u128(0xd0 + u128::from(*x % 2)),
                    location: None,
                },
            },
            Op::Receipt(x) => EventPayload::ReadReceiptRecorded {
                user: user(u128::from(*x % 4)),
                position: u64::from(*x),
            },
            Op::Location => {
                s.emit(
                    Uuid::from_u128(0xfeed),
                    at,
                    &who,
                    EventPayload::TechnicianLocationReported {
                        technician: who.user_id,
                        point: event_store::GeoPoint { lat: 1.0, lon: 2.0 },
                        site: None,
                        building: None,
                        floor: None,
                    },
                );
                continue;
            }
        };
        s.emit_in(tenant, id, at, &who, payload);
    }
    s.events().to_vec()
}

fn restart(model: &ReadModel, slot: &SnapshotSlot) -> ReadModel {
    let encoded = persist::encode(model).expect("encode");
    slot.save(model.position, encoded).expect("save");
    match slot.load() {
        Loaded::Model(m) => *m,
        other => panic!("snapshot did not load: {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn incremental_with_restarts_equals_one_go(
        ops in prop::collection::vec((op(), any::<u8>(), 0u16..5000), 1..120),
        prefix_permille in 0u32..=1000,
        restarts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let events = build(&ops);
        let n = (events.len() as u64 * u64::from(prefix_permille) / 1000) as usize;
        let prefix = &events[..n];
        let restart_at: Vec<usize> = restarts.iter().map(|i| i.index(n + 1)).collect();
        let slot = SnapshotSlot::new(Arc::new(MemoryTree::default()));

        let mut incremental = ReadModel::default();
        for (i, e) in prefix.iter().enumerate() {
            if restart_at.contains(&i) {
                incremental = restart(&incremental, &slot);
            }
            prop_assert!(incremental.apply(e).expect("gapless"));
            // Replaying an already folded event changes nothing.
            prop_assert!(!incremental.apply(e).expect("old events are skipped"));
        }
        if restart_at.contains(&n) {
            incremental = restart(&incremental, &slot);
        }
        let one_go = folded(prefix);
        prop_assert_eq!(&incremental, &one_go);
        prop_assert_eq!(incremental.position, n as u64);
    }
}
