//! Every error status of the contract, provoked through a real server, in
//! the contract's JSON format; none of them appends anything.

mod http_common;

use http_common::{error_code, redact, TestServer};
use reqwest::Method;
use serde_json::json;

use command_api::http::rate_limit::RateLimit;
use command_api::http::HttpOptions;
use event_store::{FaultPoint, FaultSpan, SledOptions, StorageFaults};

#[tokio::test]
async fn every_error_status_in_the_contract_format() {
    let server = TestServer::start().await;
    let cast = server.cast("demo");
    let (carol, alice, frank) = (&cast.carol.1, &cast.alice.1, &cast.frank.1);
    let id = server.create_ticket(carol, "Printer jams").await;
    let t = format!("/api/v1/tickets/{id}");
    let head = server.head().await;
    let mut answers = vec![];
    let mut expect = |name: &str, status: u16, want: u16, body: serde_json::Value| {
        assert_eq!(status, want, "{name}: {body}");
        error_code(&body);
        answers.push(json!({"case": name, "status": status, "body": body}));
    };

    // 400: malformed JSON, a wrong type, an unknown value, a missing field,
    // a domain validation, a bad header, a bad path id, a bad query.
    let resp = server
        .client
        .post(server.url("/api/v1/tickets"))
        .bearer_auth(alice)
        .header("content-type", "application/json")
        .body("{\"title\": \"x\",")
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    expect(
        "malformed json",
        status,
        400,
        resp.json().await.expect("json"),
    );
    let (s, b) = server
        .post(
            "/api/v1/tickets",
            alice,
            json!({"title": 5, "priority": "high", "kind": "incident"}),
        )
        .await;
    assert_eq!(b["error"]["details"]["field"], "title");
    expect("wrong type", s, 400, b);
    let (s, b) = server
        .post(
            "/api/v1/tickets",
            alice,
            json!({"title": "x", "priority": "urgent", "kind": "incident"}),
        )
        .await;
    assert_eq!(b["error"]["details"]["field"], "priority");
    expect("unknown priority", s, 400, b);
    let (s, b) = server
        .post(
            "/api/v1/tickets",
            alice,
            json!({"title": "x", "kind": "incident"}),
        )
        .await;
    assert_eq!(b["error"]["details"]["field"], "priority");
    expect("missing field", s, 400, b);
    let (s, b) = server
        .post(&format!("{t}/comments"), alice, json!({"body": ""}))
        .await;
    assert_eq!(b["error"]["details"]["field"], "body");
    expect("empty comment", s, 400, b);
    let (s, b) = server
        .post(
            &format!("{t}/comments"),
            alice,
            json!({"body": "x".repeat(8 * 1024 + 1)}),
        )
        .await;
    expect("comment over 8 KiB", s, 400, b);
    let (s, _, b) = server
        .send(
            Method::POST,
            &format!("{t}/comments"),
            Some(alice),
            Some(json!({"body": "x"})),
            &[("if-match", "abc")],
        )
        .await;
    assert_eq!(b["error"]["details"]["field"], "If-Match");
    expect("bad If-Match", s, 400, b);
    let (s, _, b) = server
        .send(
            Method::POST,
            &format!("{t}/comments"),
            Some(alice),
            Some(json!({"body": "x"})),
            &[("idempotency-key", "nope")],
        )
        .await;
    expect("bad Idempotency-Key", s, 400, b);
    let (s, b) = server
        .post(
            "/api/v1/tickets/not-a-uuid/comments",
            alice,
            json!({"body": "x"}),
        )
        .await;
    expect("bad path id", s, 400, b);
    let (s, b) = server.get("/api/v1/tickets?limit=lots", alice).await;
    assert_eq!(b["error"]["details"]["field"], "limit");
    expect("bad query", s, 400, b);

    // 401: no token, a bad one.
    let (s, _, b) = server.send(Method::GET, &t, None, None, &[]).await;
    expect("no token", s, 401, b);
    let (s, b) = server.get(&t, "not.a.token").await;
    expect("bad token", s, 401, b);

    // 403: visible, but the permission is missing.
    let (s, b) = server
        .post(
            &format!("{t}/assign"),
            carol,
            json!({"assignee_id": cast.alice.0.id}),
        )
        .await;
    expect("customer assigns", s, 403, b);
    let (s, b) = server
        .post(
            &format!("{t}/comments"),
            carol,
            json!({"body": "psst", "internal": true}),
        )
        .await;
    expect("customer internal note", s, 403, b);
    let (s, b) = server.get("/api/v1/events", alice).await;
    expect("agent reads raw events", s, 403, b);

    // 404: unknown ticket, not visible, unknown route.
    let unknown = format!("/api/v1/tickets/{}", uuid::Uuid::now_v7());
    let (s, b) = server.get(&unknown, alice).await;
    expect("unknown ticket", s, 404, b);
    let (s, b) = server
        .post(&format!("{unknown}/comments"), alice, json!({"body": "x"}))
        .await;
    expect("comment on unknown ticket", s, 404, b);
    let (s, b) = server.get(&t, frank).await;
    expect("analyst opens a ticket", s, 404, b);
    let (s, b) = server.get("/api/v1/nothing-here", alice).await;
    expect("unknown route", s, 404, b);

    // 405.
    let (s, _, b) = server
        .send(Method::DELETE, &t, Some(alice), None, &[])
        .await;
    expect("method not allowed", s, 405, b);

    // 409: stale If-Match (details expected/actual), invalid transition.
    let (s, _, b) = server
        .send(
            Method::POST,
            &format!("{t}/comments"),
            Some(alice),
            Some(json!({"body": "x"})),
            &[("if-match", "7")],
        )
        .await;
    assert_eq!(b["error"]["details"], json!({"expected": 7, "actual": 1}));
    expect("stale If-Match", s, 409, b);
    let (s, b) = server
        .post(&format!("{t}/status"), alice, json!({"status": "closed"}))
        .await;
    assert_eq!(b["error"]["code"], "invalid_transition");
    expect("open to closed", s, 409, b);

    // 413.
    let resp = server
        .client
        .post(server.url(&format!("{t}/comments")))
        .bearer_auth(alice)
        .header("content-type", "application/json")
        .body(format!("{{\"body\": \"{}\"}}", "x".repeat(65 * 1024)))
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    expect(
        "body over 64 KiB",
        status,
        413,
        resp.json().await.expect("json"),
    );

    assert_eq!(server.head().await, head, "no error appended anything");
    insta::assert_json_snapshot!("errors", redact(&json!(answers)));
    server.stop().await;
}

#[tokio::test]
async fn rate_limited_requests_get_429_and_append_nothing() {
    let options = HttpOptions {
        rate_limit: RateLimit {
            per_second: 0.1,
            burst: 2.0,
        },
        ..HttpOptions::default()
    };
    let server = TestServer::start_with(options, SledOptions::default()).await;
    let cast = server.cast("demo");
    let alice = &cast.alice.1;
    let id = server.create_ticket(alice, "one").await;
    let (s, _) = server
        .post(
            &format!("/api/v1/tickets/{id}/comments"),
            alice,
            json!({"body": "two"}),
        )
        .await;
    assert_eq!(s, 200);
    let head = server.head().await;
    let (s, headers, b) = server
        .send(
            Method::POST,
            &format!("/api/v1/tickets/{id}/comments"),
            Some(alice),
            Some(json!({"body": "three"})),
            &[],
        )
        .await;
    assert_eq!((s, error_code(&b).as_str()), (429, "rate_limited"));
    let retry: u64 = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=10).contains(&retry), "{retry}");
    assert_eq!(server.head().await, head);
    server.stop().await;
}

#[tokio::test]
async fn store_failure_is_503_appends_nothing_and_recovers() {
    // The writer's next flush fails as if the disk refused it, until cleared.
    let faults = StorageFaults::new();
    faults.fail(FaultPoint::Flush, 1, FaultSpan::Forever);
    let sled = SledOptions {
        faults: Some(faults.clone()),
        ..SledOptions::default()
    };
    let server = TestServer::start_with(HttpOptions::default(), sled).await;
    let cast = server.cast("demo");
    let alice = &cast.alice.1;
    for _ in 0..2 {
        let (s, b) = server
            .post("/api/v1/tickets", alice, http_common::ticket_body("one"))
            .await;
        assert_eq!(
            (s, error_code(&b).as_str()),
            (503, "store_unavailable"),
            "{b}"
        );
    }
    assert_eq!(server.head().await, 0, "nothing was appended");
    let (s, b) = server.get("/api/v1/tickets", alice).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["items"],
        serde_json::json!([]),
        "no partial ticket is visible"
    );

    faults.clear();
    let id = server.create_ticket(alice, "after the fault").await;
    assert!(
        server.head().await > 0,
        "the store recovered without a restart"
    );
    let (s, b) = server.get(&format!("/api/v1/tickets/{id}"), alice).await;
    assert_eq!((s, b["number"].as_u64()), (200, Some(1)), "{b}");
    server.stop().await;
}

#[tokio::test]
async fn full_disk_is_503_with_retry_after_and_recovers_when_space_returns() {
    let faults = StorageFaults::new();
    let reserve = SledOptions::default().disk_reserve_bytes;
    let sled = SledOptions {
        faults: Some(faults.clone()),
        ..SledOptions::default()
    };
    let server = TestServer::start_with(HttpOptions::default(), sled).await;
    let cast = server.cast("demo");
    let alice = &cast.alice.1;
    let id = server.create_ticket(alice, "before").await;
    let head = server.head().await;

    faults.set_free_bytes(Some(reserve - 1));
    let (s, headers, b) = server
        .send(
            Method::POST,
            &format!("/api/v1/tickets/{id}/comments"),
            Some(alice),
            Some(json!({"body": "no room"})),
            &[],
        )
        .await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (503, "store_unavailable"),
        "{b}"
    );
    assert_eq!(b["error"]["details"]["reason"], "storage_full", "{b}");
    assert!(headers.get("retry-after").is_some(), "{headers:?}");
    assert_eq!(server.head().await, head, "nothing was appended");

    faults.set_free_bytes(None);
    let (s, b) = server
        .post(
            &format!("/api/v1/tickets/{id}/comments"),
            alice,
            json!({"body": "room again"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(server.head().await, head + 1);
    server.stop().await;
}
