//! The HTTP plumbing through a real server: health, metrics, the token
//! endpoint, the error format of axum's own rejections, limits.

mod http_common;

use event_store::both_stores;
use http_common::{error_code, Backend, TestServer};
use reqwest::Method;
use serde_json::json;

use command_api::http::rate_limit::RateLimit;
use command_api::http::HttpOptions;
use event_store::Role;

both_stores!(healthz_metrics_and_request_ids);
async fn healthz_metrics_and_request_ids(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, headers, body) = server.send(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "ok"}), "liveness only, no head");
    assert!(headers.get("x-request-id").is_some());
    let (_, headers, _) = server
        .send(
            Method::GET,
            "/healthz",
            None,
            None,
            &[("x-request-id", "abc-123")],
        )
        .await;
    assert_eq!(
        headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("abc-123")
    );
    let text = metrics_text(&server).await;
    assert!(
        text.contains(
            "ticketlog_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ),
        "{text}"
    );
    assert!(text.contains(
        "ticketlog_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 2"
    ));
    assert!(text.contains("ticketlog_log_head_position 0"));
    server.stop().await;
}

both_stores!(token_endpoint_issues_working_tokens_and_refuses_bad_credentials);
async fn token_endpoint_issues_working_tokens_and_refuses_bad_credentials(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.add_user("demo", "alice", Role::Agent);
    let (status, _, body) = server
        .send(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"tenant": "demo", "username": "alice", "password": "pw"})),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["id"], json!(alice.id));
    assert_eq!(body["user"]["role"], "agent");
    assert!(body["user"]["permissions"]
        .as_array()
        .expect("array")
        .contains(&json!("tickets.manage")));
    assert!(body["expires_at"].is_string());
    let token = body["token"].as_str().expect("token").to_string();
    let (status, _, me) = server
        .send(Method::GET, "/api/v1/me", Some(&token), None, &[])
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["id"], json!(alice.id));
    assert_eq!(me["tenant"], "demo");

    for bad in [
        json!({"tenant": "demo", "username": "alice", "password": "wrong"}),
        json!({"tenant": "demo", "username": "nobody", "password": "pw"}),
        json!({"tenant": "other", "username": "alice", "password": "pw"}),
    ] {
        let (status, _, body) = server
            .send(Method::POST, "/api/v1/auth/token", None, Some(bad), &[])
            .await;
        assert_eq!(status, 401);
        assert_eq!(error_code(&body), "unauthorized");
    }
    let (status, _, body) = server
        .send(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"tenant": "demo"})),
            &[],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["details"]["field"], "username");
    server.stop().await;
}

both_stores!(axum_rejections_speak_the_contract);
async fn axum_rejections_speak_the_contract(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, _, body) = server
        .send(Method::GET, "/api/v1/nope", None, None, &[])
        .await;
    assert_eq!((status, error_code(&body).as_str()), (404, "not_found"));
    let (status, _, body) = server
        .send(Method::DELETE, "/healthz", None, None, &[])
        .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (405, "method_not_allowed")
    );
    let (status, _, body) = server
        .send(Method::GET, "/api/v1/me", None, None, &[])
        .await;
    assert_eq!((status, error_code(&body).as_str()), (401, "unauthorized"));

    let raw = |body: Vec<u8>| {
        server
            .client
            .post(server.url("/api/v1/auth/token"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let resp = raw(b"{\"tenant\": ".to_vec()).await.expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(error_code(&body), "malformed_json");
    assert_eq!(body["error"]["details"]["field"], "body");

    let big = format!("{{\"tenant\": \"{}\"}}", "x".repeat(70 * 1024));
    let resp = raw(big.into_bytes()).await.expect("send");
    assert_eq!(resp.status().as_u16(), 413);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(error_code(&body), "payload_too_large");
    server.stop().await;
}

both_stores!(rate_limit_answers_429_with_retry_after_per_user);
async fn rate_limit_answers_429_with_retry_after_per_user(backend: Backend) {
    let options = HttpOptions {
        rate_limit: RateLimit {
            per_second: 0.5,
            burst: 3.0,
        },
        ..HttpOptions::default()
    };
    let server = TestServer::start_with(backend, options).await;
    let alice = server.add_user("demo", "alice", Role::Agent);
    let bob = server.add_user("demo", "bob", Role::Agent);
    let (ta, tb) = (server.token_for(&alice), server.token_for(&bob));
    for _ in 0..3 {
        let (status, _, _) = server
            .send(Method::GET, "/api/v1/me", Some(&ta), None, &[])
            .await;
        assert_eq!(status, 200);
    }
    let (status, headers, body) = server
        .send(Method::GET, "/api/v1/me", Some(&ta), None, &[])
        .await;
    assert_eq!((status, error_code(&body).as_str()), (429, "rate_limited"));
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let (status, _, _) = server
        .send(Method::GET, "/api/v1/me", Some(&tb), None, &[])
        .await;
    assert_eq!(status, 200, "another user is not limited");
    server.stop().await;
}

/// The `/metrics` text, read as an admin (a token is a principal by its
/// claims alone; none of them needs to be in the directory).
async fn metrics_text(server: &TestServer) -> String {
    let admin = event_store::Principal {
        user_id: uuid::Uuid::now_v7(),
        tenant: "ops".into(),
        role: Role::Admin,
        name: "root".into(),
    };
    let token = server
        .state
        .jwt()
        .issue(&admin, chrono::Utc::now())
        .expect("issue")
        .token;
    server
        .client
        .get(server.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// The value of an unlabelled counter in the `/metrics` text.
async fn counter(server: &TestServer, name: &str) -> u64 {
    let text = metrics_text(server).await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {text}"))
}

both_stores!(metrics_count_only_what_was_appended);
async fn metrics_count_only_what_was_appended(backend: Backend) {
    let server = TestServer::start(backend).await;
    let cast = server.cast("acme");
    let agent = &cast.alice.1;
    let ticket = server.create_ticket(agent, "Printer jams").await;
    let events = counter(&server, "ticketlog_events_appended_total").await;
    let commands = counter(&server, "ticketlog_commands_appended_total").await;
    let head = server.head().await;
    assert!(events >= 1 && commands >= 1, "{events} {commands}");

    // An edit that changes nothing appends nothing and counts nothing.
    let path = format!("/api/v1/tickets/{ticket}");
    let (status, _, body) = server
        .send(
            Method::PATCH,
            &path,
            Some(agent),
            Some(json!({"title": "Printer jams"})),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.head().await, head);
    assert_eq!(
        counter(&server, "ticketlog_events_appended_total").await,
        events
    );
    assert_eq!(
        counter(&server, "ticketlog_commands_appended_total").await,
        commands
    );

    // A retry with the same key appends nothing and counts as a duplicate.
    let key = [("idempotency-key", "0190a5a4-0000-7000-8000-000000000001")];
    let comment = json!({"body": "on it"});
    let path = format!("/api/v1/tickets/{ticket}/comments");
    for _ in 0..2 {
        let (status, _, body) = server
            .send(
                Method::POST,
                &path,
                Some(agent),
                Some(comment.clone()),
                &key,
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(server.head().await, head + 1);
    assert_eq!(
        counter(&server, "ticketlog_events_appended_total").await,
        events + 1
    );
    assert_eq!(
        counter(&server, "ticketlog_commands_duplicate_total").await,
        1
    );
    server.stop().await;
}
