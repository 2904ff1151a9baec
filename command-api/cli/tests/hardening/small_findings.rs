//! The outside tester's smaller findings (issue 15), each reproduced on a
//! real server: errors of the application are the JSON error object, type
//! errors name the field in the contract's words, text fields refuse
//! control and bidi characters, tags are bounded, CSV cells cannot become
//! formulas, API answers are `no-store` and `nosniff`, and the console
//! talks to its own origin only.

use serde_json::{json, Value};

use super::tenants::World;
use crate::support::ticketlog_ok;

/// The error object's code, asserting the contract's shape.
fn code(body: &Value) -> &str {
    let e = &body["error"];
    assert!(e["message"].is_string(), "error.message in {body}");
    assert!(e["details"].is_object(), "error.details in {body}");
    e["code"]
        .as_str()
        .unwrap_or_else(|| panic!("error.code in {body}"))
}

/// Whether a message leaks a Rust type or path (`alloc::string::String`,
/// `struct CreateTicket`, `Vec<…>`).
fn names_rust_types(message: &str) -> bool {
    ["::", "struct ", "enum ", "Vec<", "Option<", "String"]
        .iter()
        .any(|t| message.contains(t))
}

async fn get(world: &World, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = world.client().get(world.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("send")
}

#[tokio::test]
async fn every_error_of_the_application_is_the_json_error_object() {
    let world = World::start().await;
    let missing = get(&world, "/assets/nope.js", &[]).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(code(&missing.json().await.expect("json")), "not_found");

    let long_query = format!("/api/v1/tickets?q={}", "x".repeat(9 * 1024));
    let too_long = get(&world, &long_query, &[]).await;
    assert_eq!(too_long.status(), 414);
    assert_eq!(code(&too_long.json().await.expect("json")), "uri_too_long");

    let upgrade = [
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("origin", "http://evil.test"),
    ];
    let refused = get(&world, "/ws", &upgrade).await;
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(code(&body), "forbidden");
    assert_eq!(body["error"]["details"]["reason"], "origin");
    world.stop().await;
}

#[tokio::test]
async fn type_errors_name_the_field_in_the_contracts_words() {
    let world = World::start().await;
    let cases = [
        (
            json!({"title": 5, "priority": "high", "kind": "incident"}),
            "title",
        ),
        (
            json!({"title": "t", "priority": "urgent", "kind": "incident"}),
            "priority",
        ),
        (
            json!({"title": "t", "priority": "high", "kind": {"incident": null}}),
            "kind",
        ),
        (
            json!({"title": "t", "priority": "high", "kind": "incident", "tags": "a"}),
            "tags",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = world.post("carol", "/api/v1/tickets", body, None).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
        let message = answer["error"]["message"].as_str().expect("message");
        assert!(!names_rust_types(message), "{message}");
    }
    let (status, answer) = world
        .post("carol", "/api/v1/tickets", json!([1, 2]), None)
        .await;
    assert_eq!(status, 400, "{answer}");
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(!names_rust_types(message), "{message}");
    world.stop().await;
}

#[tokio::test]
async fn control_and_bidi_characters_and_tag_floods_are_refused() {
    let world = World::start().await;
    let ticket = |title: &str, tags: Value| json!({"title": title, "priority": "high", "kind": "incident", "tags": tags});
    let refused = [
        (ticket("evil\u{202e}", json!([])), "title"),
        (ticket("nul\u{0}byte", json!([])), "title"),
        (ticket("fine", json!(vec!["t"; 5_000])), "tags"),
        (ticket("fine", json!(["x".repeat(1_000)])), "tags[0]"),
    ];
    for (body, field) in refused {
        let (status, answer) = world.post("carol", "/api/v1/tickets", body, None).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
    }
    let (status, answer) = world
        .post(
            "carol",
            "/api/v1/tickets",
            ticket("fine", json!(["printer"])),
            None,
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    world.stop().await;
}

#[tokio::test]
async fn statistics_csv_cells_cannot_become_formulas() {
    let world = World::start().await;
    let body = json!({
        "title": "printer", "priority": "low", "kind": "question",
        "location": {"lat": 1.0, "lon": 2.0, "site": "=HYPERLINK(\"http://evil.test\")"}
    });
    let (status, answer) = world.post("carol", "/api/v1/tickets", body, None).await;
    assert_eq!(status, 201, "{answer}");
    let data = world.stop_keeping_data().await;
    let csv = ticketlog_ok(
        &["stats", "--group-by", "site", "--format", "csv"],
        data.path(),
    );
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    for line in csv.lines() {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(
                !cell.starts_with(['=', '+', '-', '@']),
                "formula cell {cell:?} in {csv}"
            );
        }
    }
}

#[tokio::test]
async fn answers_are_not_cached_or_sniffed_and_the_console_talks_home_only() {
    let world = World::start().await;
    for token in [Some(world.token("carol")), None] {
        let mut req = world.client().get(world.url("/api/v1/tickets"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let answer = req.send().await.expect("send");
        assert_eq!(answer.status(), if token.is_some() { 200 } else { 401 });
        let headers = answer.headers();
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }

    let page = get(&world, "/app/tickets", &[]).await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(!csp.contains("ws:"), "{csp}");
    world.stop().await;
}
