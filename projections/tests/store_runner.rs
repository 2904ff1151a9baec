//! The runner over the real stores (sled and PostgreSQL): follow, stop,
//! restart from the snapshot stored in the store's side tree.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use event_store::testing::postgres::PgServer;
use event_store::{
    AppendRequest, EventStore, ExpectedVersion, KvProvider, NewEvent, PgOptions, PgStore,
    SledOptions, SledStore, Storage,
};
use projections::{Projections, ProjectionsConfig, SnapshotSource};

/// The stores the test runs against.
#[derive(Debug, Clone, Copy)]
enum Backend {
    /// The embedded sled store in a temporary directory.
    Sled,
    /// The PostgreSQL store in a fresh database of this test binary's
    /// server (`PgServer::shared()`).
    Postgres,
}

/// One test per backend: `both_stores!(name, tokio::test arguments)` runs
/// `async fn name(Backend)` as `name::sled` and `name::postgres`.
macro_rules! both_stores {
    ($name:ident $(, $($arg:tt)*)?) => {
        mod $name {
            #[tokio::test($($($arg)*)?)]
            async fn sled() {
                super::$name(super::Backend::Sled).await
            }
            #[tokio::test($($($arg)*)?)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await
            }
        }
    };
}

/// Where a store's data lives, to open it again after a close.
enum Location {
    Dir(tempfile::TempDir),
    Url(String),
}

impl Backend {
    /// A place for a fresh, empty store.
    async fn fresh(self) -> Location {
        match self {
            Backend::Sled => Location::Dir(tempfile::tempdir().expect("tempdir")),
            Backend::Postgres => Location::Url(
                // Runs programs and waits: off the test's runtime threads.
                tokio::task::spawn_blocking(|| {
                    let server = PgServer::shared().expect("start the test PostgreSQL");
                    server.fresh_database().expect("create a database")
                })
                .await
                .expect("create a database"),
            ),
        }
    }
}

impl Location {
    /// The store at this place.
    async fn open(&self) -> Arc<dyn Storage> {
        match self {
            Location::Dir(dir) => {
                SledStore::open(dir.path(), SledOptions::default()).expect("open store")
            }
            Location::Url(url) => PgStore::open(url, PgOptions::default())
                .await
                .expect("open store"),
        }
    }
}

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
    let location = backend.fresh().await;
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
