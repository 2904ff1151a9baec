//! Limits: slow clients, oversized and garbage frames, rates, dead peers.

mod common;

use event_store::both_stores;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{comment, wait_until, Backend, Frame, Harness};
use futures::SinkExt;
use live_feed::limits::{CLIENT_FRAMES_BURST, CLIENT_FRAME_BYTES_MAX};
use live_feed::FeedConfig;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

both_stores!(
    a_client_that_stops_reading_is_closed_with_4008_and_others_keep_up,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn a_client_that_stops_reading_is_closed_with_4008_and_others_keep_up(backend: Backend) {
    let h = Harness::start_with(
        backend,
        FeedConfig {
            outbound_queue_frames: 16,
            ..FeedConfig::default()
        },
    )
    .await;
    let ticket = h.ticket(&h.customer).await;
    let room = format!("ticket:{ticket}");
    let mut slow = h.connect("customer").await;
    slow.subscribe(&room, None).await;
    let mut fast = h.connect("agent").await;
    fast.subscribe(&room, None).await;

    let received = Arc::new(AtomicU64::new(0));
    let fast_reader = {
        let received = received.clone();
        tokio::spawn(async move {
            loop {
                match fast.next().await {
                    Frame::Json(v) if v["type"] == "event" => {
                        received.store(v["position"].as_u64().expect("position"), Ordering::Release)
                    }
                    Frame::Json(_) => {}
                    other => return other,
                }
            }
        })
    };

    // Large comments fill the socket buffers quickly; the slow client never
    // reads. Batches stay below the queue so the fast client never overflows.
    let body = "x".repeat(7 * 1024);
    let mut last = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while h.feed.stats().slow_closed_total == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "slow client never closed"
        );
        let batch = (0..8).map(|_| comment(&body, false)).collect();
        last = h.append(ticket, &h.agent, batch).await.position;
        // The fast client keeps up with every batch.
        wait_until("fast client keeps up", || {
            received.load(Ordering::Acquire) >= last
        })
        .await;
    }
    let after = h
        .comment(ticket, &h.agent, "after the slow one left", false)
        .await;
    wait_until("fast client still receives", || {
        received.load(Ordering::Acquire) >= after
    })
    .await;
    assert!(
        !fast_reader.is_finished(),
        "the fast client was not disturbed"
    );

    // The slow client finds the close frame after what it had not read.
    let mut seen = 0;
    let code = loop {
        match slow.next().await {
            Frame::Json(v) => {
                if v["type"] == "event" {
                    let p = v["position"].as_u64().expect("position");
                    assert!(p > seen, "positions increase");
                    seen = p;
                }
            }
            Frame::Close(code) => break code,
            Frame::Ended => break None,
        }
    };
    assert_eq!(code, Some(4008));
    assert!(seen < after);
    // It resumes with `after` and gets everything it missed.
    let mut resumed = h.connect("customer").await;
    resumed.subscribe(&room, Some(seen)).await;
    let rest = resumed.events_until_pong().await;
    assert_eq!(
        rest.first().map(|e| e["position"].as_u64()),
        Some(Some(seen + 1))
    );
    assert_eq!(
        rest.last().map(|e| e["position"].as_u64()),
        Some(Some(after))
    );
    assert!(last < after);
}

both_stores!(an_oversized_frame_closes_with_1009);
async fn an_oversized_frame_closes_with_1009(backend: Backend) {
    let h = Harness::start(backend).await;
    let mut c = h.connect("customer").await;
    // Exactly at the limit is fine.
    let pad = "p".repeat(CLIENT_FRAME_BYTES_MAX - r#"{"type":"ping","pad":""}"#.len());
    let at_limit = json!({"type": "ping", "pad": pad}).to_string();
    assert_eq!(at_limit.len(), CLIENT_FRAME_BYTES_MAX);
    c.send_raw(Message::text(at_limit)).await;
    assert_eq!(c.next_main().await["type"], "pong");

    c.send_raw(Message::text("x".repeat(CLIENT_FRAME_BYTES_MAX + 1)))
        .await;
    assert_eq!(c.close_code().await, Some(1009));

    let mut b = h.connect("customer").await;
    b.send_raw(Message::binary(vec![0u8; 64 * 1024])).await;
    assert_eq!(b.close_code().await, Some(1009));
}

both_stores!(garbage_frames_get_an_error_and_the_connection_survives);
async fn garbage_frames_get_an_error_and_the_connection_survives(backend: Backend) {
    let h = Harness::start(backend).await;
    let mut c = h.connect("customer").await;
    for garbage in [
        Message::text("{not json"),
        Message::text(r#"{"type":"shout","room":"tickets"}"#),
        Message::text(r#"{"type":"subscribe"}"#),
        Message::text(r#"{"type":"subscribe","room":"ticket:42"}"#),
        Message::text(r#"{"type":"unsubscribe","room":"tickets"}"#),
        Message::text(r#"{"type":"read","room":"tickets","position":3}"#),
        Message::text("[]"),
        Message::binary(vec![1u8, 2, 3]),
    ] {
        c.send_raw(garbage.clone()).await;
        let answer = c.next_main().await;
        assert_eq!(answer["type"], "error", "{garbage:?}");
        assert_eq!(answer["code"], "bad_request", "{garbage:?}");
        assert!(answer["message"].is_string());
    }
    assert!(c.events_until_pong().await.is_empty());
}

both_stores!(flooding_frames_closes_with_4008);
async fn flooding_frames_closes_with_4008(backend: Backend) {
    let h = Harness::start(backend).await;
    let mut c = h.connect("customer").await;
    for _ in 0..(CLIENT_FRAMES_BURST * 3) {
        if c.ws
            .send(Message::text(r#"{"type":"ping"}"#))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(c.close_code().await, Some(4008));
}

both_stores!(a_peer_that_misses_two_pongs_is_dropped_and_a_reading_one_is_not);
async fn a_peer_that_misses_two_pongs_is_dropped_and_a_reading_one_is_not(backend: Backend) {
    let h = Harness::start_with(
        backend,
        FeedConfig {
            ping_interval: Duration::from_millis(100),
            ..FeedConfig::default()
        },
    )
    .await;
    // tungstenite answers pings only while the application reads.
    let mut reading = h.connect("agent").await;
    let silent = h.connect("customer").await;
    wait_until("both connected", || h.feed.stats().connections_open == 2).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let alive = {
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let _ =
                    tokio::time::timeout(Duration::from_millis(20), reading.ws.next_frame()).await;
            }
            reading
        })
    };
    wait_until("silent peer dropped", || {
        h.feed.stats().connections_open == 1
    })
    .await;
    // Several ping intervals have passed: the reading peer answered them all.
    stop.store(true, Ordering::Release);
    let mut reading = alive.await.expect("reader");
    assert!(
        reading.events_until_pong().await.is_empty(),
        "reading peer still connected"
    );
    drop(silent);
}

trait NextFrame {
    async fn next_frame(&mut self) -> Option<Message>;
}

impl NextFrame
    for tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
{
    async fn next_frame(&mut self) -> Option<Message> {
        use futures::StreamExt;
        self.next().await.and_then(Result::ok)
    }
}
