//! The runner over the real stores (sled and PostgreSQL): follow, stop,
//! restart from the snapshot stored in the store's side tree.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use event_store::both_stores;
use event_store::testing::stores::Backend;
use event_store::{AppendRequest, EventStore, ExpectedVersion, KvProvider, NewEvent};
use projections::{Projections, ProjectionsConfig, SnapshotSource};

async fn append_as_recorded(store: &dyn EventStore, events: &[event_store::RecordedEvent]) {
    for e in events {
        let mut ne = NewEvent::new(e.payload.clone());
        ne.event_id = e.event_id;
        store
            .append(AppendRequest {
                stream_id: e.stream_id,
                expected: ExpectedVersion::Exact(e.stream_version - 1),
                events: vec![ne],
                command_id: e.command_id,
                request_fingerprint: None,
                correlation_id: e.correlation_id,
                tenant: e.tenant.clone(),
                actor: e.actor.clone(),
                recorded_at: e.recorded_at,
            })
            .await
            .expect("append");
    }
}

both_stores!(
    follows_and_restarts,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn follows_and_restarts(backend: Backend) {
    let location = backend.place().await;
    let events = scenario().events().to_vec();
    let expected_views = |m: &projections::ReadModel| {
        serde_json::json!({
            "carol": m.tickets(&carol(), &Default::default()).expect("list"),
            "chat": m.chat(&alice(), T1, 0, None).expect("chat"),
            "stats": m.stats(&frank(), &Default::default(), &Default::default(), day4()).expect("stats"),
        })
    };
    let want = expected_views(&folded(&events));
    {
        let store = location.open().await;
        append_as_recorded(&*store, &events[..10]).await;
        let (p, report) = Projections::open(
            store.clone() as Arc<dyn EventStore>,
            store.clone() as Arc<dyn KvProvider>,
            ProjectionsConfig::default(),
        )
        .await
        .expect("open projections");
        assert_eq!(report.position, 10);
        let follower = p.spawn();
        append_as_recorded(&*store, &events[10..]).await;
        p.wait_for(events.len() as u64, Duration::from_secs(5))
            .await
            .expect("caught up");
        assert_eq!(p.with_model(expected_views), want);
        p.stop();
        follower.await.expect("joined").expect("clean stop");
        drop(p);
        store.close().await.expect("close");
    }
    let store = location.open().await;
    let (p, report) = Projections::open(
        store.clone() as Arc<dyn EventStore>,
        store.clone() as Arc<dyn KvProvider>,
        ProjectionsConfig::default(),
    )
    .await
    .expect("reopen projections");
    assert_eq!(
        report.snapshot,
        SnapshotSource::Loaded {
            position: events.len() as u64
        }
    );
    assert_eq!(p.with_model(expected_views), want);
    let audit = p
        .audit(&erin(), T1, None)
        .await
        .expect("audit over the store");
    assert_eq!(
        audit.events.len(),
        events.iter().filter(|e| e.stream_id == T1).count()
    );
}
