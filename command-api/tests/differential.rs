//! The differential test of issue 14: two logs that differ only by internal
//! events (notes, an agent's typing and read receipt on them) must look
//! the same to a customer on every path: REST answers, command answers,
//! unread counts, the console's pages, and `/ws` frames including
//! `subscribed` and a resume with `after`. Global positions are replaced by
//! their rank among the positions the customer received, ids and times by
//! placeholders; what is left must be identical.
//!
//! The test also fails when the router gains a route this test does not
//! request: every `.route("…")` in the server's source must be exercised.

mod http_common;

use event_store::both_stores;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http_common::{redact, Backend, Cast, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Longest wait for one WebSocket frame.
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Keys whose numbers are global log positions.
const POSITION_KEYS: [&str; 2] = ["position", "next"];

/// One side of the comparison: a server whose log has (or lacks) the
/// internal events, and the ids the script made.
struct World {
    server: TestServer,
    cast: Cast,
    /// Carol's ticket, which gets the notes.
    ticket: String,
    /// A ticket Carol may not see.
    foreign: String,
    /// Alice's first public comment on `ticket` (a resume point).
    answered_at: u64,
    /// Whether the internal events were added.
    hidden: bool,
}

impl World {
    async fn note(&self, token: &str, body: &str) -> u64 {
        let (s, b) = self
            .server
            .post(
                &format!("/api/v1/tickets/{}/comments", self.ticket),
                token,
                json!({"body": body, "internal": true}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        b["position"].as_u64().expect("position")
    }

    async fn post_ok(&self, path: &str, token: &str, body: Value) -> Value {
        let (s, b) = self.server.post(path, token, body).await;
        assert!(s == 200 || s == 201, "{path}: {s} {b}");
        b
    }
}

/// The same story on a fresh server; with `hidden`, internal notes between
/// every public step and as the log's last event.
async fn build(backend: Backend, hidden: bool) -> World {
    let server = TestServer::start(backend).await;
    let cast = server.cast("demo");
    let ticket = server.create_ticket(&cast.carol.1, "Printer jams").await;
    let foreign = server.create_ticket(&cast.alice.1, "Staff only").await;
    let mut world = World {
        server,
        cast,
        ticket,
        foreign,
        answered_at: 0,
        hidden,
    };
    let (alice, bob) = (world.cast.alice.1.clone(), world.cast.bob.1.clone());
    let t = format!("/api/v1/tickets/{}", world.ticket);
    if hidden {
        world.note(&alice, "first look: toner").await;
    }
    let answered = world
        .post_ok(&format!("{t}/comments"), &alice, json!({"body": "On it"}))
        .await;
    world.answered_at = answered["position"].as_u64().expect("position");
    if hidden {
        world.note(&alice, "customer sounds annoyed").await;
    }
    let bob_id = world.cast.bob.0.id;
    world
        .post_ok(
            &format!("{t}/assign"),
            &alice,
            json!({"assignee_id": bob_id}),
        )
        .await;
    if hidden {
        world.note(&bob, "ordering a part").await;
    }
    world
        .post_ok(
            &format!("{t}/status"),
            &bob,
            json!({"status": "in_progress"}),
        )
        .await;
    world
        .post_ok(
            &format!("{t}/comments"),
            &world.cast.carol.1.clone(),
            json!({"body": "Thanks"}),
        )
        .await;
    if hidden {
        world.note(&alice, "the last event of the log").await;
    }
    world
}

/// What Carol receives, labelled, with the route templates requested.
#[derive(Default)]
struct Observation {
    seen: BTreeMap<String, Value>,
    routes: BTreeSet<String>,
}

impl Observation {
    fn record(&mut self, label: impl Into<String>, value: Value) {
        let label = label.into();
        assert!(
            self.seen.insert(label.clone(), value).is_none(),
            "label {label} twice"
        );
    }

    /// Requests `path` (an instance of `template`) as Carol and records
    /// status, `ETag` and body (JSON, or the text of a page).
    async fn request(
        &mut self,
        world: &World,
        template: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) {
        self.routes.insert(template.to_string());
        let token = Some(world.cast.carol.1.as_str());
        let (status, headers, text) = world
            .server
            .send_text(method.clone(), path, token, body, &[])
            .await;
        let etag = headers.get("etag").map(|v| format!("{v:?}"));
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let seen = json!({"status": status, "etag": etag, "body": body});
        self.record(format!("{method} {path}"), seen);
    }
}

async fn connect(world: &World, token: &str) -> Ws {
    let url = format!("ws://{}/ws?token={}", world.server.addr, token);
    tokio_tungstenite::connect_async(url)
        .await
        .expect("connect")
        .0
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .expect("send frame");
}

async fn next_frame(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(FRAME_TIMEOUT, ws.next())
            .await
            .expect("a frame in time")
            .expect("socket open")
            .expect("frame");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).expect("json frame");
        }
    }
}

/// Frames until `done` holds for one (included); presence frames are left
/// out (they follow who is connected, not the log, and come in rounds).
async fn frames_until(ws: &mut Ws, mut done: impl FnMut(&Value) -> bool) -> Vec<Value> {
    let mut out = vec![];
    loop {
        let f = next_frame(ws).await;
        let last = done(&f);
        if f["type"] != "presence" {
            out.push(f);
        }
        if last {
            return out;
        }
    }
}

/// Sends a ping and returns every frame before the pong: everything the
/// server queued for this socket before it read the ping.
async fn drain(ws: &mut Ws) -> Vec<Value> {
    send(ws, json!({"type": "ping"})).await;
    frames_until(ws, |f| f["type"] == "pong").await
}

/// The live feed as Carol sees it: subscriptions, live events while
/// Alice types and reads a note (hidden side) and posts, then a resume.
async fn observe_feed(world: &World, seen: &mut Observation) {
    seen.routes.insert("/ws".into());
    let carol_id = world.cast.carol.0.id;
    let rooms = [
        format!("ticket:{}", world.ticket),
        "tickets".to_string(),
        format!("user:{carol_id}"),
    ];
    let mut carol = connect(world, &world.cast.carol.1).await;
    for room in &rooms {
        send(&mut carol, json!({"type": "subscribe", "room": room})).await;
    }
    let mut frames = drain(&mut carol).await;

    let mut alice = connect(world, &world.cast.alice.1).await;
    send(&mut alice, json!({"type": "subscribe", "room": rooms[0]})).await;
    drain(&mut alice).await;
    if world.hidden {
        send(
            &mut alice,
            json!({"type": "typing", "room": rooms[0], "typing": true, "internal": true}),
        )
        .await;
        let note = world.note(&world.cast.alice.1, "typed live").await;
        send(
            &mut alice,
            json!({"type": "read", "room": rooms[0], "position": note}),
        )
        .await;
        drain(&mut alice).await;
    }
    let live = world
        .post_ok(
            &format!("/api/v1/tickets/{}/comments", world.ticket),
            &world.cast.alice.1,
            json!({"body": "live hello"}),
        )
        .await;
    let live_at = live["position"].as_u64().expect("position");
    let mut rooms_with_it = 0;
    frames.extend(
        frames_until(&mut carol, |f| {
            if f["type"] == "event" && f["position"] == live_at {
                rooms_with_it += 1;
            }
            rooms_with_it == 2
        })
        .await,
    );
    frames.extend(drain(&mut carol).await);
    seen.record("ws live", Value::Array(frames));

    // A resume from a point before the hidden events.
    let mut again = connect(world, &world.cast.carol.1).await;
    for room in &rooms[..2] {
        send(
            &mut again,
            json!({"type": "subscribe", "room": room, "after": world.answered_at}),
        )
        .await;
    }
    seen.record("ws resume", Value::Array(drain(&mut again).await));
}

/// Every route as Carol (the console's pages included), then her unread
/// counts, then commands she may and may not send.
async fn observe_http(world: &World, seen: &mut Observation) {
    let t = format!("/api/v1/tickets/{}", world.ticket);
    let f = format!("/api/v1/tickets/{}", world.foreign);
    let get = Method::GET;
    let reads: Vec<(&str, String)> = vec![
        ("/healthz", "/healthz".into()),
        ("/metrics", "/metrics".into()),
        ("/api/v1/me", "/api/v1/me".into()),
        ("/api/v1/users", "/api/v1/users".into()),
        ("/api/v1/tickets", "/api/v1/tickets".into()),
        ("/api/v1/tickets", "/api/v1/tickets?limit=1".into()),
        ("/api/v1/tickets/{id}", t.clone()),
        ("/api/v1/tickets/{id}", f.clone()),
        ("/api/v1/tickets/{id}/chat", format!("{t}/chat")),
        ("/api/v1/tickets/{id}/chat", format!("{t}/chat?limit=1")),
        ("/api/v1/tickets/{id}/chat", format!("{f}/chat")),
        ("/api/v1/tickets/{id}/audit", format!("{t}/audit")),
        ("/api/v1/stats", "/api/v1/stats".into()),
        ("/api/v1/events", "/api/v1/events".into()),
        ("/", "/".into()),
        ("/app", "/app".into()),
        ("/app/", "/app/".into()),
        ("/app/login", "/app/login".into()),
        ("/app/tickets", "/app/tickets".into()),
        ("/app/new", "/app/new".into()),
        ("/app/stats", "/app/stats".into()),
        (
            "/app/tickets/{id}",
            format!("/app/tickets/{}", world.ticket),
        ),
        (
            "/app/tickets/{id}/audit",
            format!("/app/tickets/{}/audit", world.ticket),
        ),
        ("/assets/{file}", "/assets/ticket.js".into()),
    ];
    for (template, path) in reads {
        seen.request(world, template, get.clone(), &path, None)
            .await;
    }
    // The chat page after the first item, as the console pages it.
    let first = seen.seen[&format!("GET {t}/chat?limit=1")]["body"]["next"].clone();
    if let Some(next) = first.as_u64() {
        let path = format!("{t}/chat?after={next}");
        seen.request(world, "/api/v1/tickets/{id}/chat", get.clone(), &path, None)
            .await;
        // The label must not carry the position itself.
        let answer = seen.seen.remove(&format!("GET {path}")).expect("recorded");
        seen.record("GET chat after the first page", answer);
    }

    let carol = &world.cast.carol.0;
    let principal = event_store::Principal {
        user_id: carol.id,
        tenant: carol.tenant.clone(),
        role: carol.role,
        name: carol.name.clone(),
    };
    let unread = world.server.state.projections().unread(&principal);
    seen.record("unread", serde_json::to_value(unread).expect("json"));

    let post = Method::POST;
    let dispatch = uuid::Uuid::from_u128(7);
    let commands: Vec<(&str, Method, String, Value)> = vec![
        (
            "/api/v1/tickets/{id}",
            Method::PATCH,
            t.clone(),
            json!({"title": "x"}),
        ),
        (
            "/api/v1/tickets/{id}/assign",
            post.clone(),
            format!("{t}/assign"),
            json!({"assignee_id": carol.id}),
        ),
        (
            "/api/v1/tickets/{id}/status",
            post.clone(),
            format!("{t}/status"),
            json!({"status": "closed"}),
        ),
        (
            "/api/v1/tickets/{id}/dispatches",
            post.clone(),
            format!("{t}/dispatches"),
            json!({}),
        ),
        (
            "/api/v1/dispatches/{id}/accept",
            post.clone(),
            format!("/api/v1/dispatches/{dispatch}/accept"),
            json!({}),
        ),
        (
            "/api/v1/dispatches/{id}/decline",
            post.clone(),
            format!("/api/v1/dispatches/{dispatch}/decline"),
            json!({}),
        ),
        (
            "/api/v1/dispatches/{id}/status",
            post.clone(),
            format!("/api/v1/dispatches/{dispatch}/status"),
            json!({"status": "en_route"}),
        ),
        (
            "/api/v1/technicians/me/location",
            post.clone(),
            "/api/v1/technicians/me/location".into(),
            json!({"lat": 1.0, "lon": 2.0}),
        ),
        (
            "/api/v1/tickets/{id}/comments",
            post.clone(),
            format!("{f}/comments"),
            json!({"body": "hi"}),
        ),
        (
            "/api/v1/tickets/{id}/comments",
            post.clone(),
            format!("{t}/comments"),
            json!({"body": "Any news?"}),
        ),
        (
            "/api/v1/tickets",
            post.clone(),
            "/api/v1/tickets".into(),
            json!({"title": "Second", "description": "d", "priority": "low", "kind": "question"}),
        ),
        (
            "/api/v1/auth/token",
            post.clone(),
            "/api/v1/auth/token".into(),
            json!({"tenant": "demo", "username": "carol", "password": "wrong"}),
        ),
    ];
    for (template, method, path, body) in commands {
        seen.request(world, template, method, &path, Some(body))
            .await;
    }
    // An If-Match from one who is shown no versions is refused.
    seen.routes.insert("/api/v1/tickets/{id}/comments".into());
    let (s, _, b) = world
        .server
        .send(
            Method::POST,
            &format!("{t}/comments"),
            Some(&world.cast.carol.1),
            Some(json!({"body": "with a version"})),
            &[("If-Match", "\"3\"")],
        )
        .await;
    seen.record("if-match", json!({"status": s, "body": b}));
    // A wrong current password changes nothing; signing out comes last.
    let wrong = json!({"current": "not it", "new": "a long new password"});
    seen.request(
        world,
        "/api/v1/me/password",
        Method::POST,
        "/api/v1/me/password",
        Some(wrong),
    )
    .await;
    seen.request(
        world,
        "/api/v1/auth/logout",
        Method::POST,
        "/api/v1/auth/logout",
        None,
    )
    .await;
    seen.request(
        world,
        "/api/v1/me",
        Method::GET,
        "/api/v1/me?after=logout",
        None,
    )
    .await;
}

async fn observe(world: &World) -> Observation {
    let mut seen = Observation::default();
    observe_feed(world, &mut seen).await;
    observe_http(world, &mut seen).await;
    seen
}

/// Every number under a position key, in `value`.
fn positions(value: &Value, out: &mut BTreeSet<u64>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v.as_u64() {
                    Some(p) if POSITION_KEYS.contains(&k.as_str()) => {
                        out.insert(p);
                    }
                    _ => positions(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| positions(v, out)),
        _ => {}
    }
}

fn ranked(value: &Value, rank: &BTreeMap<u64, usize>) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match v.as_u64() {
                        Some(p) if POSITION_KEYS.contains(&k.as_str()) => json!(rank[&p]),
                        _ => ranked(v, rank),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| ranked(v, rank)).collect()),
        other => other.clone(),
    }
}

/// Ids, times and positions replaced as the module says (the world's own
/// ids by their role, wherever they occur, even inside a string).
fn normalized(world: &World, seen: &Observation) -> Value {
    let mut text = serde_json::to_string(&seen.seen).expect("json");
    for (id, name) in [
        (world.ticket.clone(), "T"),
        (world.foreign.clone(), "F"),
        (world.cast.carol.0.id.to_string(), "CAROL"),
    ] {
        text = text.replace(&id, name);
    }
    let all: Value = serde_json::from_str(&text).expect("json");
    let mut found = BTreeSet::new();
    positions(&all, &mut found);
    found.insert(0);
    let rank: BTreeMap<u64, usize> = found.into_iter().enumerate().map(|(i, p)| (p, i)).collect();
    redact(&ranked(&all, &rank))
}

/// The route templates in the server's source (`.route("…"`), API, console
/// and live feed.
fn routes_in_source() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root");
    let mut files = vec![];
    for dir in ["command-api/src", "live-feed/src"] {
        collect_rs(&root.join(dir), &mut files);
    }
    let mut routes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        for piece in text.split(".route(").skip(1) {
            let piece = piece.trim_start();
            if let Some(rest) = piece.strip_prefix('"') {
                if let Some(end) = rest.find('"') {
                    routes.insert(rest[..end].to_string());
                }
            }
        }
    }
    routes
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The ticket's version as an agent is shown it.
async fn staff_version(w: &World) -> Value {
    let path = format!("/api/v1/tickets/{}", w.ticket);
    w.server.get(&path, &w.cast.alice.1).await.1["version"].clone()
}

both_stores!(
    a_customer_cannot_tell_logs_that_differ_by_internal_events,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn a_customer_cannot_tell_logs_that_differ_by_internal_events(backend: Backend) {
    let plain = build(backend, false).await;
    let noted = build(backend, true).await;
    // The logs do differ, and staff can tell.
    assert!(noted.server.head().await > plain.server.head().await);
    assert_ne!(staff_version(&plain).await, staff_version(&noted).await);

    let a = observe(&plain).await;
    let b = observe(&noted).await;
    assert!(
        a.seen["ws live"].to_string().contains("live hello"),
        "the live comment reached the customer"
    );
    let (a_json, b_json) = (normalized(&plain, &a), normalized(&noted, &b));
    // For a failing run: both sides in full, to `diff` them.
    if let Ok(dir) = std::env::var("DIFFERENTIAL_DUMP_DIR") {
        for (name, v) in [("plain", &a_json), ("noted", &b_json)] {
            let text = serde_json::to_string_pretty(v).expect("json");
            std::fs::write(Path::new(&dir).join(format!("{name}.json")), text).expect("dump");
        }
    }
    for (label, left) in a_json.as_object().expect("object") {
        assert_eq!(
            Some(left),
            b_json.get(label),
            "{label} differs for the customer"
        );
    }
    assert_eq!(a_json, b_json);

    // Every route of the router was requested.
    assert_eq!(
        a.routes,
        routes_in_source(),
        "a route is not covered by the differential test (or a covered one is gone)"
    );
    plain.server.stop().await;
    noted.server.stop().await;
}
