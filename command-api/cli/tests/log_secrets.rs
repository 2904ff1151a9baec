//! Tokens and passwords never appear in the server's log output (issue 8's
//! security review; the routes' rules are `command-api/tests/security_routes.rs`):
//! a `ticketlog serve` child at debug level, every place a secret travels,
//! and its whole log searched.

mod support;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::{serve_with, stop, ticketlog_ok, Launch};
use tokio_tungstenite::tungstenite::Message;

/// The password of the logged-in user; must never be logged.
const PASSWORD: &str = "Correct-Horse-Battery-9f3a";
/// A wrong password tried once; must never be logged either.
const WRONG_PASSWORD: &str = "Wrong-Staple-Password-71c2";
/// The signing secret; must never be logged.
const JWT_SECRET: &str = "log-review-secret-6d1b0c2e8a4f4e19b7f3";

/// Adds `name` with `role` and `password` to the `demo` tenant of `data`.
fn add_user(data: &std::path::Path, name: &str, role: &str, password: &str) {
    ticketlog_ok(
        &[
            "user",
            "add",
            "--tenant",
            "demo",
            "--name",
            name,
            "--role",
            role,
            "--password",
            password,
        ],
        data,
    );
}

/// Drives every place a secret travels: login (right and wrong password),
/// bearer header, `?token=` and the subprotocol on `/ws`, a token on an
/// unknown route's query string, and a tampered token.
async fn secret_carrying_requests(addr: &str) -> Vec<String> {
    let client = reqwest::Client::new();
    let url = |p: &str| format!("http://{addr}{p}");
    let login = client
        .post(url("/api/v1/auth/token"))
        .json(&json!({"tenant": "demo", "username": "alice", "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status().as_u16(), 200);
    let body: Value = login.json().await.expect("login body");
    let token = body["token"].as_str().expect("token").to_string();
    let wrong = client
        .post(url("/api/v1/auth/token"))
        .json(&json!({"tenant": "demo", "username": "alice", "password": WRONG_PASSWORD}))
        .send()
        .await
        .expect("wrong login");
    assert_eq!(wrong.status().as_u16(), 401);

    for path in ["/api/v1/me", "/api/v1/tickets", "/api/v1/stats"] {
        let s = client
            .get(url(path))
            .bearer_auth(&token)
            .send()
            .await
            .expect("get")
            .status();
        assert!(s.is_success(), "{path}: {s}");
    }
    let created = client
        .post(url("/api/v1/tickets"))
        .bearer_auth(&token)
        .json(&json!({"title": "logged?", "description": "it broke", "priority": "high", "kind": "incident"}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status().as_u16(), 201);
    let s = client
        .get(url(&format!("/api/v1/nope?token={token}")))
        .send()
        .await
        .expect("unknown route")
        .status();
    assert_eq!(s.as_u16(), 404);
    // A tampered token: rejected, and its text not echoed into the log.
    let tampered = format!("{token}x");
    let s = client
        .get(url("/api/v1/me"))
        .bearer_auth(&tampered)
        .send()
        .await
        .expect("tampered")
        .status();
    assert_eq!(s.as_u16(), 401);

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={token}"))
        .await
        .expect("ws with ?token=");
    ws.send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await
        .expect("ping");
    let pong = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a frame in time");
    assert!(matches!(pong, Some(Ok(Message::Text(_)))), "{pong:?}");
    ws.close(None).await.ok();

    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("ws request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        format!("bearer, {token}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("ws with the bearer subprotocol");
    ws.close(None).await.ok();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={tampered}"))
        .await
        .expect("ws with a tampered token");
    ws.close(None).await.ok();

    let signature = token.rsplit('.').next().expect("signature").to_string();
    vec![token, tampered, signature]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_passwords_never_appear_in_logs() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    add_user(&data, "alice", "agent", PASSWORD);
    // Debug level, everything but sled's internals: what an operator
    // chasing a problem would turn on.
    let launch = Launch {
        env: &[
            ("TICKETLOG_JWT_SECRET", JWT_SECRET),
            ("RUST_LOG", "debug,sled=warn"),
        ],
        keep_log: true,
        ..Launch::default()
    };
    let server = serve_with(&data, launch).await;
    let addr = server.addr.clone();
    let secrets = secret_carrying_requests(&addr).await;
    let log = server.log.clone();
    stop(server).await;
    let log = log.text();
    assert!(
        log.lines().filter(|l| l.contains("\"request\"")).count() >= 8,
        "the log holds the request lines: {log}"
    );
    for secret in secrets
        .iter()
        .map(String::as_str)
        .chain([PASSWORD, WRONG_PASSWORD, JWT_SECRET])
    {
        assert!(
            !log.contains(secret),
            "a secret ({}...) appears in the log",
            &secret[..secret.len().min(12)]
        );
    }
}
