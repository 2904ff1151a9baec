//! Concurrency through a real server: conflicting commands with the same
//! `If-Match` (exactly one wins), and idempotent retries (append nothing).

mod http_common;

use event_store::both_stores;
use std::sync::Arc;

use http_common::{Backend, TestServer};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

both_stores!(
    fifty_conflicting_commands_exactly_one_wins,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn fifty_conflicting_commands_exactly_one_wins(backend: Backend) {
    let server = Arc::new(TestServer::start(backend).await);
    let cast = server.cast("demo");
    let ticket = server.create_ticket(&cast.carol.1, "contended").await;
    let path = format!("/api/v1/tickets/{ticket}/comments");
    let head = server.head().await;
    // Every agent token is a different user, so the rate limiter stays out of it.
    let tokens: Vec<String> = (0..50)
        .map(|i| {
            let u = server.add_user("demo", &format!("agent{i}"), event_store::Role::Agent);
            server.token_for(&u)
        })
        .collect();
    let mut tasks = vec![];
    for (i, token) in tokens.into_iter().enumerate() {
        let (server, path) = (server.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            let (s, _, b) = server
                .send(
                    Method::POST,
                    &path,
                    Some(&token),
                    Some(json!({"body": format!("racer {i}")})),
                    &[("if-match", "1")],
                )
                .await;
            (s, b)
        }));
    }
    let mut wins = 0;
    for task in tasks {
        let (s, b) = task.await.expect("task");
        match s {
            200 => wins += 1,
            409 => {
                assert_eq!(b["error"]["code"], "version_conflict");
                assert_eq!(b["error"]["details"]["expected"], 1);
                assert_eq!(b["error"]["details"]["actual"], 2);
            }
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert_eq!(
        wins, 1,
        "exactly one command decided on version 1 may succeed"
    );
    assert_eq!(server.head().await, head + 1);
    Arc::try_unwrap(server)
        .ok()
        .expect("sole owner")
        .stop()
        .await;
}

both_stores!(
    idempotent_retries_append_nothing,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn idempotent_retries_append_nothing(backend: Backend) {
    let server = Arc::new(TestServer::start(backend).await);
    let cast = server.cast("demo");
    let alice = cast.alice.1.clone();
    let key = Uuid::now_v7().to_string();

    // A create retried: same answer (same ticket, same number), one append.
    let create = |server: Arc<TestServer>, key: String, token: String| async move {
        server
            .send(
                Method::POST,
                "/api/v1/tickets",
                Some(&token),
                Some(http_common::ticket_body("once")),
                &[("idempotency-key", key.as_str())],
            )
            .await
    };
    let (s1, _, first) = create(server.clone(), key.clone(), alice.clone()).await;
    assert_eq!(s1, 201, "{first}");
    let head = server.head().await;
    let (s2, _, again) = create(server.clone(), key.clone(), alice.clone()).await;
    assert_eq!(s2, 201, "{again}");
    assert_eq!(first, again, "a retry returns the first answer");
    assert_eq!(server.head().await, head, "and appends nothing");
    let ticket = first["id"].as_str().expect("id").to_string();

    // A comment retried 20 times concurrently: one comment.
    let comment_key = Uuid::now_v7().to_string();
    let path = format!("/api/v1/tickets/{ticket}/comments");
    let mut tasks = vec![];
    for _ in 0..20 {
        let (server, path, key, token) = (
            server.clone(),
            path.clone(),
            comment_key.clone(),
            alice.clone(),
        );
        tasks.push(tokio::spawn(async move {
            server
                .send(
                    Method::POST,
                    &path,
                    Some(&token),
                    Some(json!({"body": "only once"})),
                    &[("idempotency-key", key.as_str())],
                )
                .await
        }));
    }
    let mut answers = vec![];
    for task in tasks {
        let (s, _, b) = task.await.expect("task");
        assert_eq!(s, 200, "{b}");
        answers.push(b);
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "every retry gets the same answer: {answers:?}"
    );
    assert_eq!(server.head().await, head + 1, "one comment appended");
    let (_, chat) = server
        .get(&format!("/api/v1/tickets/{ticket}/chat"), &alice)
        .await;
    assert_eq!(chat["items"].as_array().expect("items").len(), 1);

    // The same key from another user is that user's own command.
    let (s, _, other) = server
        .send(
            Method::POST,
            &path,
            Some(&cast.bob.1),
            Some(json!({"body": "bob's"})),
            &[("idempotency-key", comment_key.as_str())],
        )
        .await;
    assert_eq!(s, 200, "{other}");
    assert_ne!(other["comment_id"], answers[0]["comment_id"]);
    assert_eq!(server.head().await, head + 2);
    Arc::try_unwrap(server)
        .ok()
        .expect("sole owner")
        .stop()
        .await;
}
