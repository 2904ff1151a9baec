//! A ticket's whole life through a real server, by several roles, with
//! snapshots of the API's answers (ids and times redacted).

mod http_common;

use event_store::both_stores;
use http_common::{redact, Backend, TestServer};
use reqwest::Method;
use serde_json::json;

both_stores!(whole_lifecycle_by_several_roles);
async fn whole_lifecycle_by_several_roles(backend: Backend) {
    let server = TestServer::start(backend).await;
    let cast = server.cast("demo");
    let (carol, alice, bob, dave, erin, frank) = (
        &cast.carol.1,
        &cast.alice.1,
        &cast.bob.1,
        &cast.dave.1,
        &cast.erin.1,
        &cast.frank.1,
    );
    let mut transcript = vec![];

    // carol reports an incident.
    let (status, headers, created) = server
        .send(
            Method::POST,
            "/api/v1/tickets",
            Some(carol),
            Some(json!({
                "title": "Printer jams", "description": "Every job on floor 3", "priority": "high",
                "kind": "incident", "tags": ["printer"], "device": "HP-4000",
                "location": {"lat": 52.52, "lon": 13.405, "site": "HQ", "building": "A", "floor": "3"}
            })),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(
        headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/api/v1/tickets/{id}").as_str())
    );
    // A customer is shown no versions (issue 14): no ETag, no `version`.
    assert_eq!(headers.get("etag"), None);
    assert_eq!(created.get("version"), None, "{created}");
    transcript.push(json!({"create": created}));

    // alice answers publicly and leaves an internal note; assigns bob.
    let t = format!("/api/v1/tickets/{id}");
    let (s, b) = server
        .post(
            &format!("{t}/comments"),
            alice,
            json!({"body": "Looking into it"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    transcript.push(json!({"comment": b}));
    let (s, b) = server
        .post(
            &format!("{t}/comments"),
            alice,
            json!({"body": "Fuser is worn", "internal": true}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = server
        .post(
            &format!("{t}/assign"),
            alice,
            json!({"assignee_id": cast.bob.0.id}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    transcript.push(json!({"assign": b}));

    // bob edits and starts work (with If-Match on the current version).
    let (s, _, b) = server
        .send(
            Method::PATCH,
            &t,
            Some(bob),
            Some(json!({"priority": "critical", "tags": ["printer", "floor-3"]})),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let version = b["version"].as_u64().expect("version").to_string();
    let (s, _, b) = server
        .send(
            Method::POST,
            &format!("{t}/status"),
            Some(bob),
            Some(json!({"status": "in_progress", "note": "ordering a fuser"})),
            &[("if-match", version.as_str())],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    transcript.push(json!({"status": b}));

    // alice dispatches dave; dave accepts, travels, completes.
    let (s, b) = server
        .post(
            &format!("{t}/dispatches"),
            alice,
            json!({"technician_id": cast.dave.0.id}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    transcript.push(json!({"dispatch": b}));
    let dispatch = b["dispatch_id"].as_str().expect("dispatch id").to_string();
    let (s, _, b) = server
        .send(
            Method::POST,
            &format!("/api/v1/dispatches/{dispatch}/accept"),
            Some(dave),
            None,
            &[],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = server
        .post(
            "/api/v1/technicians/me/location",
            dave,
            json!({"lat": 52.5, "lon": 13.4, "site": "HQ"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    for stage in ["en_route", "on_site", "completed"] {
        let (s, b) = server
            .post(
                &format!("/api/v1/dispatches/{dispatch}/status"),
                dave,
                json!({"status": stage}),
            )
            .await;
        assert_eq!(s, 200, "{stage}: {b}");
    }
    let (s, b) = server
        .post(
            &format!("{t}/comments"),
            dave,
            json!({"body": "Fuser replaced"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");

    // What each role sees now.
    let (s, ticket) = server.get(&t, carol).await;
    assert_eq!(s, 200, "{ticket}");
    for field in [
        "id",
        "number",
        "title",
        "description",
        "status",
        "priority",
        "kind",
        "reporter",
        "assignee",
        "location",
        "tags",
        "created_at",
        "updated_at",
        "resolved_at",
        "dispatch",
    ] {
        assert!(
            ticket.get(field).is_some(),
            "ticket lacks {field}: {ticket}"
        );
    }
    // Versions are staff's: a customer is shown none (issue 14).
    assert_eq!(ticket.get("version"), None, "{ticket}");
    let (s, staff_view) = server.get(&t, alice).await;
    assert_eq!(s, 200, "{staff_view}");
    assert!(staff_view["version"].is_u64(), "{staff_view}");
    assert_eq!(ticket["reporter"], json!(cast.carol.0.id));
    assert_eq!(ticket["assignee"], json!(cast.bob.0.id));
    transcript.push(json!({"ticket_as_carol": ticket}));

    let (s, chat) = server.get(&format!("{t}/chat"), carol).await;
    assert_eq!(s, 200);
    let bodies: Vec<&str> = chat["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["body"].as_str())
        .collect();
    assert_eq!(
        bodies,
        ["Looking into it", "Fuser replaced"],
        "no internal note for carol"
    );
    let (_, chat) = server.get(&format!("{t}/chat"), alice).await;
    assert_eq!(
        chat["items"].as_array().expect("items").len(),
        3,
        "staff see the note"
    );
    transcript.push(json!({"chat_as_carol": chat_for(&server, &t, carol).await}));

    // Resolution, closing and a reopen; carol comments again.
    let (_, ticket) = server.get(&t, alice).await;
    if ticket["status"] != "resolved" {
        let (s, b) = server
            .post(&format!("{t}/status"), alice, json!({"status": "resolved"}))
            .await;
        assert_eq!(s, 200, "{b}");
    }
    let (s, b) = server
        .post(&format!("{t}/status"), alice, json!({"status": "closed"}))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = server
        .post(
            &format!("{t}/status"),
            alice,
            json!({"status": "open", "note": "jams again"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = server
        .post(
            &format!("{t}/comments"),
            carol,
            json!({"body": "It jams again"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");

    // The auditor reads the history; the analyst reads stats but no ticket.
    let (s, audit) = server.get(&format!("{t}/audit"), erin).await;
    assert_eq!(s, 200, "{audit}");
    let kinds: Vec<&str> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"TicketCreated") && kinds.contains(&"DispatchCompleted"),
        "{kinds:?}"
    );
    let (s, _) = server.get(&t, frank).await;
    assert_eq!(s, 404, "analysts do not see tickets");
    let (s, stats) = server.get("/api/v1/stats?group_by=priority", frank).await;
    assert_eq!(s, 200, "{stats}");
    let (s, list) = server.get("/api/v1/tickets?status=open", carol).await;
    assert_eq!(s, 200);
    assert_eq!(list["items"].as_array().expect("items").len(), 1);
    let (s, events) = server.get("/api/v1/events?limit=500", erin).await;
    assert_eq!(s, 200, "{events}");

    insta::assert_json_snapshot!("lifecycle", redact(&json!(transcript)));
    server.stop().await;
}

async fn chat_for(server: &TestServer, t: &str, token: &str) -> serde_json::Value {
    server.get(&format!("{t}/chat"), token).await.1
}
