//! The internal comments' text never reaches a principal without
//! `tickets.view.internal`, whichever query it asks.

mod common;

use std::sync::Arc;

use chrono::Duration;
use common::*;
use event_store::testing::{MemoryKv, MemoryStore};
use event_store::{EventStore, Principal};
use projections::{AsOf, GroupBy, Projections, ProjectionsConfig, StatsQuery, TicketQuery};

fn out<T: serde::Serialize>(r: Result<T, projections::ProjectionError>) -> String {
    match r {
        Ok(v) => serde_json::to_string(&v).expect("serializable"),
        Err(e) => format!("{e} {e:?}"),
    }
}

async fn every_response(p: &Projections, who: &Principal) -> Vec<String> {
    let mut all = vec![];
    let queries = [
        TicketQuery::default(),
        TicketQuery {
            q: Some(SECRET.into()),
            ..Default::default()
        },
        TicketQuery {
            q: Some("vendor firmware".into()),
            ..Default::default()
        },
        TicketQuery {
            limit: Some(1),
            ..Default::default()
        },
    ];
    for q in &queries {
        all.push(out(p.tickets(who, q)));
    }
    all.push(serde_json::to_string(&p.unread(who)).expect("json"));
    for id in [T1, T2, T3, T4, DAVE_STREAM, COUNTER] {
        all.push(out(p.ticket(who, id)));
        for (after, limit) in [
            (None, None),
            (Some(0), Some(1)),
            (Some(4), Some(1)),
            (Some(5), Some(500)),
        ] {
            all.push(out(p.chat(who, id, after, limit)));
        }
        for as_of in [
            None,
            Some(AsOf::Position(5)),
            Some(AsOf::Time(t0() + Duration::hours(1))),
        ] {
            all.push(out(p.audit(who, id, as_of).await));
        }
    }
    for by in [
        GroupBy::Priority,
        GroupBy::Kind,
        GroupBy::Assignee,
        GroupBy::Site,
        GroupBy::Week,
    ] {
        let q = StatsQuery {
            group_by: by,
            ..Default::default()
        };
        all.push(out(p.stats(who, &q, day4())));
        all.push(
            p.stats(who, &q, day4())
                .map(|r| r.to_csv())
                .unwrap_or_default(),
        );
    }
    for after in [None, Some(3), Some(4)] {
        all.push(out(p.events(who, after, None).await));
    }
    all
}

#[tokio::test]
async fn internal_comment_text_never_reaches_a_customer() {
    let store = MemoryStore::new();
    store.push_all(scenario().events());
    let (p, _) = Projections::open(
        store.clone() as Arc<dyn EventStore>,
        MemoryKv::new(),
        ProjectionsConfig::default(),
    )
    .await
    .expect("open");
    for who in [carol(), mallory(), frank(), eve_other_tenant_admin()] {
        for (i, response) in every_response(&p, &who).await.iter().enumerate() {
            assert!(
                !response.contains(SECRET),
                "{who:?} response {i} leaks: {response}"
            );
            assert!(
                !response.contains("vendor firmware"),
                "{who:?} response {i} leaks: {response}"
            );
        }
    }
    // The control: the same queries do carry the text to staff, so the
    // search above looked in the right places.
    for who in [alice(), erin()] {
        assert!(
            every_response(&p, &who)
                .await
                .iter()
                .any(|r| r.contains(SECRET)),
            "{who:?}"
        );
    }
}
