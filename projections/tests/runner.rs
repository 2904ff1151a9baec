//! The runner: catch-up, live follow, lag, restart from snapshot, corrupt
//! snapshot, rebuild beside with swap, read-your-writes.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use event_store::testing::{MemoryKv, MemoryStore};
use event_store::{EventStore, KvProvider, KvTree};
use projections::persist::TREE_NAME;
use projections::{ProjectionError, Projections, ProjectionsConfig, SnapshotSource};

const WAIT: Duration = Duration::from_secs(5);

fn config(every: u64) -> ProjectionsConfig {
    ProjectionsConfig {
        snapshot_every_events: every,
        ..ProjectionsConfig::default()
    }
}

async fn open(
    store: &Arc<MemoryStore>,
    kv: &Arc<MemoryKv>,
    every: u64,
) -> (Projections, projections::OpenReport) {
    Projections::open(
        store.clone() as Arc<dyn EventStore>,
        kv.clone() as Arc<dyn KvProvider>,
        config(every),
    )
    .await
    .expect("open")
}

fn model_of(p: &Projections) -> projections::ReadModel {
    p.with_model(|m| m.clone())
}

#[tokio::test]
async fn follows_live_log_and_restarts_from_snapshot() {
    let events = scenario().events().to_vec();
    let (head, tail) = events.split_at(10);
    let store = MemoryStore::new();
    let kv = MemoryKv::new();
    store.push_all(head);

    let (p, report) = open(&store, &kv, 4).await;
    assert_eq!(report.snapshot, SnapshotSource::Missing);
    assert_eq!(report.position, 10);
    let follower = p.spawn();
    store.push_all(&tail[..10]);
    assert_eq!(p.wait_for(20, WAIT).await.expect("caught up"), 20);
    store.push_all(&tail[10..]);
    let end = events.len() as u64;
    p.wait_for(end, WAIT).await.expect("caught up");
    assert_eq!(model_of(&p), folded(&events));
    p.stop();
    follower
        .await
        .expect("joined")
        .expect("follower ends cleanly");

    let (again, report) = open(&store, &kv, 4).await;
    assert_eq!(
        report.snapshot,
        SnapshotSource::Loaded { position: end },
        "final snapshot on stop"
    );
    assert_eq!(report.replayed, 0);
    assert_eq!(model_of(&again), folded(&events));
}

#[tokio::test]
async fn restart_replays_only_the_tail_after_the_snapshot() {
    let events = scenario().events().to_vec();
    let store = MemoryStore::new();
    let kv = MemoryKv::new();
    store.push_all(&events[..12]);
    let (p, _) = open(&store, &kv, 1_000_000).await;
    p.snapshot().await.expect("snapshot");
    drop(p); // a crash: no final snapshot
    store.push_all(&events[12..]);
    let (p, report) = open(&store, &kv, 1_000_000).await;
    assert_eq!(report.snapshot, SnapshotSource::Loaded { position: 12 });
    assert_eq!(report.replayed, events.len() as u64 - 12);
    assert_eq!(model_of(&p), folded(&events));
}

#[tokio::test]
async fn lagged_subscription_resumes_without_loss_or_duplicate() {
    let events = scenario().events().to_vec();
    let store = MemoryStore::new();
    let kv = MemoryKv::new();
    store.push_all(&events[..5]);
    let (p, _) = open(&store, &kv, 1_000_000).await;
    store.lag_once_at(8);
    let follower = p.spawn();
    store.push_all(&events[5..]);
    p.wait_for(events.len() as u64, WAIT)
        .await
        .expect("resumed after lag");
    assert_eq!(model_of(&p), folded(&events));
    p.stop();
    follower.await.expect("joined").expect("clean");
}

#[tokio::test]
async fn corrupt_snapshot_rebuilds_from_position_one() {
    let events = scenario().events().to_vec();
    let store = MemoryStore::new();
    let kv = MemoryKv::new();
    store.push_all(&events);
    let (p, _) = open(&store, &kv, 1).await;
    p.snapshot().await.expect("snapshot");
    drop(p);
    // Flip bytes in every stored chunk.
    let tree = kv.mem_tree(TREE_NAME);
    let chunks = tree.scan_prefix(b"chunk/", 1000).expect("scan");
    assert!(!chunks.is_empty());
    tree.apply(
        chunks
            .into_iter()
            .map(|(k, mut v)| {
                v[0] ^= 0xff;
                (k, Some(v))
            })
            .collect(),
    )
    .expect("damage");

    let (p, report) = open(&store, &kv, 1).await;
    assert!(
        matches!(report.snapshot, SnapshotSource::Corrupt { .. }),
        "{report:?}"
    );
    assert_eq!(report.replayed, events.len() as u64);
    assert_eq!(model_of(&p), folded(&events), "never empty state");
    // The rebuilt state was snapshotted again.
    drop(p);
    let (_, report) = open(&store, &kv, 1).await;
    assert_eq!(
        report.snapshot,
        SnapshotSource::Loaded {
            position: events.len() as u64
        }
    );
}

#[tokio::test]
async fn rebuild_beside_and_swap_while_following() {
    let events = scenario().events().to_vec();
    let store = MemoryStore::new();
    let kv = MemoryKv::new();
    store.push_all(&events[..20]);
    let (p, _) = open(&store, &kv, 1_000_000).await;
    let follower = p.spawn();
    let calls = Arc::new(AtomicU64::new(0));
    let last_done = Arc::new(AtomicU64::new(0));
    let (c, d) = (calls.clone(), last_done.clone());
    let progress: projections::Progress = Arc::new(move |done, total| {
        assert!(done <= total);
        c.fetch_add(1, Ordering::SeqCst);
        d.store(done, Ordering::SeqCst);
    });
    let rebuild = {
        let p = p.clone();
        tokio::spawn(async move { p.rebuild(Some(progress)).await })
    };
    // Reads keep being served and the log keeps moving meanwhile.
    assert!(p.ticket(&alice(), T1).is_ok());
    store.push_all(&events[20..]);
    let report = rebuild.await.expect("joined").expect("rebuilt");
    assert!(calls.load(Ordering::SeqCst) > 0);
    assert!(report.position >= 20);
    p.wait_for(events.len() as u64, WAIT)
        .await
        .expect("follower continues after the swap");
    assert_eq!(model_of(&p), folded(&events));
    p.stop();
    follower.await.expect("joined").expect("clean");
}

#[tokio::test]
async fn wait_for_times_out_with_the_reached_position() {
    let store = MemoryStore::new();
    store.push_all(&scenario().events()[..3]);
    let (p, _) = open(&store, &MemoryKv::new(), 100).await;
    match p.wait_for(99, Duration::from_millis(20)).await {
        Err(ProjectionError::NotCaughtUp {
            wanted: 99,
            reached: 3,
        }) => {}
        other => panic!("expected NotCaughtUp, got {other:?}"),
    }
    assert_eq!(
        p.wait_for(2, Duration::from_millis(1))
            .await
            .expect("already there"),
        3
    );
}

#[tokio::test]
async fn events_are_permission_filtered_and_paged() {
    let store = MemoryStore::new();
    store.push_all(scenario().events());
    let (p, _) = open(&store, &MemoryKv::new(), 100).await;
    assert!(matches!(
        p.events(&alice(), None, None).await,
        Err(ProjectionError::Forbidden { .. })
    ));
    let page = p.events(&erin(), None, Some(5)).await.expect("auditor");
    assert_eq!(page.items.len(), 5);
    assert_eq!(page.next, Some(5));
    let rest = p.events(&erin(), page.next, Some(500)).await.expect("rest");
    assert_eq!(rest.next, None);
    let total = page.items.len() + rest.items.len();
    assert_eq!(
        total,
        scenario().events().len() - 1,
        "all of acme's, none of globex's"
    );
    let globex = p
        .events(&eve_other_tenant_admin(), None, None)
        .await
        .expect("admin");
    assert_eq!(globex.items.len(), 1);
    insta::assert_json_snapshot!("events_first_page", page);
}
