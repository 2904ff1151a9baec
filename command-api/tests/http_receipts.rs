//! Read receipts over `/ws`, end to end: they live in the reader's own
//! stream, never change a ticket's version, name only unread positions of
//! the room the reader may see, are stored coalesced, and receipts already
//! in older logs (in ticket streams) still count.

mod http_common;

use event_store::both_stores;
use std::time::Duration;

use event_store::{
    reader_stream_id, Actor, AppendRequest, EventPayload, ExpectedVersion, NewEvent, RecordedEvent,
};
use futures::{SinkExt, StreamExt};
use http_common::{Backend, TestServer};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// How long any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client subscribed to one ticket room.
struct Reader {
    ws: Socket,
    room: String,
}

impl Reader {
    async fn join(server: &TestServer, token: &str, ticket: &str) -> Reader {
        let url = format!("ws://{}/ws?token={token}", server.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        let mut reader = Reader {
            ws,
            room: format!("ticket:{ticket}"),
        };
        let room = reader.room.clone();
        reader
            .send(json!({"type": "subscribe", "room": room}))
            .await;
        reader.next_of(&["subscribed"]).await;
        reader
    }

    async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .await
            .expect("send");
    }

    /// Sends a read frame and returns the answer: the room's `read` frame
    /// (the reader gets its own) or an `error`.
    async fn read(&mut self, position: u64) -> Value {
        let room = self.room.clone();
        self.send(json!({"type": "read", "room": room, "position": position}))
            .await;
        self.next_of(&["read", "error"]).await
    }

    /// The next frame whose type is one of `kinds`, skipping the others.
    async fn next_of(&mut self, kinds: &[&str]) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("open")
                .expect("frame");
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).expect("json");
                if kinds.iter().any(|k| v["type"] == *k) {
                    return v;
                }
            }
        }
    }
}

/// A server storing at most one receipt per reader and ticket per
/// `interval`, its users, and a ticket carol reported.
struct Scene {
    server: TestServer,
    cast: http_common::Cast,
    ticket: String,
}

impl Scene {
    async fn new(backend: Backend, interval: Duration) -> Scene {
        let options = command_api::http::HttpOptions {
            receipt_store_interval: interval,
            ..command_api::http::HttpOptions::default()
        };
        let server = TestServer::start_with(backend, options).await;
        let cast = server.cast("demo");
        let ticket = server.create_ticket(&cast.carol.1, "reading").await;
        Scene {
            server,
            cast,
            ticket,
        }
    }

    fn carol(&self) -> &str {
        &self.cast.carol.1
    }

    fn alice(&self) -> &str {
        &self.cast.alice.1
    }

    /// `n` public comments of alice's on the ticket; their positions.
    async fn comments(&self, n: usize) -> Vec<u64> {
        let mut positions = Vec::new();
        for i in 0..n {
            let body = format!("m{i}");
            positions.push(comment(&self.server, self.alice(), &self.ticket, &body, false).await);
        }
        positions
    }

    /// carol, in the ticket's room.
    async fn carol_reads(&self) -> Reader {
        Reader::join(&self.server, self.carol(), &self.ticket).await
    }
}

/// Posts a comment; returns its position.
async fn comment(
    server: &TestServer,
    token: &str,
    ticket: &str,
    body: &str,
    internal: bool,
) -> u64 {
    let (s, v) = server
        .post(
            &format!("/api/v1/tickets/{ticket}/comments"),
            token,
            json!({"body": body, "internal": internal}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["position"].as_u64().expect("position")
}

/// The ticket's JSON as `token` sees it.
async fn ticket_json(server: &TestServer, token: &str, ticket: &str) -> Value {
    let (s, v) = server
        .get(&format!("/api/v1/tickets/{ticket}"), token)
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

/// Waits until `token`'s chat of `ticket` says it read up to `position`;
/// returns the chat page.
async fn read_up_to(server: &TestServer, token: &str, ticket: &str, position: u64) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (s, page) = server
            .get(&format!("/api/v1/tickets/{ticket}/chat"), token)
            .await;
        assert_eq!(s, 200, "{page}");
        if page["last_read"] == json!(position) {
            return page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "last_read never reached {position}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every event of `user`'s reader stream in tenant `demo`.
async fn reader_stream(server: &TestServer, user: Uuid) -> Vec<RecordedEvent> {
    server
        .store
        .read_stream(reader_stream_id("demo", user), 1, 1000)
        .await
        .expect("read")
}

fn stored_positions(events: &[RecordedEvent]) -> Vec<u64> {
    events
        .iter()
        .map(|e| match &e.payload {
            EventPayload::ConversationRead { position, .. } => *position,
            other => panic!("not a receipt: {other:?}"),
        })
        .collect()
}

both_stores!(a_customers_read_frames_leave_the_ticket_and_agents_writes_alone);
async fn a_customers_read_frames_leave_the_ticket_and_agents_writes_alone(backend: Backend) {
    let scene = Scene::new(backend, Duration::from_millis(200)).await;
    let (server, ticket) = (&scene.server, &scene.ticket);
    let positions = scene.comments(10).await;
    let before = ticket_json(server, scene.alice(), ticket).await;
    let carol_before = ticket_json(server, scene.carol(), ticket).await;

    let mut reader = scene.carol_reads().await;
    for p in &positions {
        let answer = reader.read(*p).await;
        assert_eq!(
            (&answer["type"], &answer["position"]),
            (&json!("read"), &json!(p))
        );
    }
    let last = *positions.last().expect("ten");
    let page = read_up_to(server, scene.carol(), ticket, last).await;
    assert_eq!(page["unread"], 0);

    assert_eq!(ticket_json(server, scene.alice(), ticket).await, before);
    assert_eq!(
        ticket_json(server, scene.carol(), ticket).await,
        carol_before
    );
    let version = before["version"].as_u64().expect("version").to_string();
    let (s, _, v) = server
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/tickets/{ticket}"),
            Some(scene.alice()),
            Some(json!({"title": "still mine to edit"})),
            &[("If-Match", &format!("\"{version}\""))],
        )
        .await;
    assert_eq!(s, 200, "the agent's If-Match still holds: {v}");
    let in_ticket = server
        .store
        .read_stream(ticket.parse().expect("uuid"), 1, 1000)
        .await
        .expect("read");
    assert!(in_ticket
        .iter()
        .all(|e| !matches!(e.payload, EventPayload::ReadReceiptRecorded { .. })));
    scene.server.stop().await;
}

both_stores!(a_receipt_names_an_unread_position_of_the_room_or_gets_one_answer);
async fn a_receipt_names_an_unread_position_of_the_room_or_gets_one_answer(backend: Backend) {
    let scene = Scene::new(backend, Duration::from_millis(200)).await;
    let (server, ticket, alice) = (&scene.server, &scene.ticket, scene.alice());
    let other = server.create_ticket(alice, "not carol's").await;
    let first = comment(server, alice, ticket, "one", false).await;
    let note = comment(server, alice, ticket, "staff only", true).await;
    let elsewhere = comment(server, alice, &other, "elsewhere", false).await;
    let second = comment(server, alice, ticket, "two", false).await;

    let mut reader = scene.carol_reads().await;
    assert_eq!(reader.read(second).await["type"], "read");
    let refused = [
        ("another ticket's", elsewhere),
        ("an internal note's", note),
        ("behind the last", first),
        ("the last again", second),
        ("beyond the log", server.head().await + 1_000),
        ("zero", 0),
    ];
    let mut answers = Vec::new();
    for (what, position) in refused {
        let answer = reader.read(position).await;
        assert_eq!(answer["code"], "bad_request", "{what}: {answer}");
        answers.push(answer);
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "refused alike: {answers:?}"
    );
    // Staff may name the note.
    let mut agent = Reader::join(server, alice, ticket).await;
    assert_eq!(agent.read(note).await["position"], note);
    scene.server.stop().await;
}

both_stores!(receipts_are_stored_once_per_interval_and_the_latest_counts);
async fn receipts_are_stored_once_per_interval_and_the_latest_counts(backend: Backend) {
    let interval = Duration::from_millis(400);
    let scene = Scene::new(backend, interval).await;
    let positions = scene.comments(4).await;
    let mut reader = scene.carol_reads().await;
    for p in &positions {
        assert_eq!(reader.read(*p).await["type"], "read");
    }
    let last = *positions.last().expect("four");
    let page = read_up_to(&scene.server, scene.carol(), &scene.ticket, last).await;
    assert_eq!(page["unread"], 0);
    let stored = reader_stream(&scene.server, scene.cast.carol.0.id).await;
    assert_eq!(stored_positions(&stored), vec![positions[0], last]);
    let apart = stored[1].recorded_at - stored[0].recorded_at;
    assert!(
        apart.to_std().expect("ordered") >= interval,
        "stored {apart} apart"
    );
    scene.server.stop().await;
}

both_stores!(a_receipt_waiting_for_its_interval_is_stored_on_shutdown);
async fn a_receipt_waiting_for_its_interval_is_stored_on_shutdown(backend: Backend) {
    let scene = Scene::new(backend, Duration::from_secs(3600)).await;
    let positions = scene.comments(2).await;
    let mut reader = scene.carol_reads().await;
    for p in &positions {
        assert_eq!(reader.read(*p).await["type"], "read");
    }
    let user = scene.cast.carol.0.id;
    let stored = reader_stream(&scene.server, user).await;
    assert_eq!(stored_positions(&stored), positions[..1]);
    scene.server.state.shutdown().await;
    let stored = reader_stream(&scene.server, user).await;
    assert_eq!(stored_positions(&stored), positions);
}

both_stores!(receipts_of_an_older_log_in_the_ticket_stream_still_count);
async fn receipts_of_an_older_log_in_the_ticket_stream_still_count(backend: Backend) {
    let scene = Scene::new(backend, Duration::from_millis(200)).await;
    let (server, ticket, carol) = (&scene.server, &scene.ticket, scene.carol());
    let [first, second, third] = scene.comments(3).await[..] else {
        panic!("three comments");
    };
    // As an older build recorded it: in the ticket's own stream.
    let carol_id = scene.cast.carol.0.id;
    server
        .store
        .append(AppendRequest {
            stream_id: ticket.parse().expect("uuid"),
            expected: ExpectedVersion::Any,
            events: vec![NewEvent::new(EventPayload::ReadReceiptRecorded {
                user: carol_id,
                position: second,
            })],
            command_id: Uuid::now_v7(),
            request_fingerprint: None,
            correlation_id: Uuid::now_v7(),
            tenant: "demo".into(),
            actor: Actor {
                user_id: carol_id,
                role: event_store::Role::Customer,
            },
            recorded_at: chrono::Utc::now(),
        })
        .await
        .expect("legacy receipt");
    let page = read_up_to(server, carol, ticket, second).await;
    assert_eq!(page["unread"], 1);

    // The old receipt is the reader's last: behind it is refused.
    let mut reader = scene.carol_reads().await;
    assert_eq!(reader.read(first).await["code"], "bad_request");
    assert_eq!(reader.read(third).await["type"], "read");
    let page = read_up_to(server, carol, ticket, third).await;
    assert_eq!(page["unread"], 0);
    scene.server.stop().await;
}
