//! Snapshot tests of every view after the scripted scenario.

mod common;

use common::*;
use event_store::{Priority, TicketStatus};
use projections::{audit, AsOf, GroupBy, ProjectionError, SlaTargets, StatsQuery, TicketQuery};

fn stats(by: GroupBy) -> projections::StatsReport {
    let s = scenario();
    let m = folded(s.events());
    let q = StatsQuery {
        from: Some(t0()),
        to: Some(t0() + chrono::Duration::days(7)),
        group_by: by,
    };
    m.stats(&frank(), &q, &SlaTargets::default(), day4())
        .expect("analyst reads stats")
}

#[test]
fn ticket_detail_customer_and_agent_side_by_side() {
    let s = scenario();
    let m = folded(s.events());
    let side_by_side = serde_json::json!({
        "customer": {
            "ticket": m.ticket(&carol(), T1).expect("own ticket"),
            "chat": m.chat(&carol(), T1, 0, None).expect("own chat"),
        },
        "agent": {
            "ticket": m.ticket(&alice(), T1).expect("agent sees all"),
            "chat": m.chat(&alice(), T1, 0, None).expect("agent chat"),
        },
    });
    insta::assert_json_snapshot!(side_by_side);
}

#[test]
fn ticket_lists_per_role() {
    let s = scenario();
    let m = folded(s.events());
    let all = TicketQuery::default();
    let lists = serde_json::json!({
        "carol": m.tickets(&carol(), &all).expect("customer list"),
        "mallory": m.tickets(&mallory(), &all).expect("customer list"),
        "dave": m.tickets(&dave(), &all).expect("technician list"),
        "alice_numbers": m.tickets(&alice(), &all).expect("agent list").items.iter().map(|t| t.number).collect::<Vec<_>>(),
        "other_tenant_numbers": m.tickets(&eve_other_tenant_admin(), &all).expect("admin list").items.iter().map(|t| (t.number, t.title.clone())).collect::<Vec<_>>(),
    });
    insta::assert_json_snapshot!(lists);
    assert!(matches!(
        m.tickets(&frank(), &all),
        Err(ProjectionError::Forbidden { .. })
    ));
}

#[test]
fn ticket_list_filters_and_paging() {
    let s = scenario();
    let m = folded(s.events());
    let numbers = |q: TicketQuery| -> Vec<u64> {
        m.tickets(&alice(), &q)
            .expect("agent list")
            .items
            .iter()
            .map(|t| t.number)
            .collect()
    };
    assert_eq!(
        numbers(TicketQuery::default()),
        vec![3, 2, 1],
        "newest first"
    );
    assert_eq!(
        numbers(TicketQuery {
            status: Some(TicketStatus::Closed),
            ..Default::default()
        }),
        vec![1]
    );
    assert_eq!(
        numbers(TicketQuery {
            priority: Some(Priority::High),
            ..Default::default()
        }),
        vec![2]
    );
    assert_eq!(
        numbers(TicketQuery {
            assignee: Some(user(BOB)),
            ..Default::default()
        }),
        vec![1],
        "reassigned to bob"
    );
    assert_eq!(
        numbers(TicketQuery {
            assignee: Some(user(ALICE)),
            ..Default::default()
        }),
        Vec::<u64>::new()
    );
    assert_eq!(
        numbers(TicketQuery {
            kind: Some(event_store::TicketKind::Question),
            ..Default::default()
        }),
        vec![3]
    );
    assert_eq!(
        numbers(TicketQuery {
            site: Some("Depot".into()),
            ..Default::default()
        }),
        vec![2]
    );
    assert_eq!(
        numbers(TicketQuery {
            q: Some("PRINTER".into()),
            ..Default::default()
        }),
        vec![1],
        "case-insensitive title"
    );
    assert_eq!(
        numbers(TicketQuery {
            q: Some("description of replace".into()),
            ..Default::default()
        }),
        vec![2]
    );
    assert_eq!(
        numbers(TicketQuery {
            q: Some("SMOKING".into()),
            ..Default::default()
        }),
        vec![1],
        "edited title"
    );

    let first = m
        .tickets(
            &alice(),
            &TicketQuery {
                limit: Some(2),
                ..Default::default()
            },
        )
        .expect("page 1");
    assert_eq!(
        first.items.iter().map(|t| t.number).collect::<Vec<_>>(),
        vec![3, 2]
    );
    let cursor = first.next_cursor.expect("more pages");
    let second = m
        .tickets(
            &alice(),
            &TicketQuery {
                limit: Some(2),
                cursor: Some(cursor),
                ..Default::default()
            },
        )
        .expect("page 2");
    assert_eq!(
        second.items.iter().map(|t| t.number).collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(second.next_cursor, None);
    assert!(matches!(
        m.tickets(
            &alice(),
            &TicketQuery {
                cursor: Some("42".into()),
                ..Default::default()
            }
        ),
        Err(ProjectionError::BadRequest {
            field: "cursor",
            ..
        })
    ));
    assert!(matches!(
        m.tickets(
            &alice(),
            &TicketQuery {
                limit: Some(0),
                ..Default::default()
            }
        ),
        Err(ProjectionError::BadRequest { field: "limit", .. })
    ));
    let capped = m
        .tickets(
            &alice(),
            &TicketQuery {
                limit: Some(100_000),
                ..Default::default()
            },
        )
        .expect("capped");
    assert_eq!(capped.items.len(), 3);
}

#[test]
fn not_visible_is_not_found() {
    let s = scenario();
    let m = folded(s.events());
    for (who, id) in [
        (mallory(), T1),
        (carol(), T3),
        (frank(), T1),
        (dave(), T2),
        (eve_other_tenant_admin(), T1),
        (alice(), T4),
        (alice(), uuid::Uuid::from_u128(0xdead)),
        (alice(), DAVE_STREAM),
    ] {
        assert!(
            matches!(m.ticket(&who, id), Err(ProjectionError::NotFound)),
            "{who:?} {id}"
        );
        assert!(
            matches!(m.chat(&who, id, 0, None), Err(ProjectionError::NotFound)),
            "{who:?} {id}"
        );
        assert!(
            matches!(
                audit::report(&who, &stream(&s, id), None),
                Err(ProjectionError::NotFound)
            ),
            "{who:?} {id}"
        );
    }
    // Visible but without audit.read: 403.
    assert!(matches!(
        audit::report(&carol(), &stream(&s, T1), None),
        Err(ProjectionError::Forbidden { .. })
    ));
}

fn stream(s: &event_store::testing::Script, id: uuid::Uuid) -> Vec<event_store::RecordedEvent> {
    s.events()
        .iter()
        .filter(|e| e.stream_id == id)
        .cloned()
        .collect()
}

#[test]
fn chat_paging_and_unread() {
    let s = scenario();
    let m = folded(s.events());
    let page1 = m.chat(&alice(), T1, 0, Some(2)).expect("agent chat");
    assert_eq!(page1.items.len(), 2);
    assert!(page1.items[0].internal, "agents see the internal note");
    let next = page1.next.expect("more");
    let page2 = m.chat(&alice(), T1, next, Some(10)).expect("page 2");
    assert_eq!(page2.items.len(), 2);
    assert_eq!(page2.next, None);
    assert!(page2.items[0].position > page1.items[1].position);

    let carol_chat = m.chat(&carol(), T1, 0, None).expect("own chat");
    assert_eq!(carol_chat.items.len(), 3, "internal note hidden");
    assert_eq!(carol_chat.last_read, Some(4));
    assert_eq!(
        carol_chat.unread, 1,
        "alice's public reply; the internal note is not counted"
    );
    assert_eq!(
        m.chat(&alice(), T1, 0, None).expect("chat").unread,
        2,
        "carol's two comments"
    );
    insta::assert_json_snapshot!(serde_json::json!({
        "carol": m.unread(&carol()),
        "alice": m.unread(&alice()),
        "mallory": m.unread(&mallory()),
    }));
}

/// The scenario's log with every receipt moved out of its ticket's stream
/// into the reader's own stream, as this build records them: the ticket
/// streams lose those versions, nothing else changes.
fn receipts_in_reader_streams(
    events: &[event_store::RecordedEvent],
) -> Vec<event_store::RecordedEvent> {
    use event_store::{reader_stream_id, EventPayload};
    use std::collections::HashMap;
    let mut versions: HashMap<uuid::Uuid, u64> = HashMap::new();
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let EventPayload::ReadReceiptRecorded { user, position } = e.payload {
                e.payload = EventPayload::ConversationRead {
                    reader: user,
                    ticket: e.stream_id,
                    position,
                };
                e.stream_id = reader_stream_id(&e.tenant, user);
            }
            let version = versions.entry(e.stream_id).or_default();
            *version += 1;
            e.stream_version = *version;
            e
        })
        .collect()
}

#[test]
fn receipts_in_ticket_streams_and_in_reader_streams_count_the_same() {
    let s = scenario();
    let legacy = folded(s.events());
    let moved = receipts_in_reader_streams(s.events());
    assert!(moved.iter().any(|e| matches!(
        e.payload,
        event_store::EventPayload::ConversationRead { .. }
    )));
    let current = folded(&moved);
    for p in [
        carol(),
        alice(),
        mallory(),
        dave(),
        erin(),
        eve_other_tenant_admin(),
    ] {
        assert_eq!(current.unread(&p), legacy.unread(&p), "{}", p.name);
        for t in [T1, T2, T3, T4] {
            assert_eq!(
                current.chat(&p, t, 0, None).ok(),
                legacy.chat(&p, t, 0, None).ok(),
                "{} {t}",
                p.name
            );
            // Reading is never a ticket change: the same ticket, one
            // version less per receipt the ticket's stream no longer holds.
            let (now, before) = (current.ticket(&p, t), legacy.ticket(&p, t));
            assert_eq!(now.is_ok(), before.is_ok(), "{} {t}", p.name);
            if let (Ok(now), Ok(before)) = (now, before) {
                assert_eq!(now.updated_at, before.updated_at, "{} {t}", p.name);
            }
        }
    }
    assert_eq!(
        legacy.chat(&carol(), T1, 0, None).expect("own").last_read,
        Some(4)
    );
}

#[test]
fn stats_by_priority_to_the_second() {
    let r = stats(GroupBy::Priority);
    let critical = &r.groups[0];
    assert_eq!(critical.key, "critical");
    assert_eq!(
        critical.p50,
        Some(9000.0),
        "resolution measured to the last resolution"
    );
    assert_eq!(
        critical.first_response_p50,
        Some(300.0),
        "internal note is not a response"
    );
    assert_eq!(critical.sla_breaches, 0);
    let high = &r.groups[1];
    assert_eq!(high.p50, Some(36_000.0));
    assert_eq!(high.first_response_p50, Some(800.0));
    assert_eq!(high.sla_breaches, 1);
    let low = &r.groups[2];
    assert_eq!((low.open, low.sla_breaches), (1, 1));
    assert_eq!(r.total.count, 3, "the other tenant's ticket is not counted");
    assert_eq!(r.total.avg, Some(22_500.0));
    insta::assert_json_snapshot!(r);
}

#[test]
fn stats_other_groupings() {
    let all = serde_json::json!({
        "kind": stats(GroupBy::Kind).groups,
        "assignee": stats(GroupBy::Assignee).groups,
        "site": stats(GroupBy::Site).groups,
        "week": stats(GroupBy::Week).groups,
    });
    insta::assert_json_snapshot!(all);
    insta::assert_snapshot!(stats(GroupBy::Site).to_csv());
}

#[test]
fn stats_window_and_permissions() {
    let s = scenario();
    let m = folded(s.events());
    let sla = SlaTargets::default();
    let q = StatsQuery {
        from: Some(t0() + chrono::Duration::seconds(3700)),
        to: Some(t0() + chrono::Duration::seconds(5000)),
        group_by: GroupBy::Priority,
    };
    let r = m
        .stats(&alice(), &q, &sla, day4())
        .expect("agents have stats.read");
    assert_eq!(r.total.count, 1, "[from, to) holds only T2");
    assert!(matches!(
        m.stats(&carol(), &q, &sla, day4()),
        Err(ProjectionError::Forbidden { .. })
    ));
    // Before T3 is 72 h old it is no breach.
    let early = m
        .stats(
            &frank(),
            &StatsQuery::default(),
            &sla,
            t0() + chrono::Duration::hours(24),
        )
        .expect("stats");
    assert_eq!(early.total.sla_breaches, 1, "only T2");
}

#[test]
fn active_dispatches() {
    let s = scenario();
    let events = s.events();
    let cut = events
        .iter()
        .position(|e| e.payload.kind() == "DispatchAccepted")
        .expect("accepted")
        + 1;
    let m = folded(&events[..cut]);
    let r = m
        .stats(
            &frank(),
            &StatsQuery::default(),
            &SlaTargets::default(),
            day4(),
        )
        .expect("stats");
    assert_eq!(r.active_dispatches, 1);
    assert_eq!(stats(GroupBy::Priority).active_dispatches, 0, "completed");
}

#[test]
fn audit_history_and_as_of() {
    let s = scenario();
    let t1 = stream(&s, T1);
    let full = audit::report(&erin(), &t1, None).expect("auditor");
    assert_eq!(
        full.events.len(),
        t1.len(),
        "auditors see internal events too"
    );
    insta::assert_json_snapshot!("audit_full", full);
    let reassignment = full
        .events
        .iter()
        .find(|e| e.position == 10)
        .expect("reassignment");
    assert_eq!(
        reassignment.data["changes"]["assignee"]["old"],
        serde_json::json!(user(ALICE))
    );
    assert_eq!(
        reassignment.data["changes"]["assignee"]["new"],
        serde_json::json!(user(BOB))
    );
    for w in full.events.windows(2) {
        assert!(w[0].position < w[1].position);
    }

    let at_resolution = audit::report(
        &erin(),
        &t1,
        Some(AsOf::Time(t0() + chrono::Duration::seconds(3600))),
    )
    .expect("as of");
    let ticket = at_resolution.ticket.expect("existed");
    assert_eq!(ticket.status, TicketStatus::Resolved);
    assert_eq!(ticket.assignee, Some(user(BOB)));
    let by_position = audit::report(&erin(), &t1, Some(AsOf::Position(4))).expect("as of position");
    insta::assert_json_snapshot!("audit_as_of_position_4", by_position);
    insta::assert_snapshot!("audit_as_of_position_4_text", by_position.to_text());
    let before = audit::report(&erin(), &t1, Some(AsOf::Position(1))).expect("before creation");
    assert_eq!(before.ticket, None);
    assert_eq!(AsOf::parse("12").expect("position"), AsOf::Position(12));
    assert!(AsOf::parse("2025-03-03T10:00:00Z").is_ok());
    assert!(matches!(
        AsOf::parse("yesterday"),
        Err(ProjectionError::BadRequest { field: "as_of", .. })
    ));
}

#[test]
fn dispatch_metrics_per_technician_and_site() {
    use event_store::{DispatchChoice, EventPayload, Role};
    let mut s = scenario();
    let bob = actor(BOB, Role::Agent);
    let dave = actor(DAVE, Role::Technician);
    let second = uuid::Uuid::from_u128(0xd2);
    let third = uuid::Uuid::from_u128(0xd3);
    let requested = |id, technician| EventPayload::DispatchRequested {
        dispatch_id: id,
        technician,
        choice: DispatchChoice::Nearest,
        distance_km: technician.map(|_| 3.0),
        eta_minutes: technician.map(|_| 4.5),
        radius_km: 50.0,
        candidates: vec![],
    };
    // T2 (Depot): dave does not answer, then nobody is left.
    s.emit(T2, 20_000, &bob, requested(second, Some(user(DAVE))));
    s.emit(
        T2,
        20_120,
        &bob,
        EventPayload::DispatchDeclined {
            dispatch_id: second,
            technician: user(DAVE),
            reason: Some("timeout".into()),
        },
    );
    s.emit(T2, 20_121, &bob, requested(third, None));
    // An answer to an unknown dispatch changes nothing.
    s.emit(
        T2,
        20_200,
        &dave,
        EventPayload::DispatchAccepted {
            dispatch_id: uuid::Uuid::from_u128(0xdead),
            technician: user(DAVE),
        },
    );
    let m = folded(s.events());
    let q = StatsQuery {
        from: Some(t0()),
        to: Some(t0() + chrono::Duration::days(7)),
        group_by: GroupBy::Site,
    };
    let r = m
        .stats(&frank(), &q, &SlaTargets::default(), day4())
        .expect("analyst reads stats");
    // T1's dispatch: requested 1500 s, accepted 1560, on site 2400, done 3000.
    let all = &r.total.dispatch;
    assert_eq!(
        (
            all.requested,
            all.broadcast,
            all.accepted,
            all.declined,
            all.completed
        ),
        (2, 1, 1, 1, 1)
    );
    assert_eq!(all.time_to_accept_p50, Some(60.0));
    assert_eq!(all.travel_time_p50, Some(840.0));
    assert_eq!(all.on_site_time_p50, Some(600.0));
    let dave_figures = &r.dispatch.by_technician;
    assert_eq!(dave_figures.len(), 1);
    assert_eq!(dave_figures[0].key, user(DAVE).to_string());
    assert_eq!(dave_figures[0].requested, 2);
    let sites: Vec<(&str, u64, u64)> = r
        .dispatch
        .by_site
        .iter()
        .map(|d| (d.key.as_str(), d.requested, d.broadcast))
        .collect();
    assert_eq!(sites, vec![("Depot", 1, 1), ("HQ", 1, 0)]);
    // Each ticket group carries the figures of its tickets' dispatches.
    let hq = r.groups.iter().find(|g| g.key == "HQ").expect("HQ group");
    assert_eq!(hq.dispatch.travel_time_p50, Some(840.0));
    // Outside the window (tickets created later): no dispatch counted.
    let later = m
        .stats(
            &frank(),
            &StatsQuery {
                from: Some(t0() + chrono::Duration::days(1)),
                ..q
            },
            &SlaTargets::default(),
            day4(),
        )
        .expect("stats");
    assert_eq!(later.total.dispatch.requested, 0);
    assert!(later.dispatch.by_technician.is_empty());
    insta::assert_snapshot!(r.dispatch_to_csv());
}
