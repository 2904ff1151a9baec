//! Resuming with `after`: exactly the missed events, no gap, no duplicate.

mod common;

use event_store::both_stores;
use std::collections::HashSet;

use common::{positions, Backend, Harness};
use serde_json::json;

both_stores!(resume_after_forced_disconnect_gets_exactly_the_missed_events);
async fn resume_after_forced_disconnect_gets_exactly_the_missed_events(backend: Backend) {
    let h = Harness::start(backend).await;
    let ticket = h.ticket(&h.customer).await;
    let room = format!("ticket:{ticket}");
    let mut first = h.connect("customer").await;
    first.subscribe(&room, None).await;
    let seen = h.comment(ticket, &h.agent, "one", false).await;
    assert_eq!(first.next_of("event").await["position"], seen);
    drop(first); // no close frame: the connection just breaks

    let mut missed = Vec::new();
    for i in 0..3 {
        missed.push(
            h.comment(ticket, &h.agent, &format!("missed {i}"), false)
                .await,
        );
    }
    h.comment(ticket, &h.agent, "internal, never for the customer", true)
        .await;
    let other = h.ticket(&h.customer).await;
    h.comment(other, &h.agent, "another ticket", false).await;

    let mut again = h.connect("customer").await;
    let sub = again.subscribe(&room, Some(seen)).await;
    assert_eq!(sub["type"], "subscribed");
    assert!(sub["position"].as_u64().expect("head") >= *missed.last().expect("missed"));
    let replayed = again.events_until_pong().await;
    assert_eq!(positions(&replayed), missed);

    let live = h.comment(ticket, &h.agent, "live again", false).await;
    h.fanned_out(live).await;
    assert_eq!(positions(&again.events_until_pong().await), vec![live]);
}

both_stores!(resume_ahead_of_the_feed_skips_what_the_client_has);
async fn resume_ahead_of_the_feed_skips_what_the_client_has(backend: Backend) {
    let h = Harness::start(backend).await;
    let ticket = h.ticket(&h.customer).await;
    let mut c = h.connect("customer").await;
    let head = h.feed.position();
    let sub = c
        .subscribe(&format!("ticket:{ticket}"), Some(head + 1))
        .await;
    assert_eq!(sub["type"], "subscribed");
    let skipped = h
        .comment(ticket, &h.agent, "client claims to have this", false)
        .await;
    assert_eq!(skipped, head + 1);
    let next = h.comment(ticket, &h.agent, "new", false).await;
    h.fanned_out(next).await;
    assert_eq!(positions(&c.events_until_pong().await), vec![next]);
}

both_stores!(
    seam_has_no_gap_and_no_duplicate_under_concurrent_appends,
    flavor = "multi_thread",
    worker_threads = 2
);
/// Appends run while clients join with `after` at different points: every
/// client gets each visible event of the room once, in order.
async fn seam_has_no_gap_and_no_duplicate_under_concurrent_appends(backend: Backend) {
    let h = std::sync::Arc::new(Harness::start(backend).await);
    let ticket = h.ticket(&h.customer).await;
    let room = format!("ticket:{ticket}");
    const EVENTS: usize = 300;
    const CLIENTS: usize = 8;

    let writer = {
        let h = h.clone();
        tokio::spawn(async move {
            let mut last = 0;
            for i in 0..EVENTS {
                last = h
                    .comment(ticket, &h.agent, &format!("c{i}"), i % 5 == 0)
                    .await;
            }
            last
        })
    };
    let mut readers = Vec::new();
    for k in 0..CLIENTS {
        let h = h.clone();
        let room = room.clone();
        readers.push(tokio::spawn(async move {
            // Join at whatever the feed has reached by now, with a margin back.
            tokio::task::yield_now().await;
            let after = h.feed.position().saturating_sub((k as u64) * 7);
            let mut c = h.connect("customer").await;
            c.send(json!({"type": "subscribe", "room": room, "after": after}))
                .await;
            (after, c)
        }));
    }
    let last = writer.await.expect("writer");
    // The full room as the customer may see it, from the log.
    let all = h.store_positions(ticket).await;
    for r in readers {
        let (after, mut c) = r.await.expect("reader");
        assert_eq!(c.next_main().await["type"], "subscribed");
        let mut got = Vec::new();
        while got.last().copied() != Some(last) {
            let v = c.next_main().await;
            if v["type"] == "event" {
                got.push(v["position"].as_u64().expect("position"));
            }
        }
        let expected: Vec<u64> = all.iter().copied().filter(|p| *p > after).collect();
        assert_eq!(got, expected, "client that resumed after {after}");
        assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len());
    }
}

impl Harness {
    /// Positions of the ticket's events a customer may see (public ones).
    async fn store_positions(&self, ticket: uuid::Uuid) -> Vec<u64> {
        use event_store::Visibility;
        let events = self.store.read_stream(ticket, 1, 1000).await.expect("read");
        events
            .iter()
            .filter(|e| e.visibility == Visibility::Public)
            .map(|e| e.position)
            .collect()
    }
}
