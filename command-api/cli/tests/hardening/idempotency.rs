//! Finding 1: an `Idempotency-Key` reused with another request replayed the
//! first answer. Now the key is bound to its request (method, route, path,
//! body): another request under it answers 422 `idempotency_key_reused` and
//! appends nothing, an exact retry answers as the first time, and another
//! user's identical key is independent.

use reqwest::Method;
use serde_json::json;

use super::tenants::World;

/// A fixed key, as a client reusing one would send it.
const KEY: &str = "5d0c7a52-3f0e-4c1e-9b7a-2f6a1c0e9d41";

#[tokio::test]
async fn a_reused_key_answers_422_and_appends_nothing_an_exact_retry_answers_as_before() {
    let w = World::start().await;
    let ticket = w.new_ticket("printer jams").await;
    let comments = format!("/api/v1/tickets/{ticket}/comments");

    let (status, first) = w.comment("alice", &ticket, "first", Some(KEY)).await;
    assert_eq!(status, 200, "{first}");
    let head = first["position"].as_u64().expect("position");

    // The same key: another comment body; a create; a status change.
    let status_path = format!("/api/v1/tickets/{ticket}/status");
    let reuses = [
        (comments.as_str(), json!({"body": "second"})),
        (
            "/api/v1/tickets",
            json!({"title": "t", "priority": "high", "kind": "incident"}),
        ),
        (status_path.as_str(), json!({"status": "assigned"})),
    ];
    for (path, body) in reuses {
        let (status, answer) = w.post("alice", path, body, Some(KEY)).await;
        assert_eq!(status, 422, "{path}: {answer}");
        assert_eq!(
            answer["error"]["code"], "idempotency_key_reused",
            "{answer}"
        );
    }
    // The exact retry, with its fields in another order and spelled-out
    // defaults, is the same request: the first answer again.
    let (status, again) = w
        .post(
            "alice",
            &comments,
            json!({"internal": false, "body": "first"}),
            Some(KEY),
        )
        .await;
    assert_eq!((status, &again), (200, &first));
    // Nothing was appended: the next event follows the first comment, and
    // the next ticket takes the next number.
    assert_eq!(w.probe(&ticket).await, head + 1);
    w.new_ticket("next").await;
    let (_, listed) = w
        .send(
            "alice",
            Method::GET,
            "/api/v1/tickets?limit=10",
            json!(null),
            None,
        )
        .await;
    let mut numbers: Vec<u64> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|t| t["number"].as_u64())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2], "the refused create took no number");

    // A key of a status change, then used for a comment: refused too.
    let status_key = "0b8f1d3e-6a2c-4f5b-8e7d-9c1a2b3c4d5e";
    let (status, _) = w
        .post(
            "alice",
            &status_path,
            json!({"status": "assigned"}),
            Some(status_key),
        )
        .await;
    assert_eq!(status, 200);
    let (status, answer) = w.comment("alice", &ticket, "hi", Some(status_key)).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    assert!(answer.get("comment_id").is_none());
    w.stop().await;
}

#[tokio::test]
async fn another_users_identical_key_is_independent() {
    let w = World::start().await;
    let ticket = w.new_ticket("vpn").await;
    let (status, first) = w.comment("alice", &ticket, "from alice", Some(KEY)).await;
    assert_eq!(status, 200, "{first}");
    let (status, other) = w.comment("mia", &ticket, "from mia", Some(KEY)).await;
    assert_eq!(status, 200, "{other}");
    assert_ne!(other["comment_id"], first["comment_id"]);
    assert_eq!(
        other["position"].as_u64(),
        first["position"].as_u64().map(|p| p + 1)
    );
    w.stop().await;
}
