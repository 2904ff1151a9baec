//! Presence, typing indicators and read receipts in ticket rooms.

mod common;

use common::Harness;
use serde_json::{json, Value};

fn names(presence: &Value) -> Vec<String> {
    presence["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["name"].as_str().expect("name").to_string())
        .collect()
}

#[tokio::test]
async fn presence_follows_joins_and_leaves() {
    let h = Harness::start().await;
    let ticket = h.ticket(&h.customer).await;
    let room = format!("ticket:{ticket}");
    let mut agent = h.connect("agent").await;
    agent.subscribe(&room, None).await;
    assert_eq!(names(&agent.next_of("presence").await), vec!["alice"]);

    let mut customer = h.connect("customer").await;
    customer.subscribe(&room, None).await;
    let p = customer.next_of("presence").await;
    assert_eq!(names(&p), vec!["alice", "carol"]);
    assert_eq!(p["users"][1]["role"], "customer");
    assert_eq!(p["users"][1]["id"], h.customer.user_id.to_string());
    assert_eq!(
        names(&agent.next_of("presence").await),
        vec!["alice", "carol"]
    );

    // A second connection of the same user is one entry.
    let mut agent2 = h.connect("agent").await;
    agent2.subscribe(&room, None).await;
    assert_eq!(
        names(&agent2.next_of("presence").await),
        vec!["alice", "carol"]
    );
    assert_eq!(
        names(&agent.next_of("presence").await),
        vec!["alice", "carol"]
    );
    drop(agent2);
    assert_eq!(
        names(&agent.next_of("presence").await),
        vec!["alice", "carol"]
    );

    customer
        .send(json!({"type": "unsubscribe", "room": room}))
        .await;
    assert_eq!(customer.next_main().await["type"], "unsubscribed");
    assert_eq!(names(&agent.next_of("presence").await), vec!["alice"]);
}

#[tokio::test]
async fn typing_reaches_others_and_is_rate_limited() {
    let h = Harness::start().await;
    let ticket = h.ticket(&h.customer).await;
    let room = format!("ticket:{ticket}");
    let mut agent = h.connect("agent").await;
    agent.subscribe(&room, None).await;
    let mut customer = h.connect("customer").await;
    customer.subscribe(&room, None).await;

    customer
        .send(json!({"type": "typing", "room": room, "typing": true}))
        .await;
    let t = agent.next_of("typing").await;
    assert_eq!(t["user"]["name"], "carol");
    assert_eq!(t["typing"], true);
    customer
        .send(json!({"type": "typing", "room": room, "typing": true}))
        .await;
    let e = customer.next_main().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("rate_limited"))
    );
    customer
        .send(json!({"type": "typing", "room": room, "typing": false}))
        .await;
    assert_eq!(agent.next_of("typing").await["typing"], false);
    // The typist does not get its own indicator back; nothing went to the log.
    assert!(customer.events_until_pong().await.is_empty());
    assert!(agent.events_until_pong().await.is_empty());
}

#[tokio::test]
async fn read_receipts_are_recorded_and_broadcast() {
    let h = Harness::start().await;
    let ticket = h.ticket(&h.customer).await;
    let room = format!("ticket:{ticket}");
    let position = h.comment(ticket, &h.agent, "hello", false).await;
    h.fanned_out(position).await;
    let mut agent = h.connect("agent").await;
    agent.subscribe(&room, None).await;
    let mut customer = h.connect("customer").await;
    customer.subscribe(&room, None).await;

    customer
        .send(json!({"type": "read", "room": room, "position": position}))
        .await;
    let r = agent.next_of("read").await;
    assert_eq!(r["user"]["name"], "carol");
    assert_eq!(r["position"], position);
    assert_eq!(customer.next_of("read").await["position"], position);
    assert_eq!(
        *h.receipts.recorded.lock().expect("lock"),
        vec![(h.customer.user_id, ticket, position)]
    );

    customer
        .send(json!({"type": "read", "room": room, "position": position + 1000}))
        .await;
    assert_eq!(customer.next_main().await["code"], "bad_request");
}

#[tokio::test]
async fn a_typist_who_leaves_stops_typing_for_the_others() {
    let h = Harness::start().await;
    let ticket = h.ticket(&h.customer).await;
    let room = format!("ticket:{ticket}");
    let mut agent = h.connect("agent").await;
    agent.subscribe(&room, None).await;

    // Leaving by unsubscribing, while typing.
    let mut customer = h.connect("customer").await;
    customer.subscribe(&room, None).await;
    customer
        .send(json!({"type": "typing", "room": room, "typing": true}))
        .await;
    assert_eq!(agent.next_of("typing").await["typing"], true);
    customer
        .send(json!({"type": "unsubscribe", "room": room}))
        .await;
    let t = agent.next_of("typing").await;
    assert_eq!(
        (t["user"]["name"].as_str(), &t["typing"]),
        (Some("carol"), &json!(false))
    );
    assert_eq!(names(&agent.next_of("presence").await), vec!["alice"]);

    // Leaving by dropping the connection, while typing.
    let mut customer = h.connect("customer").await;
    customer.subscribe(&room, None).await;
    customer
        .send(json!({"type": "typing", "room": room, "typing": true}))
        .await;
    assert_eq!(agent.next_of("typing").await["typing"], true);
    drop(customer);
    let t = agent.next_of("typing").await;
    assert_eq!(
        (t["user"]["name"].as_str(), &t["typing"]),
        (Some("carol"), &json!(false))
    );
}

/// A room filling up does not cost m² presence frames: joins within one
/// presence round reach the earlier members as one frame.
#[tokio::test]
async fn presence_of_a_filling_room_is_coalesced() {
    const JOINS: usize = 40;
    let h = Harness::start().await;
    let ticket = h.ticket(&h.customer).await;
    let room = format!("ticket:{ticket}");
    let mut first = h.connect("agent").await;
    first.subscribe(&room, None).await;
    let mut others = Vec::new();
    for _ in 0..JOINS {
        let mut c = h.connect("agent").await;
        c.subscribe(&room, None).await;
        others.push(c);
    }
    // A different user joins last: its name marks the end of the joins.
    let mut customer = h.connect("customer").await;
    customer.subscribe(&room, None).await;
    let mut presence_frames = 0;
    loop {
        let p = first.next_of("presence").await;
        presence_frames += 1;
        if names(&p).contains(&"carol".to_string()) {
            break;
        }
    }
    assert!(
        presence_frames <= JOINS / 2,
        "{presence_frames} presence frames for {JOINS} joins"
    );
    assert_eq!(
        names(&customer.next_of("presence").await),
        vec!["alice", "carol"]
    );
}
