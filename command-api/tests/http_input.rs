//! Input hygiene through a real server: control and bidirectional
//! formatting characters refused in text fields, the tag limits, and
//! type errors that name the field without naming a Rust type.

mod http_common;

use event_store::both_stores;
use http_common::{error_code, ticket_body, Backend, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

/// Asserts a 400 `invalid_input` naming `field`; returns the answer.
fn assert_invalid(what: &str, (status, body): (u16, Value), field: &str) -> Value {
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(error_code(&body), "invalid_input", "{what}: {body}");
    assert_eq!(body["error"]["details"]["field"], field, "{what}: {body}");
    body
}

both_stores!(control_and_bidi_characters_are_refused_naming_the_field);
async fn control_and_bidi_characters_are_refused_naming_the_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let cast = server.cast("demo");
    let (carol, alice, dave) = (&cast.carol.1, &cast.alice.1, &cast.dave.1);
    let id = server.create_ticket(carol, "Printer jams").await;
    let ticket = format!("/api/v1/tickets/{id}");
    let head = server.head().await;

    // "evil" written with a right-to-left override shows as "live".
    let rlo = "\u{202e}live";
    let with = |key: &str, value: Value| {
        let mut b = ticket_body("Printer jams");
        b[key] = value;
        b
    };
    let located = |key: &str| {
        let mut loc = json!({"lat": 52.5, "lon": 13.4});
        loc[key] = json!(rlo);
        with("location", loc)
    };
    let creates = [
        (
            "NUL in title",
            with("title", json!("Printer\u{0} jams")),
            "title",
        ),
        ("RLO in title", with("title", json!(rlo)), "title"),
        (
            "line feed in title",
            with("title", json!("Printer\njams")),
            "title",
        ),
        (
            "C1 in title",
            with("title", json!("Printer\u{9b}jams")),
            "title",
        ),
        (
            "DEL in tag",
            with("tags", json!(["ok", "a\u{7f}"])),
            "tags[1]",
        ),
        (
            "isolate in tag",
            with("tags", json!(["\u{2066}x"])),
            "tags[0]",
        ),
        ("RLO in device", with("device", json!(rlo)), "device"),
        ("RLO in site", located("site"), "location.site"),
        ("RLO in building", located("building"), "location.building"),
        ("RLO in floor", located("floor"), "location.floor"),
        ("RLO in address", located("address"), "location.address"),
        (
            "NUL in description",
            with("description", json!("a\n\u{0}b")),
            "description",
        ),
        (
            "RLO in description",
            with("description", json!(rlo)),
            "description",
        ),
    ];
    for (what, body, field) in creates {
        let answer = server.post("/api/v1/tickets", carol, body).await;
        assert_invalid(what, answer, field);
    }
    let (s, _, b) = server
        .send(
            Method::PATCH,
            &ticket,
            Some(alice),
            Some(json!({"title": rlo})),
            &[],
        )
        .await;
    assert_invalid("RLO in edited title", (s, b), "title");
    let comments = format!("{ticket}/comments");
    let answer = server
        .post(&comments, carol, json!({"body": "a\u{1b}[2J"}))
        .await;
    assert_invalid("escape in comment", answer, "body");
    let answer = server.post(&comments, carol, json!({"body": rlo})).await;
    assert_invalid("RLO in comment", answer, "body");
    let status = json!({"status": "assigned", "note": rlo});
    let answer = server
        .post(&format!("{ticket}/status"), alice, status)
        .await;
    assert_invalid("RLO in status note", answer, "note");
    let report = json!({"lat": 52.5, "lon": 13.4, "site": "\u{0}"});
    let answer = server
        .post("/api/v1/technicians/me/location", dave, report)
        .await;
    assert_invalid("NUL in technician site", answer, "site");
    assert_eq!(
        server.head().await,
        head,
        "a refused command appends nothing"
    );

    // Line breaks and tabs stay allowed in free text, as does any script.
    let mut body = ticket_body("Drucker klemmt — 打印机 🖨️ עברית");
    body["description"] = json!("Steps:\r\n\t1. open tray\n\t2. jam");
    let (s, b) = server.post("/api/v1/tickets", carol, body).await;
    assert_eq!(s, 201, "{b}");
    let comment = json!({"body": "first line\nsecond\tline"});
    let (s, b) = server.post(&comments, carol, comment).await;
    assert_eq!(s, 200, "{b}");
    server.stop().await;
}

both_stores!(tags_have_a_count_and_a_length_limit);
async fn tags_have_a_count_and_a_length_limit(backend: Backend) {
    use command_api::domain::limits::{TAGS_COUNT_MAX, TAG_CHARS_MAX};
    let server = TestServer::start(backend).await;
    let cast = server.cast("demo");
    let (carol, alice) = (&cast.carol.1, &cast.alice.1);
    let tagged = |tags: Value| {
        let mut b = ticket_body("Printer jams");
        b["tags"] = tags;
        b
    };
    let many = |n: usize| json!((0..n).map(|i| format!("t{i}")).collect::<Vec<_>>());
    let head = server.head().await;
    let answer = server
        .post("/api/v1/tickets", carol, tagged(many(TAGS_COUNT_MAX + 1)))
        .await;
    assert_invalid("one tag too many", answer, "tags");
    let answer = server
        .post("/api/v1/tickets", carol, tagged(json!(vec!["x"; 5_000])))
        .await;
    assert_invalid("5,000 tags", answer, "tags");
    let long = json!(["ok", "y".repeat(TAG_CHARS_MAX + 1)]);
    let answer = server.post("/api/v1/tickets", carol, tagged(long)).await;
    assert_invalid("a tag too long", answer, "tags[1]");
    assert_eq!(
        server.head().await,
        head,
        "a refused command appends nothing"
    );

    let (s, b) = server
        .post("/api/v1/tickets", carol, tagged(many(TAGS_COUNT_MAX)))
        .await;
    assert_eq!(s, 201, "{b}");
    let ticket = format!("/api/v1/tickets/{}", b["id"].as_str().expect("id"));
    let (_, t) = server.get(&ticket, alice).await;
    assert_eq!(t["tags"], many(TAGS_COUNT_MAX), "{t}");
    let edit = json!({"tags": many(TAGS_COUNT_MAX + 1)});
    let (s, _, b) = server
        .send(Method::PATCH, &ticket, Some(alice), Some(edit), &[])
        .await;
    assert_invalid("one tag too many on edit", (s, b), "tags");
    server.stop().await;
}

/// Sends `text` as a JSON body to `POST path`.
async fn post_raw(server: &TestServer, path: &str, token: &str, text: &str) -> (u16, Value) {
    let resp = server
        .client
        .post(server.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(text.to_string())
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

both_stores!(type_errors_name_the_field_and_no_rust_type);
async fn type_errors_name_the_field_and_no_rust_type(backend: Backend) {
    let server = TestServer::start(backend).await;
    let cast = server.cast("demo");
    let alice = &cast.alice.1;
    let cases = [
        ("an array body", "[]", "body"),
        ("an array of one", r#"[{"title": "x"}]"#, "body"),
        ("a number body", "42", "body"),
        ("null", "null", "body"),
        (
            "a number for an enum",
            r#"{"title": "x", "priority": 5, "kind": "incident"}"#,
            "priority",
        ),
        (
            "an object for an enum",
            r#"{"title": "x", "priority": "high", "kind": {"a": 1}}"#,
            "kind",
        ),
        (
            "a number for the location",
            r#"{"title": "x", "priority": "high", "kind": "incident", "location": 5}"#,
            "location",
        ),
        (
            "a string for a coordinate",
            r#"{"title": "x", "priority": "high", "kind": "incident", "location": {"lat": "n"}}"#,
            "location.lat",
        ),
    ];
    for (what, text, field) in cases {
        let answer = post_raw(&server, "/api/v1/tickets", alice, text).await;
        let body = assert_invalid(what, answer, field);
        let message = body["error"]["message"].as_str().unwrap_or_default();
        for word in [
            "struct",
            "enum ",
            "CreateTicketBody",
            "Location",
            "TicketKind",
            "Priority",
            "f64",
        ] {
            assert!(!message.contains(word), "{what}: {word} in {body}");
        }
    }
    let answer = post_raw(&server, "/api/v1/tickets", alice, "[]").await;
    assert_eq!(
        answer.1["error"]["details"]["reason"],
        "expected a JSON object"
    );
    // Broken JSON is still malformed_json.
    let (s, b) = post_raw(&server, "/api/v1/tickets", alice, "[{").await;
    assert_eq!((s, error_code(&b).as_str()), (400, "malformed_json"), "{b}");
    server.stop().await;
}

/// Words of our Rust types that no error message may show.
const RUST_WORDS: [&str; 9] = [
    "struct",
    "enum ",
    "Location",
    "GeoPoint",
    "TicketKind",
    "TicketStatus",
    "Priority",
    "DispatchPhase",
    "f64",
];

both_stores!(enums_are_strings_and_locations_objects_with_known_keys_only);
async fn enums_are_strings_and_locations_objects_with_known_keys_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let cast = server.cast("demo");
    let (alice, dave) = (&cast.alice.1, &cast.dave.1);
    let ticket = format!("/api/v1/tickets/{}", uuid::Uuid::now_v7());
    let dispatch = format!("/api/v1/dispatches/{}/status", uuid::Uuid::now_v7());
    let cases = [
        (
            "an enum as an object with a null value",
            alice,
            "/api/v1/tickets".to_string(),
            r#"{"title": "x", "priority": "high", "kind": {"incident": null}}"#,
            "kind",
        ),
        (
            "a priority as an object",
            alice,
            "/api/v1/tickets".to_string(),
            r#"{"title": "x", "priority": {"high": null}, "kind": "incident"}"#,
            "priority",
        ),
        (
            "an unknown key in the location",
            alice,
            "/api/v1/tickets".to_string(),
            r#"{"title": "x", "priority": "high", "kind": "incident", "location": {"lat": 1, "lon": 2, "colour": "red"}}"#,
            "location.colour",
        ),
        (
            "a location as an array",
            alice,
            "/api/v1/tickets".to_string(),
            r#"{"title": "x", "priority": "high", "kind": "incident", "location": [52.5, 13.4]}"#,
            "location",
        ),
        (
            "an edited priority as an object",
            alice,
            ticket.clone(),
            r#"{"priority": {"low": null}}"#,
            "priority",
        ),
        (
            "a status as an object",
            alice,
            format!("{ticket}/status"),
            r#"{"status": {"open": null}}"#,
            "status",
        ),
        (
            "a dispatch phase as an object",
            dave,
            dispatch.clone(),
            r#"{"status": {"en_route": null}}"#,
            "status",
        ),
        (
            "a point as an array",
            dave,
            dispatch.clone(),
            r#"{"status": "en_route", "location": [52.5, 13.4]}"#,
            "location",
        ),
        (
            "an unknown key in a point",
            dave,
            dispatch.clone(),
            r#"{"status": "en_route", "location": {"lat": 1, "lon": 2, "alt": 3}}"#,
            "location.alt",
        ),
    ];
    for (what, token, path, text, field) in cases {
        let method = if path == ticket {
            Method::PATCH
        } else {
            Method::POST
        };
        let resp = server
            .client
            .request(method, server.url(&path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(text)
            .send()
            .await
            .expect("send");
        let answer = (resp.status().as_u16(), resp.json().await.expect("json"));
        let body = assert_invalid(what, answer, field);
        let message = body["error"]["message"].as_str().unwrap_or_default();
        for word in RUST_WORDS {
            assert!(!message.contains(word), "{what}: {word} in {body}");
        }
    }
    // The contract's shapes still pass.
    let mut good = ticket_body("located");
    good["location"] = json!({"lat": 52.5, "lon": 13.4, "site": "HQ"});
    let (s, _, b) = server
        .send(
            Method::POST,
            "/api/v1/tickets",
            Some(alice),
            Some(good),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{b}");
    server.stop().await;
}
