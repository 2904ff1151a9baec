//! Finding 2: any assignee was accepted (a customer, a random UUID, another
//! tenant's user). Now assignees and technicians must be members of the
//! tenant with a role that can take the work, and every refusal is the same
//! 400 naming the field, so no answer tells another tenant's user from a
//! missing one.

use serde_json::{json, Value};

use super::tenants::World;

/// The answers to naming each of `ids` in `field` of `path` (as alice).
async fn answers(w: &World, path: &str, field: &str, ids: &[String]) -> Vec<(u16, Value)> {
    let mut out = Vec::new();
    for id in ids {
        out.push(w.post("alice", path, json!({ field: id }), None).await);
    }
    out
}

#[tokio::test]
async fn customers_strangers_and_other_tenants_users_get_one_identical_400() {
    let w = World::start().await;
    let ticket = w.new_ticket("desk phone dead").await;
    let stranger = uuid::Uuid::new_v4().to_string();

    let assign = format!("/api/v1/tickets/{ticket}/assign");
    let refused = [w.id("carol"), stranger.clone(), w.id("olga"), w.id("dave")];
    let got = answers(&w, &assign, "assignee_id", &refused).await;
    assert_eq!(got[0].0, 400, "{}", got[0].1);
    assert_eq!(got[0].1["error"]["details"]["field"], "assignee_id");
    assert!(got.iter().all(|a| *a == got[0]), "{got:?}");

    let dispatch = format!("/api/v1/tickets/{ticket}/dispatches");
    let refused = [w.id("carol"), stranger, w.id("otto"), w.id("mia")];
    let got = answers(&w, &dispatch, "technician_id", &refused).await;
    assert_eq!(got[0].0, 400, "{}", got[0].1);
    assert_eq!(got[0].1["error"]["details"]["field"], "technician_id");
    assert!(got.iter().all(|a| *a == got[0]), "{got:?}");

    // The tenant's own agent and technician are accepted.
    let ok = answers(&w, &assign, "assignee_id", &[w.id("mia")]).await;
    assert_eq!(ok[0].0, 200, "{}", ok[0].1);
    let ok = answers(&w, &dispatch, "technician_id", &[w.id("dave")]).await;
    assert_eq!(ok[0].0, 200, "{}", ok[0].1);
    w.stop().await;
}
