//! Subscriptions: catch-up to live without gap or duplicate, and explicit lag.

mod common;

use std::time::Duration;

use common::*;
use event_store::{ExpectedVersion, StoreError};
use futures::StreamExt;
use uuid::Uuid;

const WRITERS: usize = 4;
const APPENDS_PER_WRITER: usize = 150;

both_stores!(
    catch_up_turns_live_without_gap_or_duplicate_under_concurrent_writes,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn catch_up_turns_live_without_gap_or_duplicate_under_concurrent_writes(backend: Backend) {
    let fx = backend.fresh().await;
    let store = fx.store.clone();
    // Some history first, so subscribers really catch up.
    let seed = Uuid::now_v7();
    store
        .append(request(seed, ExpectedVersion::NoStream, vec![created(0)]))
        .await
        .expect("seed");
    for _ in 0..30 {
        let events = (0..40).map(|_| comment("history")).collect();
        store
            .append(request(seed, ExpectedVersion::Any, events))
            .await
            .expect("history");
    }
    let history = store.head().await.expect("head");
    // Each writer appends 1 + APPENDS_PER_WRITER - 1 single events.
    let total = history + (WRITERS * APPENDS_PER_WRITER) as u64;

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let stream = Uuid::now_v7();
            for i in 0..APPENDS_PER_WRITER {
                let payload = if i == 0 {
                    created(w as u64)
                } else {
                    comment("live")
                };
                store
                    .append(request(
                        stream,
                        ExpectedVersion::Exact(i as u64),
                        vec![payload],
                    ))
                    .await
                    .expect("append");
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    // Subscribers join at different moments and from different positions.
    let mut subscribers = Vec::new();
    for (k, from) in [1u64, 1, 500, 1_000, 1_190, 1, 700, 2]
        .into_iter()
        .enumerate()
    {
        let store = store.clone();
        subscribers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(3 * k as u64)).await;
            let mut sub = store.subscribe(from);
            let mut expected = from;
            while expected <= total {
                let item = tokio::time::timeout(Duration::from_secs(20), sub.next())
                    .await
                    .expect("subscriber not stuck")
                    .expect("stream continues")
                    .expect("no error");
                assert_eq!(
                    item.position, expected,
                    "subscriber from {from}: gap or duplicate"
                );
                expected += 1;
            }
            from
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    for s in subscribers {
        s.await.expect("subscriber saw every event exactly once");
    }
    assert_eq!(store.head().await.expect("head"), total);
}

both_stores!(
    a_subscriber_that_falls_behind_is_told_where_to_resume,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn a_subscriber_that_falls_behind_is_told_where_to_resume(backend: Backend) {
    let fx = backend
        .fresh_with(Settings {
            subscriber_buffer_events: 16,
        })
        .await;
    let store = fx.store.clone();
    let ticket = Uuid::now_v7();
    let mut slow = store.subscribe(1);
    let mut fast = store.subscribe(1);
    // The slow subscriber is live (waiting on the broadcast) when the first
    // event arrives: join! polls `slow.next()` first.
    let (first, created) = tokio::join!(
        slow.next(),
        store.append(request(ticket, ExpectedVersion::NoStream, vec![created(1)]))
    );
    created.expect("create");
    assert_eq!(first.expect("item").expect("event").position, 1);

    // The fast subscriber keeps up while the slow one is not polled: the
    // writer waits for it after each append (on a loaded machine a free
    // running reader could lag too, which is not what this test is about).
    let e = fast.next().await.expect("item").expect("fast never lags");
    assert_eq!(e.position, 1);
    for n in 2..=101 {
        post_comments(store.as_ref(), ticket, 1, "flood").await;
        let e = fast.next().await.expect("item").expect("fast never lags");
        assert_eq!(e.position, n);
    }

    match slow.next().await {
        Some(Err(StoreError::Lagged { resume_from })) => assert_eq!(resume_from, 2),
        other => panic!("expected Lagged, got {other:?}"),
    }
    assert!(slow.next().await.is_none(), "the stream ends after Lagged");

    // Resuming from the reported position delivers the rest.
    let mut resumed = store.subscribe(2);
    for expected in 2..=101 {
        let e = resumed.next().await.expect("item").expect("event");
        assert_eq!(e.position, expected);
    }
}

both_stores!(
    a_long_catch_up_is_not_a_lag,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn a_long_catch_up_is_not_a_lag(backend: Backend) {
    let fx = backend
        .fresh_with(Settings {
            subscriber_buffer_events: 8,
        })
        .await;
    let store = fx.store.clone();
    // Subscribed, but not polled while many events arrive.
    let mut sub = store.subscribe(1);
    let ticket = create_ticket(store.as_ref(), 1).await;
    post_comments(store.as_ref(), ticket, 50, "while away").await;
    for expected in 1..=51 {
        let e = sub
            .next()
            .await
            .expect("item")
            .expect("no lag: the log has it all");
        assert_eq!(e.position, expected);
    }
}

both_stores!(subscriptions_end_when_the_store_closes);
async fn subscriptions_end_when_the_store_closes(backend: Backend) {
    let fx = backend.fresh().await;
    let store = fx.store.clone();
    let mut sub = store.subscribe(1);
    let ticket = create_ticket(store.as_ref(), 1).await;
    assert_eq!(sub.next().await.expect("item").expect("event").position, 1);
    store.close().await.expect("close");
    assert!(matches!(sub.next().await, Some(Err(StoreError::Closed))));
    assert!(sub.next().await.is_none());
    let err = store
        .append(request(ticket, ExpectedVersion::Any, vec![comment("late")]))
        .await
        .expect_err("closed");
    assert!(matches!(err, StoreError::Closed));
}
