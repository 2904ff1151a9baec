//! Appends: optimistic concurrency, idempotency, gapless numbering,
//! validation and what a failed flush leaves behind.

mod common;

use std::collections::HashSet;

use common::*;
use event_store::{
    EventPayload, EventStore, ExpectedVersion, FaultPoint, FaultSpan, GeoPoint, NewEvent,
    SledOptions, SledStore, StorageFaults, StoreError, Visibility,
};
use uuid::Uuid;

both_stores!(
    fifty_concurrent_appends_at_one_version_exactly_one_wins,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn fifty_concurrent_appends_at_one_version_exactly_one_wins(backend: Backend) {
    let fx = backend.fresh().await;
    let store = fx.store.clone();
    let ticket = create_ticket(store.as_ref(), 1).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(request(
                    ticket,
                    ExpectedVersion::Exact(1),
                    vec![comment(&format!("racer {i}"))],
                ))
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(outcome) => {
                wins += 1;
                assert_eq!(outcome.version, 2);
                assert!(!outcome.duplicate);
            }
            Err(StoreError::Conflict { expected, actual }) => {
                assert_eq!((expected, actual), (1, 2));
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.stream_version(ticket).await.expect("version"), 2);
    assert_eq!(
        store.read_stream(ticket, 1, 100).await.expect("read").len(),
        2
    );
}

both_stores!(no_stream_conflicts_report_the_actual_version);
async fn no_stream_conflicts_report_the_actual_version(backend: Backend) {
    let fx = backend.fresh().await;
    let store = fx.store.clone();
    let ticket = Uuid::now_v7();
    store
        .append(request(
            ticket,
            ExpectedVersion::NoStream,
            vec![created(1), comment("a")],
        ))
        .await
        .expect("create");
    let err = store
        .append(request(ticket, ExpectedVersion::NoStream, vec![created(1)]))
        .await
        .expect_err("stream exists");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: 0,
                actual: 2
            }
        ),
        "{err}"
    );
    let err = store
        .append(request(
            ticket,
            ExpectedVersion::Exact(5),
            vec![comment("b")],
        ))
        .await
        .expect_err("wrong version");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: 5,
                actual: 2
            }
        ),
        "{err}"
    );
}

both_stores!(
    retried_commands_append_nothing_also_after_reopen,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn retried_commands_append_nothing_also_after_reopen(backend: Backend) {
    let mut fx = backend.fresh().await;
    let store = fx.store.clone();
    let ticket = Uuid::now_v7();
    let first = request(
        ticket,
        ExpectedVersion::NoStream,
        vec![created(1), comment("hello")],
    );
    let outcome = store.append(first.clone()).await.expect("first");
    assert!(!outcome.duplicate);
    assert_eq!(
        (outcome.first_position, outcome.position, outcome.version),
        (1, 2, 2)
    );

    // Concurrent retries of the same command, as a flaky network would send.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        let req = first.clone();
        tasks.push(tokio::spawn(async move { store.append(req).await }));
    }
    for t in tasks {
        let again = t.await.expect("task").expect("retry succeeds");
        assert!(again.duplicate);
        assert_eq!(
            (again.first_position, again.position, again.version),
            (1, 2, 2)
        );
    }
    // Two copies of a new command in flight at once: one appends, one is the duplicate.
    let second = request(ticket, ExpectedVersion::Exact(2), vec![comment("again")]);
    let (a, b) = tokio::join!(store.append(second.clone()), store.append(second.clone()));
    let (a, b) = (a.expect("a"), b.expect("b"));
    assert_eq!(a.position, b.position);
    assert!(
        a.duplicate != b.duplicate,
        "exactly one of the two appended"
    );
    assert_eq!(store.head().await.expect("head"), 3);
    drop(store);
    fx.reopen().await;
    let store = fx.store.clone();
    let again = store.append(first).await.expect("retry after restart");
    assert!(again.duplicate);
    assert_eq!(again.position, 2);
    let again = store.append(second).await.expect("retry after restart");
    assert!(again.duplicate);
    assert_eq!(again.position, 3);
    let all = read_everything(store.as_ref()).await;
    assert_eq!(all.len(), 3, "no duplicate events");
    assert_gapless(&all);
}

both_stores!(
    positions_and_versions_stay_gapless_under_concurrency,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn positions_and_versions_stay_gapless_under_concurrency(backend: Backend) {
    let fx = backend.fresh().await;
    let store = fx.store.clone();
    let streams: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
    let mut tasks = Vec::new();
    for writer in 0..32 {
        let store = store.clone();
        let stream = streams[writer % streams.len()];
        tasks.push(tokio::spawn(async move {
            let mut appended = 0;
            while appended < 25 {
                let version = store.stream_version(stream).await.expect("version");
                let payloads = if version == 0 {
                    vec![created(writer as u64)]
                } else {
                    vec![comment("x"), comment("y")]
                };
                match store
                    .append(request(stream, ExpectedVersion::Exact(version), payloads))
                    .await
                {
                    Ok(_) => appended += 1,
                    Err(StoreError::Conflict { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let all = read_everything(store.as_ref()).await;
    assert_gapless(&all);
    let mut total = 0;
    for s in &streams {
        let events = read_stream_all(store.as_ref(), *s).await;
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.stream_version, i as u64 + 1);
            assert_eq!(e.stream_id, *s);
        }
        total += events.len();
    }
    assert_eq!(total, all.len());
    let report = store.verify(&|_, _| {}).await.expect("verify");
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.records, all.len() as u64);
}

async fn read_stream_all(store: &dyn EventStore, stream: Uuid) -> Vec<event_store::RecordedEvent> {
    let mut out: Vec<event_store::RecordedEvent> = Vec::new();
    loop {
        let page = store
            .read_stream(stream, out.len() as u64 + 1, 7)
            .await
            .expect("page");
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

both_stores!(malformed_appends_are_refused_and_append_nothing);
async fn malformed_appends_are_refused_and_append_nothing(backend: Backend) {
    let fx = backend.fresh().await;
    let store = fx.store.clone();
    let ticket = Uuid::now_v7();
    let empty = request(ticket, ExpectedVersion::Any, vec![]);
    assert!(matches!(
        store.append(empty).await,
        Err(StoreError::Invalid(_))
    ));

    let too_many = request(
        ticket,
        ExpectedVersion::Any,
        vec![comment("x"); event_store::limits::APPEND_EVENTS_MAX + 1],
    );
    assert!(matches!(
        store.append(too_many).await,
        Err(StoreError::Invalid(_))
    ));

    let mut leaky = request(
        ticket,
        ExpectedVersion::Any,
        vec![EventPayload::CommentPosted {
            comment_id: Uuid::now_v7(),
            body: "staff only".into(),
            internal: true,
        }],
    );
    leaky.events[0].visibility = Visibility::Public;
    assert!(matches!(
        store.append(leaky).await,
        Err(StoreError::Invalid(_))
    ));

    let huge = request(
        ticket,
        ExpectedVersion::Any,
        vec![comment(&"x".repeat(event_store::limits::RECORD_BYTES_MAX))],
    );
    assert!(matches!(
        store.append(huge).await,
        Err(StoreError::Invalid(_))
    ));

    store
        .append(request(ticket, ExpectedVersion::NoStream, vec![created(1)]))
        .await
        .expect("ticket");
    let location = EventPayload::TechnicianLocationReported {
        technician: Uuid::now_v7(),
        point: GeoPoint { lat: 1.0, lon: 2.0 },
        site: None,
        building: None,
        floor: None,
    };
    let wrong_kind = request(ticket, ExpectedVersion::Any, vec![location.clone()]);
    assert!(matches!(
        store.append(wrong_kind).await,
        Err(StoreError::Invalid(_))
    ));
    let mixed = request(
        Uuid::now_v7(),
        ExpectedVersion::Any,
        vec![location, comment("x")],
    );
    assert!(matches!(
        store.append(mixed).await,
        Err(StoreError::Invalid(_))
    ));

    let mut other_tenant = request(ticket, ExpectedVersion::Any, vec![comment("hi")]);
    other_tenant.tenant = "acme".into();
    assert!(matches!(
        store.append(other_tenant).await,
        Err(StoreError::Invalid(_))
    ));

    assert_eq!(store.head().await.expect("head"), 1);
}

#[tokio::test]
async fn a_failed_flush_acknowledges_nothing_and_leaves_no_trace() {
    let dir = tempfile::tempdir().expect("dir");
    let faults = StorageFaults::new();
    faults.fail(FaultPoint::Flush, 2, FaultSpan::Once);
    let options = SledOptions {
        faults: Some(faults),
        ..SledOptions::default()
    };
    let store = SledStore::open(dir.path(), options).expect("open");
    let ticket = Uuid::now_v7();
    store
        .append(request(ticket, ExpectedVersion::NoStream, vec![created(1)]))
        .await
        .expect("first flush works");
    let doomed = request(ticket, ExpectedVersion::Exact(1), vec![comment("lost")]);
    let err = store
        .append(doomed.clone())
        .await
        .expect_err("second flush fails");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert_eq!(store.head().await.expect("head"), 1);
    assert_eq!(store.stream_version(ticket).await.expect("version"), 1);

    // The retry is not mistaken for a duplicate, and numbering continues without a gap.
    let outcome = store.append(doomed).await.expect("retry works");
    assert!(!outcome.duplicate);
    assert_eq!((outcome.position, outcome.version), (2, 2));
    close(store).await;

    let store = SledStore::open(dir.path(), SledOptions::default()).expect("reopen");
    let all = read_everything(store.as_ref()).await;
    assert_eq!(all.len(), 2);
    assert_gapless(&all);
    assert!(store.verify(&|_, _| {}).await.expect("verify").ok());
}

both_stores!(reads_are_paged_and_capped);
async fn reads_are_paged_and_capped(backend: Backend) {
    let fx = backend.fresh().await;
    let store = fx.store.clone();
    let ticket = create_ticket(store.as_ref(), 1).await;
    for i in 0..30 {
        let events: Vec<_> = (0..50).map(|j| comment(&format!("{i}/{j}"))).collect();
        store
            .append(request(ticket, ExpectedVersion::Any, events))
            .await
            .expect("append");
    }
    let page = store.read_all(1, usize::MAX).await.expect("page");
    assert_eq!(page.len(), event_store::limits::READ_PAGE_MAX);
    let page = store.read_all(1500, 100).await.expect("tail");
    assert_eq!(
        page.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1500, 1501]
    );
    assert!(store
        .read_all(1502, 10)
        .await
        .expect("past head")
        .is_empty());
    let page = store
        .read_stream(ticket, 0, usize::MAX)
        .await
        .expect("stream");
    assert_eq!(page.len(), event_store::limits::READ_PAGE_MAX);
    assert_eq!(page[0].stream_version, 1);
    assert_eq!(
        store.stream_version(Uuid::now_v7()).await.expect("unknown"),
        0
    );
    let ids: HashSet<Uuid> = page.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), page.len());
}

both_stores!(live_events_equal_what_is_read_back);
async fn live_events_equal_what_is_read_back(backend: Backend) {
    let fx = backend.fresh().await;
    let store = fx.store.clone();
    let mut sub = store.subscribe(1);
    let ticket = Uuid::now_v7();
    let mut req = request(ticket, ExpectedVersion::NoStream, vec![created(1)]);
    req.events = vec![NewEvent::new(created(1))];
    store.append(req).await.expect("append");
    use futures::StreamExt;
    let live = sub.next().await.expect("item").expect("event");
    let read = store.read_all(1, 1).await.expect("read");
    assert_eq!(*live, read[0]);
}

both_stores!(
    a_refused_append_inside_a_batch_leaves_no_bytes_behind,
    flavor = "multi_thread",
    worker_threads = 4
);
/// An append refused while its group commit is being encoded (its second
/// event is too large) takes back its first event's bytes and leaves the
/// appends around it in the same batch whole and gapless.
async fn a_refused_append_inside_a_batch_leaves_no_bytes_behind(backend: Backend) {
    let fx = backend.fresh().await;
    let store = fx.store.clone();
    let big = "x".repeat(event_store::limits::RECORD_BYTES_MAX);
    for round in 0..20u64 {
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let (ra, rb, rc) = tokio::join!(
            store.append(request(a, ExpectedVersion::NoStream, vec![created(round)])),
            store.append(request(
                b,
                ExpectedVersion::NoStream,
                vec![created(round), comment(&big)],
            )),
            store.append(request(
                c,
                ExpectedVersion::NoStream,
                vec![created(round), comment("fine")],
            )),
        );
        ra.expect("a");
        assert!(matches!(rb, Err(StoreError::Invalid(_))), "{rb:?}");
        rc.expect("c");
        assert_eq!(store.stream_version(b).await.expect("b"), 0);
    }
    let all = read_everything(store.as_ref()).await;
    assert_eq!(all.len(), 20 * 3);
    assert_gapless(&all);
    assert!(store.verify(&|_, _| {}).await.expect("verify").ok());
}

both_stores!(append_recorded_returns_the_records_as_they_read_back);
async fn append_recorded_returns_the_records_as_they_read_back(backend: Backend) {
    let fx = backend.fresh().await;
    let store = fx.store.clone();
    let ticket = create_ticket(store.as_ref(), 1).await;
    let req = request(
        ticket,
        ExpectedVersion::Exact(1),
        vec![comment("first"), comment("second")],
    );
    let retry = req.clone();
    let appended = store.append_recorded(req).await.expect("append");
    assert_eq!(appended.outcome.version, 3);
    let stored = store.read_stream(ticket, 2, 10).await.expect("read");
    let returned: Vec<_> = appended.records.iter().map(|r| (**r).clone()).collect();
    assert_eq!(
        returned, stored,
        "same records, hashes and positions as stored"
    );
    // A retry appends nothing and has no records to fold.
    let again = store.append_recorded(retry).await.expect("retry");
    assert!(again.outcome.duplicate);
    assert!(again.records.is_empty());
}
