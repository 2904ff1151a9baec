//! Every error status of the contract, provoked through a real server, in
//! the contract's JSON format; none of them appends anything.

mod http_common;

use event_store::both_stores;
use std::sync::Arc;

use http_common::{error_code, redact, Backend, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

use command_api::http::rate_limit::RateLimit;
use command_api::http::HttpOptions;
use event_store::{FaultPoint, FaultSpan, SledOptions, StorageFaults};

/// What a request sends as its body.
enum Body {
    None,
    Json(Value),
    /// Sent as it is, declared `application/json`.
    Raw(String),
}

/// One request the contract answers with an error.
struct Case<'a> {
    name: &'static str,
    want: u16,
    method: Method,
    path: String,
    token: Option<&'a str>,
    body: Body,
    headers: &'static [(&'static str, &'static str)],
    /// A JSON pointer into the answer and the value it must find there.
    holds: Option<(&'static str, Value)>,
}

impl<'a> Case<'a> {
    fn new(name: &'static str, want: u16, method: Method, path: &str, token: &'a str) -> Self {
        Case {
            name,
            want,
            method,
            path: path.to_string(),
            token: Some(token),
            body: Body::None,
            headers: &[],
            holds: None,
        }
    }

    fn get(name: &'static str, want: u16, path: &str, token: &'a str) -> Self {
        Case::new(name, want, Method::GET, path, token)
    }

    fn post(name: &'static str, want: u16, path: &str, token: &'a str, body: Value) -> Self {
        Case::new(name, want, Method::POST, path, token).body(Body::Json(body))
    }

    fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    fn headers(mut self, headers: &'static [(&'static str, &'static str)]) -> Self {
        self.headers = headers;
        self
    }

    fn without_token(mut self) -> Self {
        self.token = None;
        self
    }

    /// The answer must hold `value` at `pointer` (besides the status).
    fn holds(mut self, pointer: &'static str, value: Value) -> Self {
        self.holds = Some((pointer, value));
        self
    }

    /// The error names `field` as the one at fault.
    fn field(self, field: &str) -> Self {
        self.holds("/error/details/field", json!(field))
    }

    /// Sends the request; returns the status and the JSON answer.
    async fn send(self, server: &TestServer) -> (u16, Value) {
        let body = match self.body {
            Body::Raw(text) => {
                let mut req = server
                    .client
                    .request(self.method, server.url(&self.path))
                    .header("content-type", "application/json")
                    .body(text);
                if let Some(t) = self.token {
                    req = req.bearer_auth(t);
                }
                let resp = req.send().await.expect("send");
                let status = resp.status().as_u16();
                return (status, resp.json().await.expect("json"));
            }
            Body::Json(v) => Some(v),
            Body::None => None,
        };
        let (s, _, b) = server
            .send(self.method, &self.path, self.token, body, self.headers)
            .await;
        (s, b)
    }
}

/// Posts a comment on ticket `id`; returns status, headers and answer.
async fn comment(
    server: &TestServer,
    id: &str,
    token: &str,
    text: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let path = format!("/api/v1/tickets/{id}/comments");
    let body = json!({ "body": text });
    server
        .send(Method::POST, &path, Some(token), Some(body), &[])
        .await
}

/// A server whose store fails as `faults` says. Sled only: fault injection
/// (`SledOptions::faults`) and the disk reserve exist on sled alone; on
/// PostgreSQL the matching failure is the database going away, which needs
/// a server of its own to stop, not the one these tests share.
async fn start_with_faults(faults: &Arc<StorageFaults>) -> TestServer {
    let sled = SledOptions {
        faults: Some(faults.clone()),
        ..SledOptions::default()
    };
    TestServer::start_sled(HttpOptions::default(), sled).await
}

both_stores!(every_error_status_in_the_contract_format);
async fn every_error_status_in_the_contract_format(backend: Backend) {
    let server = TestServer::start(backend).await;
    let cast = server.cast("demo");
    let (carol, alice, frank) = (&cast.carol.1, &cast.alice.1, &cast.frank.1);
    let id = server.create_ticket(carol, "Printer jams").await;
    let t = format!("/api/v1/tickets/{id}");
    let comments = format!("{t}/comments");
    let unknown = format!("/api/v1/tickets/{}", uuid::Uuid::now_v7());
    let head = server.head().await;
    let cases = vec![
        // 400: malformed JSON, a wrong type, an unknown value, a missing field,
        // a domain validation, a bad header, a bad path id, a bad query.
        Case::new(
            "malformed json",
            400,
            Method::POST,
            "/api/v1/tickets",
            alice,
        )
        .body(Body::Raw("{\"title\": \"x\",".into())),
        Case::post(
            "wrong type",
            400,
            "/api/v1/tickets",
            alice,
            json!({"title": 5, "priority": "high", "kind": "incident"}),
        )
        .field("title"),
        Case::post(
            "unknown priority",
            400,
            "/api/v1/tickets",
            alice,
            json!({"title": "x", "priority": "urgent", "kind": "incident"}),
        )
        .field("priority"),
        Case::post(
            "missing field",
            400,
            "/api/v1/tickets",
            alice,
            json!({"title": "x", "kind": "incident"}),
        )
        .field("priority"),
        Case::post("empty comment", 400, &comments, alice, json!({"body": ""})).field("body"),
        Case::post(
            "comment over 8 KiB",
            400,
            &comments,
            alice,
            json!({"body": "x".repeat(8 * 1024 + 1)}),
        ),
        Case::post("bad If-Match", 400, &comments, alice, json!({"body": "x"}))
            .headers(&[("if-match", "abc")])
            .field("If-Match"),
        Case::post(
            "bad Idempotency-Key",
            400,
            &comments,
            alice,
            json!({"body": "x"}),
        )
        .headers(&[("idempotency-key", "nope")]),
        Case::post(
            "bad path id",
            400,
            "/api/v1/tickets/not-a-uuid/comments",
            alice,
            json!({"body": "x"}),
        ),
        Case::get("bad query", 400, "/api/v1/tickets?limit=lots", alice).field("limit"),
        // 401: no token, a bad one.
        Case::get("no token", 401, &t, alice).without_token(),
        Case::get("bad token", 401, &t, "not.a.token"),
        // 403: visible, but the permission is missing.
        Case::post(
            "customer assigns",
            403,
            &format!("{t}/assign"),
            carol,
            json!({"assignee_id": cast.alice.0.id}),
        ),
        Case::post(
            "customer internal note",
            403,
            &comments,
            carol,
            json!({"body": "psst", "internal": true}),
        ),
        Case::get("agent reads raw events", 403, "/api/v1/events", alice),
        // 404: unknown ticket, not visible, unknown route.
        Case::get("unknown ticket", 404, &unknown, alice),
        Case::post(
            "comment on unknown ticket",
            404,
            &format!("{unknown}/comments"),
            alice,
            json!({"body": "x"}),
        ),
        Case::get("analyst opens a ticket", 404, &t, frank),
        Case::get("unknown route", 404, "/api/v1/nothing-here", alice),
        // 405.
        Case::new("method not allowed", 405, Method::DELETE, &t, alice),
        // 409: stale If-Match (details expected/actual), invalid transition.
        Case::post(
            "stale If-Match",
            409,
            &comments,
            alice,
            json!({"body": "x"}),
        )
        .headers(&[("if-match", "7")])
        .holds("/error/details", json!({"expected": 7, "actual": 1})),
        Case::post(
            "open to closed",
            409,
            &format!("{t}/status"),
            alice,
            json!({"status": "closed"}),
        )
        .holds("/error/code", json!("invalid_transition")),
        // 413.
        Case::new("body over 64 KiB", 413, Method::POST, &comments, alice).body(Body::Raw(
            format!("{{\"body\": \"{}\"}}", "x".repeat(65 * 1024)),
        )),
    ];
    let mut answers = vec![];
    for case in cases {
        let (name, want) = (case.name, case.want);
        let holds = case.holds.clone();
        let (status, body) = case.send(&server).await;
        if let Some((pointer, value)) = holds {
            assert_eq!(body.pointer(pointer), Some(&value), "{name}: {body}");
        }
        assert_eq!(status, want, "{name}: {body}");
        error_code(&body);
        answers.push(json!({"case": name, "status": status, "body": body}));
    }

    assert_eq!(server.head().await, head, "no error appended anything");
    insta::assert_json_snapshot!("errors", redact(&json!(answers)));
    server.stop().await;
}

both_stores!(rate_limited_requests_get_429_and_append_nothing);
async fn rate_limited_requests_get_429_and_append_nothing(backend: Backend) {
    let options = HttpOptions {
        rate_limit: RateLimit {
            per_second: 0.1,
            burst: 2.0,
        },
        ..HttpOptions::default()
    };
    let server = TestServer::start_with(backend, options).await;
    let cast = server.cast("demo");
    let alice = &cast.alice.1;
    let id = server.create_ticket(alice, "one").await;
    let (s, _, _) = comment(&server, &id, alice, "two").await;
    assert_eq!(s, 200);
    let head = server.head().await;
    let (s, headers, b) = comment(&server, &id, alice, "three").await;
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
    let server = start_with_faults(&faults).await;
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
    let server = start_with_faults(&faults).await;
    let cast = server.cast("demo");
    let alice = &cast.alice.1;
    let id = server.create_ticket(alice, "before").await;
    let head = server.head().await;

    faults.set_free_bytes(Some(reserve - 1));
    let (s, headers, b) = comment(&server, &id, alice, "no room").await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (503, "store_unavailable"),
        "{b}"
    );
    assert_eq!(b["error"]["details"]["reason"], "storage_full", "{b}");
    assert!(headers.get("retry-after").is_some(), "{headers:?}");
    assert_eq!(server.head().await, head, "nothing was appended");

    faults.set_free_bytes(None);
    let (s, _, b) = comment(&server, &id, alice, "room again").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(server.head().await, head + 1);
    server.stop().await;
}
