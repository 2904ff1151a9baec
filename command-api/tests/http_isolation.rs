//! Tenant and customer isolation: what a principal may not see is 404,
//! never 403, on reads and on commands, and nothing is appended.

mod http_common;

use event_store::both_stores;
use event_store::Role;
use http_common::{error_code, Backend, TestServer};
use reqwest::Method;
use serde_json::json;

both_stores!(other_tenants_and_other_customers_get_404);
async fn other_tenants_and_other_customers_get_404(backend: Backend) {
    let server = TestServer::start(backend).await;
    let demo = server.cast("demo");
    let acme = server.cast("acme");
    let mallory = server.add_user("demo", "mallory", Role::Customer);
    let mallory_token = server.token_for(&mallory);

    let ticket = server.create_ticket(&demo.carol.1, "Carol's printer").await;
    let (s, b) = server
        .post(
            &format!("/api/v1/tickets/{ticket}/comments"),
            &demo.alice.1,
            json!({"body": "internal", "internal": true}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let t = format!("/api/v1/tickets/{ticket}");
    let head = server.head().await;

    let outsiders = [
        ("acme admin", acme.root.1.as_str()),
        ("acme agent", acme.alice.1.as_str()),
        ("acme customer", acme.carol.1.as_str()),
        ("acme auditor", acme.erin.1.as_str()),
        ("other demo customer", mallory_token.as_str()),
        ("demo technician without a dispatch", demo.dave.1.as_str()),
        ("demo analyst", demo.frank.1.as_str()),
    ];
    for (who, token) in outsiders {
        for path in [t.clone(), format!("{t}/chat"), format!("{t}/audit")] {
            let (s, b) = server.get(&path, token).await;
            assert_eq!(s, 404, "{who} GET {path}: {b}");
            assert_eq!(error_code(&b), "not_found");
        }
        let attempts = [
            (Method::POST, format!("{t}/comments"), json!({"body": "hi"})),
            (
                Method::POST,
                format!("{t}/status"),
                json!({"status": "assigned"}),
            ),
            (
                Method::POST,
                format!("{t}/assign"),
                json!({"assignee_id": uuid::Uuid::now_v7()}),
            ),
            (Method::PATCH, t.clone(), json!({"title": "mine now"})),
            (Method::POST, format!("{t}/dispatches"), json!({})),
        ];
        for (method, path, body) in attempts {
            let (s, _, b) = server
                .send(method.clone(), &path, Some(token), Some(body), &[])
                .await;
            assert_eq!(s, 404, "{who} {method} {path}: {b}");
        }
        let (s, list) = server.get("/api/v1/tickets", token).await;
        if s == 200 {
            assert_eq!(list["items"], json!([]), "{who} lists nothing of carol's");
        }
    }
    // The acme auditor's raw event feed holds nothing of demo.
    let (s, events) = server.get("/api/v1/events", &acme.erin.1).await;
    assert_eq!(s, 200);
    assert_eq!(events["items"], json!([]));
    assert_eq!(server.head().await, head, "nothing was appended");

    // The reporter still sees her ticket, without the internal note.
    let (s, chat) = server.get(&format!("{t}/chat"), &demo.carol.1).await;
    assert_eq!(s, 200);
    assert_eq!(chat["items"], json!([]));
    server.stop().await;
}
