//! The server on PostgreSQL when the database misbehaves, seen from the
//! outside (issue 16): `ticketlog serve --database-url` answers commands
//! 503 `store_unavailable` and appends nothing while its database is
//! stopped, and recovers by itself once it is back (commands, projections
//! and the live feed); and two servers on one database share the signing
//! secret and the log.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_store::testing::postgres::PgServer;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{get_ok, healthy_head, login, serve, stop, ticketlog_ok, ServerChild};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

const TENANT: &str = "faults";
const ADMIN: &str = "root";
const PASSWORD: &str = "postgres-faults-password";
/// Longest a test waits for something that should happen soon.
const WAIT: Duration = Duration::from_secs(20);
/// Pause between two polls of a condition.
const POLL: Duration = Duration::from_millis(20);
/// Commands tried while the database is stopped.
const COMMANDS_WHILE_AWAY: usize = 3;

/// Adds the admin to the database at `url` (`data`: node-local files).
fn add_admin(url: &str, data: &Path) {
    ticketlog_ok(
        &[
            "user",
            "add",
            "--tenant",
            TENANT,
            "--name",
            ADMIN,
            "--role",
            "admin",
            "--password",
            PASSWORD,
            "--database-url",
            url,
        ],
        data,
    );
}

/// POSTs `body` to `path` with `key`; returns the status and JSON answer
/// (`None` when the server did not answer at all).
async fn post(
    client: &reqwest::Client,
    server: &ServerChild,
    token: &str,
    key: Uuid,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let r = client
        .post(server.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key.to_string())
        .json(body)
        .send()
        .await
        .expect("the server answers");
    let status = r.status();
    (status, r.json().await.expect("a JSON answer"))
}

/// POSTs until a 2xx (retrying 503 with the same key); the answer.
async fn post_until_accepted(
    client: &reqwest::Client,
    server: &ServerChild,
    token: &str,
    key: Uuid,
    path: &str,
    body: &Value,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, v) = post(client, server, token, key, path, body).await;
        if status.is_success() {
            return v;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "POST {path}: {v}");
        assert!(Instant::now() < deadline, "never accepted again: {v}");
        tokio::time::sleep(POLL).await;
    }
}

/// The ticket's comments as its chat read model shows them, once it
/// shows `n` of them.
async fn chat_with(
    client: &reqwest::Client,
    server: &ServerChild,
    token: &str,
    ticket: &str,
    n: usize,
) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let chat = get_ok(
            client,
            server,
            token,
            &format!("/api/v1/tickets/{ticket}/chat"),
        )
        .await;
        let items = chat["items"].as_array().expect("items").clone();
        if items.len() >= n {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "the chat shows {} comments, not {n}",
            items.len()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The live feed's connection.
type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next frame of `ws` that `wanted` accepts, within [`WAIT`].
async fn next_frame(ws: &mut Ws, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a live frame in time")
            .expect("the live feed is open")
            .expect("a frame");
        let Message::Text(text) = frame else { continue };
        let v: Value = serde_json::from_str(&text).expect("frame json");
        if wanted(&v) {
            return v;
        }
    }
}

fn ticket_body() -> Value {
    json!({"title": "database faults", "description": "d", "priority": "high",
           "kind": "incident"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_answer_503_while_the_database_is_stopped_and_the_server_recovers_by_itself() {
    // A PostgreSQL of this test's own: it stops it.
    let pg = Arc::new(PgServer::start().expect("start a test PostgreSQL"));
    let url = pg.fresh_database().expect("create a database");
    let dir = tempfile::tempdir().expect("dir");
    add_admin(&url, dir.path());
    let mut server = serve(dir.path(), &["--database-url", &url]).await;
    let client = reqwest::Client::new();
    healthy_head(&client, &server).await;
    let (token, _) = login(&client, &server, TENANT, ADMIN, PASSWORD).await;
    let (status, created) = post(
        &client,
        &server,
        &token,
        Uuid::new_v4(),
        "/api/v1/tickets",
        &ticket_body(),
    )
    .await;
    assert!(status.is_success(), "{status} {created}");
    let ticket = created["id"].as_str().expect("id").to_string();
    let comments = format!("/api/v1/tickets/{ticket}/comments");
    // `user add` appended too: positions are counted from here.
    let head = healthy_head(&client, &server).await;
    assert_eq!(created["position"].as_u64(), Some(head), "{created}");

    // A live-feed client of the ticket's room, to see the live side recover.
    let ws_url = format!("ws://{}/ws?token={token}", server.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url)
        .await
        .expect("ws connect");
    ws.send(Message::text(
        json!({"type": "subscribe", "room": format!("ticket:{ticket}")}).to_string(),
    ))
    .await
    .expect("subscribe");
    let subscribed = next_frame(&mut ws, |v| v["type"] == "subscribed").await;
    assert_eq!(subscribed["position"].as_u64(), Some(head), "{subscribed}");

    let stopping = pg.clone();
    tokio::task::spawn_blocking(move || stopping.pg_ctl("stop", &["stop", "-m", "fast", "-w"]))
        .await
        .expect("pg_ctl task")
        .expect("pg_ctl stop -m fast");
    let mut refused = Vec::new();
    for i in 0..COMMANDS_WHILE_AWAY {
        let key = Uuid::new_v4();
        let body = json!({"body": format!("while away {i}")});
        let (status, v) = post(&client, &server, &token, key, &comments, &body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
        assert_eq!(v["error"]["code"], "store_unavailable", "{v}");
        assert!(v["error"]["message"].is_string(), "{v}");
        refused.push((key, body));
    }
    assert!(server.running(), "the server stays up");

    let starting = pg.clone();
    tokio::task::spawn_blocking(move || starting.pg_ctl("start", &["start", "-w"]))
        .await
        .expect("pg_ctl task")
        .expect("pg_ctl start");
    // The same server, not restarted, takes commands again; a refused
    // command retried with its key is appended now (503 store_unavailable
    // appended nothing), once.
    let (key, body) = &refused[0];
    let first = post_until_accepted(&client, &server, &token, *key, &comments, body).await;
    assert_eq!(
        (first["position"].as_u64(), first["version"].as_u64()),
        (Some(head + 1), Some(2)),
        "nothing was appended while the database was away: {first}"
    );
    let again = post_until_accepted(&client, &server, &token, *key, &comments, body).await;
    assert_eq!(again["position"], first["position"], "{again}");
    let later = json!({"body": "after recovery"});
    let second =
        post_until_accepted(&client, &server, &token, Uuid::new_v4(), &comments, &later).await;
    assert_eq!(second["position"].as_u64(), Some(head + 2), "{second}");

    // The projections and the live feed see the new events.
    let chat = chat_with(&client, &server, &token, &ticket, 2).await;
    let bodies: Vec<&str> = chat.iter().filter_map(|c| c["body"].as_str()).collect();
    assert_eq!(bodies, ["while away 0", "after recovery"]);
    let mut live_positions = Vec::new();
    while live_positions.len() < 2 {
        let v = next_frame(&mut ws, |v| v["type"] == "event").await;
        live_positions.push(v["position"].as_u64().expect("position"));
    }
    assert_eq!(live_positions, [head + 1, head + 2]);
    assert_eq!(healthy_head(&client, &server).await, head + 2);
    stop(server).await;
    let verified = ticketlog_ok(&["verify", "--database-url", &url], dir.path());
    let whole = format!("OK: {} records", head + 2);
    assert!(verified.starts_with(&whole), "{verified}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_share_tokens_and_the_log() {
    let pg = PgServer::shared().expect("start the test PostgreSQL");
    let url = pg.fresh_database().expect("create a database");
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    add_admin(&url, dir_a.path());
    // Started at once: both may find no signing secret and generate one;
    // the first stored wins, and both must use it.
    let flags = ["--database-url", url.as_str()];
    let (a, b) = futures::join!(serve(dir_a.path(), &flags), serve(dir_b.path(), &flags));
    let client = reqwest::Client::new();
    healthy_head(&client, &a).await;
    healthy_head(&client, &b).await;
    // A token of A works on B: the generated secret is in the database.
    let (token, _) = login(&client, &a, TENANT, ADMIN, PASSWORD).await;
    let me = get_ok(&client, &b, &token, "/api/v1/me").await;
    assert_eq!(me["name"], ADMIN, "{me}");
    let (status, created) = post(
        &client,
        &b,
        &token,
        Uuid::new_v4(),
        "/api/v1/tickets",
        &ticket_body(),
    )
    .await;
    assert!(status.is_success(), "{status} {created}");
    let ticket = created["id"].as_str().expect("id").to_string();
    let comments = format!("/api/v1/tickets/{ticket}/comments");
    let (status, posted) = post(
        &client,
        &a,
        &token,
        Uuid::new_v4(),
        &comments,
        &json!({"body": "through A"}),
    )
    .await;
    assert!(status.is_success(), "{status} {posted}");
    let at = created["position"].as_u64().expect("position") + 1;
    assert_eq!(posted["position"].as_u64(), Some(at), "{posted}");
    // B's projections fold A's append (NOTIFY, or its tail poll).
    let chat = chat_with(&client, &b, &token, &ticket, 1).await;
    assert_eq!(chat[0]["body"], "through A");
    assert_eq!(chat[0]["position"].as_u64(), Some(at));
    let seen = get_ok(&client, &b, &token, &format!("/api/v1/tickets/{ticket}")).await;
    assert_eq!(seen["version"].as_u64(), Some(2), "{seen}");
    stop(a).await;
    stop(b).await;
}
