//! Events reach only those allowed to see them, live and on resume.

mod common;

use common::{comment, positions, Backend, Harness};
use event_store::both_stores;
use event_store::schema::{DispatchChoice, EventPayload};
use serde_json::Value;
use uuid::Uuid;

fn is_internal(e: &Value) -> bool {
    e["event"]["internal"] == true || e["event"]["visibility"] == "internal"
}

both_stores!(customer_never_receives_internal_comments_live_or_on_resume);
async fn customer_never_receives_internal_comments_live_or_on_resume(backend: Backend) {
    let h = Harness::start(backend).await;
    let ticket = h.ticket(&h.customer).await;
    let room = format!("ticket:{ticket}");
    let mut agent = h.connect("agent").await;
    let mut customer = h.connect("customer").await;
    assert_eq!(agent.subscribe(&room, None).await["type"], "subscribed");
    assert_eq!(customer.subscribe(&room, None).await["type"], "subscribed");

    let internal = h
        .comment(ticket, &h.agent, "customer is difficult", true)
        .await;
    let public = h.comment(ticket, &h.agent, "we are on it", false).await;

    let a1 = agent.next_of("event").await;
    let a2 = agent.next_of("event").await;
    assert_eq!(positions(&[a1.clone(), a2.clone()]), vec![internal, public]);
    assert_eq!(a1["event"]["body"], "customer is difficult");
    assert_eq!(a1["room"], room.as_str());

    let c1 = customer.next_of("event").await;
    assert_eq!(c1["position"], public);
    assert_eq!(c1["event"]["body"], "we are on it");
    assert_eq!(c1["event"]["kind"], "CommentPosted");
    assert!(c1["event"]["actor"]["id"].is_string());
    assert!(c1["event"]["at"].is_string());
    assert!(
        customer.events_until_pong().await.is_empty(),
        "nothing after the public comment"
    );

    // Resume from the very start: the whole visible history, still without the note.
    let mut resumed = h.connect("customer").await;
    let sub = resumed.subscribe(&room, Some(0)).await;
    assert_eq!(sub["type"], "subscribed");
    let history = resumed.events_until_pong().await;
    assert!(history.iter().all(|e| !is_internal(e)), "{history:?}");
    assert_eq!(
        history.len(),
        2,
        "TicketCreated and the public comment: {history:?}"
    );
    assert_eq!(history[1]["position"], public);

    let mut agent_resumed = h.connect("agent").await;
    agent_resumed.subscribe(&room, Some(0)).await;
    let history = agent_resumed.events_until_pong().await;
    assert_eq!(history.len(), 3);
    assert_eq!(history[1]["position"], internal);
}

both_stores!(invisible_and_nonexistent_rooms_get_the_same_answer);
async fn invisible_and_nonexistent_rooms_get_the_same_answer(backend: Backend) {
    let h = Harness::start(backend).await;
    let others = h.ticket(&h.other_customer).await;
    let foreign = h.ticket(&h.foreign_agent).await;
    let undispatched = h.ticket(&h.customer).await;
    let mut customer = h.connect("customer").await;
    let mut answers = Vec::new();
    for room in [
        format!("ticket:{others}"),
        format!("ticket:{foreign}"),
        format!("ticket:{}", Uuid::now_v7()),
    ] {
        let mut a = customer.subscribe(&room, None).await;
        assert_eq!(a["type"], "error");
        assert_eq!(a["room"], room.as_str());
        a.as_object_mut().expect("object").remove("room");
        answers.push(a);
    }
    assert_eq!(answers[0]["code"], "not_found");
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");

    let mut tech = h.connect("technician").await;
    let a = tech
        .subscribe(&format!("ticket:{undispatched}"), None)
        .await;
    assert_eq!(
        a["code"], "not_found",
        "a technician sees only dispatched tickets"
    );

    let mut foreign_agent = h.connect("foreign_agent").await;
    let a = foreign_agent
        .subscribe(&format!("ticket:{undispatched}"), Some(0))
        .await;
    assert_eq!(a["code"], "not_found", "never another tenant's ticket");

    let a = customer
        .subscribe(&format!("user:{}", h.agent.user_id), None)
        .await;
    assert_eq!(a["code"], "forbidden");
    let mut analyst = h.connect("analyst").await;
    assert_eq!(
        analyst.subscribe("tickets", None).await["code"],
        "forbidden"
    );
    // Still alive after all refusals.
    assert!(customer.events_until_pong().await.is_empty());
}

both_stores!(tickets_room_shows_only_visible_tickets);
async fn tickets_room_shows_only_visible_tickets(backend: Backend) {
    let h = Harness::start(backend).await;
    let mut customer = h.connect("customer").await;
    let mut agent = h.connect("agent").await;
    let mut foreign = h.connect("foreign_agent").await;
    assert_eq!(
        customer.subscribe("tickets", None).await["type"],
        "subscribed"
    );
    assert_eq!(agent.subscribe("tickets", None).await["type"], "subscribed");
    assert_eq!(
        foreign.subscribe("tickets", None).await["type"],
        "subscribed"
    );

    let others = h.ticket(&h.other_customer).await;
    let mine = h.ticket(&h.customer).await;
    let note = h.comment(mine, &h.agent, "internal", true).await;
    let status = h
        .append(
            mine,
            &h.agent,
            vec![EventPayload::TicketStatusChanged {
                from: event_store::schema::TicketStatus::Open,
                to: event_store::schema::TicketStatus::Assigned,
                note: None,
            }],
        )
        .await
        .position;
    h.fanned_out(status).await;

    let seen = customer.events_until_pong().await;
    assert!(
        seen.iter()
            .all(|e| e["event"]["stream_id"] == mine.to_string()),
        "{seen:?}"
    );
    assert!(!positions(&seen).contains(&note));
    assert_eq!(
        seen.last().map(|e| e["position"].clone()),
        Some(status.into())
    );

    let seen = agent.events_until_pong().await;
    assert!(seen
        .iter()
        .any(|e| e["event"]["stream_id"] == others.to_string()));
    assert!(positions(&seen).contains(&note));
    assert!(
        foreign.events_until_pong().await.is_empty(),
        "nothing of another tenant"
    );
}

both_stores!(user_room_carries_own_assignments_and_dispatches);
async fn user_room_carries_own_assignments_and_dispatches(backend: Backend) {
    let h = Harness::start(backend).await;
    let ticket = h.ticket(&h.customer).await;
    let mut tech = h.connect("technician").await;
    let mut agent = h.connect("agent").await;
    let me = format!("user:{}", h.technician.user_id);
    assert_eq!(tech.subscribe(&me, None).await["type"], "subscribed");
    assert_eq!(
        agent
            .subscribe(&format!("user:{}", h.agent.user_id), None)
            .await["type"],
        "subscribed"
    );

    let dispatch = h
        .append(
            ticket,
            &h.agent,
            vec![EventPayload::DispatchRequested {
                dispatch_id: Uuid::now_v7(),
                technician: Some(h.technician.user_id),
                choice: DispatchChoice::Explicit,
                distance_km: None,
                eta_minutes: None,
                radius_km: 50.0,
                candidates: vec![],
            }],
        )
        .await
        .position;
    h.comment(ticket, &h.agent, "not a notification", false)
        .await;
    let assigned = h
        .append(
            ticket,
            &h.agent,
            vec![EventPayload::TicketAssigned {
                assignee: h.agent.user_id,
                previous: None,
            }],
        )
        .await
        .position;
    h.fanned_out(assigned).await;

    let got = tech.events_until_pong().await;
    assert_eq!(positions(&got), vec![dispatch]);
    assert_eq!(got[0]["room"], me.as_str());
    assert_eq!(positions(&agent.events_until_pong().await), vec![assigned]);

    // The dispatch made the ticket visible to the technician, history included.
    let room = format!("ticket:{ticket}");
    assert_eq!(tech.subscribe(&room, Some(0)).await["type"], "subscribed");
    assert_eq!(tech.events_until_pong().await.len(), 4);
    let _ = comment("", false);
}
