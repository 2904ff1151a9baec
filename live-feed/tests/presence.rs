//! Presence, typing indicators and read receipts in ticket rooms.

mod common;

use common::{principal, Backend, Client, Harness, TENANT};
use event_store::both_stores;
use event_store::schema::TicketId;
use event_store::Role;
use serde_json::{json, Value};

fn names(presence: &Value) -> Vec<String> {
    presence["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["name"].as_str().expect("name").to_string())
        .collect()
}

/// The next presence frame `client` gets lists exactly `expected`, by name.
async fn assert_presence(client: &mut Client, expected: &[&str]) {
    assert_eq!(names(&client.next_of("presence").await), expected);
}

/// A typing frame saying the customer (carol) stopped typing.
fn assert_carol_stopped_typing(t: &Value) {
    assert_eq!(
        (t["user"]["name"].as_str(), &t["typing"]),
        (Some("carol"), &json!(false))
    );
}

/// A feed holding one ticket reported by the customer, and its room.
struct Room {
    h: Harness,
    ticket: TicketId,
    name: String,
}

impl Room {
    async fn open(backend: Backend) -> Room {
        let h = Harness::start(backend).await;
        let ticket = h.ticket(&h.customer).await;
        Room {
            h,
            ticket,
            name: format!("ticket:{ticket}"),
        }
    }

    /// A new connection of `token`'s user, subscribed to the room.
    async fn join(&self, token: &str) -> Client {
        let mut client = self.h.connect(token).await;
        client.subscribe(&self.name, None).await;
        client
    }

    /// `client` says that it is, or no longer is, typing in the room.
    async fn typing(&self, client: &mut Client, typing: bool) {
        client
            .send(json!({"type": "typing", "room": self.name, "typing": typing}))
            .await;
    }

    /// Like [`Room::typing`], of an internal note.
    async fn typing_internal(&self, client: &mut Client, typing: bool) {
        client
            .send(json!({"type": "typing", "room": self.name, "typing": typing, "internal": true}))
            .await;
    }

    /// A second agent (bob), with the token `bob`, joined to the room.
    async fn join_second_agent(&self) -> Client {
        let bob = principal("bob", Role::Agent, TENANT);
        self.h
            .auth
            .add("bob", bob, chrono::Utc::now() + chrono::Duration::hours(1));
        self.join("bob").await
    }

    /// `client` unsubscribes from the room.
    async fn leave(&self, client: &mut Client) {
        client
            .send(json!({"type": "unsubscribe", "room": self.name}))
            .await;
    }
}

both_stores!(presence_follows_joins_and_leaves);
async fn presence_follows_joins_and_leaves(backend: Backend) {
    let r = Room::open(backend).await;
    let mut agent = r.join("agent").await;
    assert_presence(&mut agent, &["alice"]).await;

    let mut customer = r.join("customer").await;
    let p = customer.next_of("presence").await;
    assert_eq!(names(&p), vec!["alice", "carol"]);
    assert_eq!(p["users"][1]["role"], "customer");
    assert_eq!(p["users"][1]["id"], r.h.customer.user_id.to_string());
    assert_presence(&mut agent, &["alice", "carol"]).await;

    // A second connection of the same user is one entry.
    let mut agent2 = r.join("agent").await;
    assert_presence(&mut agent2, &["alice", "carol"]).await;
    assert_presence(&mut agent, &["alice", "carol"]).await;
    drop(agent2);
    assert_presence(&mut agent, &["alice", "carol"]).await;

    r.leave(&mut customer).await;
    assert_eq!(customer.next_main().await["type"], "unsubscribed");
    assert_presence(&mut agent, &["alice"]).await;
}

both_stores!(typing_reaches_others_and_is_rate_limited);
async fn typing_reaches_others_and_is_rate_limited(backend: Backend) {
    let r = Room::open(backend).await;
    let mut agent = r.join("agent").await;
    let mut customer = r.join("customer").await;

    r.typing(&mut customer, true).await;
    let t = agent.next_of("typing").await;
    assert_eq!(t["user"]["name"], "carol");
    assert_eq!(t["typing"], true);
    r.typing(&mut customer, true).await;
    let e = customer.next_main().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("rate_limited"))
    );
    r.typing(&mut customer, false).await;
    assert_eq!(agent.next_of("typing").await["typing"], false);
    // The typist does not get its own indicator back; nothing went to the log.
    assert!(customer.events_until_pong().await.is_empty());
    assert!(agent.events_until_pong().await.is_empty());
}

both_stores!(read_receipts_are_recorded_and_broadcast);
async fn read_receipts_are_recorded_and_broadcast(backend: Backend) {
    let r = Room::open(backend).await;
    let (h, ticket, room) = (&r.h, r.ticket, &r.name);
    let position = h.comment(ticket, &h.agent, "hello", false).await;
    h.fanned_out(position).await;
    let mut agent = r.join("agent").await;
    let mut customer = r.join("customer").await;

    customer
        .send(json!({"type": "read", "room": room, "position": position}))
        .await;
    let read = agent.next_of("read").await;
    assert_eq!(read["user"]["name"], "carol");
    assert_eq!(read["position"], position);
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

both_stores!(a_receipt_of_an_internal_note_reaches_only_staff);
/// A receipt of an internal note reaches only those who may see the note:
/// the customer in the room never learns that a note was read, or exists.
async fn a_receipt_of_an_internal_note_reaches_only_staff(backend: Backend) {
    let r = Room::open(backend).await;
    let (h, room) = (&r.h, &r.name);
    let public = h.comment(r.ticket, &h.agent, "hello", false).await;
    let note = h.comment(r.ticket, &h.agent, "note", true).await;
    h.fanned_out(note).await;
    let mut agent = r.join("agent").await;
    let mut customer = r.join("customer").await;
    let mut bob = r.join_second_agent().await;

    agent
        .send(json!({"type": "read", "room": room, "position": note}))
        .await;
    assert_eq!(bob.next_of("read").await["position"], note);
    customer
        .send(json!({"type": "read", "room": room, "position": public}))
        .await;
    // The customer's first read frame is its own, not alice's of the note.
    let first = customer.next_of("read").await;
    assert_eq!(
        (first["user"]["name"].as_str(), &first["position"]),
        (Some("carol"), &json!(public))
    );
}

both_stores!(read_frames_are_rate_limited_per_connection);
/// Beyond its named limit, a connection's read frames are answered
/// `rate_limited` and recorded no more.
async fn read_frames_are_rate_limited_per_connection(backend: Backend) {
    let r = Room::open(backend).await;
    let (h, room) = (&r.h, &r.name);
    let position = h.comment(r.ticket, &h.agent, "hello", false).await;
    h.fanned_out(position).await;
    let mut customer = r.join("customer").await;
    let sent = live_feed::limits::READ_FRAMES_BURST * 2;
    for _ in 0..sent {
        customer
            .send(json!({"type": "read", "room": room, "position": position}))
            .await;
    }
    customer.send(json!({"type": "ping"})).await;
    let mut refused = 0;
    loop {
        let v = customer.next_main().await;
        if v["type"] == "pong" {
            break;
        }
        assert_eq!(
            (v["type"].as_str(), v["code"].as_str()),
            (Some("error"), Some("rate_limited"))
        );
        refused += 1;
    }
    let recorded = h.receipts.recorded.lock().expect("lock").len();
    assert!(refused > 0, "none of {sent} refused");
    assert!(recorded >= live_feed::limits::READ_FRAMES_BURST as usize);
    assert_eq!(recorded + refused, sent as usize);
    // Another connection of the same user has a budget of its own.
    let mut second = r.join("customer").await;
    second
        .send(json!({"type": "read", "room": room, "position": position}))
        .await;
    assert_eq!(second.next_of("read").await["position"], position);
}

both_stores!(a_typist_who_leaves_stops_typing_for_the_others);
async fn a_typist_who_leaves_stops_typing_for_the_others(backend: Backend) {
    let r = Room::open(backend).await;
    let mut agent = r.join("agent").await;

    // Leaving by unsubscribing, while typing.
    let mut customer = r.join("customer").await;
    r.typing(&mut customer, true).await;
    assert_eq!(agent.next_of("typing").await["typing"], true);
    r.leave(&mut customer).await;
    assert_carol_stopped_typing(&agent.next_of("typing").await);
    assert_presence(&mut agent, &["alice"]).await;

    // Leaving by dropping the connection, while typing.
    let mut customer = r.join("customer").await;
    r.typing(&mut customer, true).await;
    assert_eq!(agent.next_of("typing").await["typing"], true);
    drop(customer);
    assert_carol_stopped_typing(&agent.next_of("typing").await);
}

both_stores!(presence_of_a_filling_room_is_coalesced);
/// A room filling up does not cost m² presence frames: joins within one
/// presence round reach the earlier members as one frame.
async fn presence_of_a_filling_room_is_coalesced(backend: Backend) {
    const JOINS: usize = 40;
    let r = Room::open(backend).await;
    let mut first = r.join("agent").await;
    let mut others = Vec::new();
    for _ in 0..JOINS {
        others.push(r.join("agent").await);
    }
    // A different user joins last: its name marks the end of the joins.
    let mut customer = r.join("customer").await;
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
    assert_presence(&mut customer, &["alice", "carol"]).await;
}

/// (who, typing) of a typing frame, checking it has the contract's shape
/// and nothing more (no `internal` flag goes out).
fn who_typing(t: &Value) -> (String, bool) {
    let mut keys: Vec<&str> = t
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["room", "type", "typing", "user"], "{t}");
    (
        t["user"]["name"].as_str().expect("name").to_string(),
        t["typing"].as_bool().expect("typing"),
    )
}

both_stores!(internal_typing_reaches_staff_only);
/// Typing an internal note reaches the staff in the room, never the
/// customer; public typing still reaches everyone (issue 14).
async fn internal_typing_reaches_staff_only(backend: Backend) {
    let r = Room::open(backend).await;
    let mut alice = r.join("agent").await;
    let mut bob = r.join_second_agent().await;
    let mut customer = r.join("customer").await;

    r.typing_internal(&mut alice, true).await;
    assert_eq!(
        who_typing(&bob.next_of("typing").await),
        ("alice".into(), true)
    );
    // Bob answers in public only after alice's frame was fanned out: had it
    // gone to the customer too, it would come before bob's.
    r.typing(&mut bob, true).await;
    assert_eq!(
        who_typing(&customer.next_of("typing").await),
        ("bob".into(), true)
    );
    assert_eq!(
        who_typing(&alice.next_of("typing").await),
        ("bob".into(), true)
    );

    r.typing_internal(&mut alice, false).await;
    assert_eq!(
        who_typing(&bob.next_of("typing").await),
        ("alice".into(), false)
    );

    // Bob switches to an internal note while typing in public: everyone is
    // told he stopped (the new start itself is within the rate limit). The
    // customer's next typing frame is that stop, so alice's stop of her
    // note, fanned out before, did not reach it either.
    r.typing_internal(&mut bob, true).await;
    assert_eq!(
        who_typing(&customer.next_of("typing").await),
        ("bob".into(), false)
    );
    assert_eq!(
        who_typing(&alice.next_of("typing").await),
        ("bob".into(), false)
    );
    assert_eq!(bob.next_main().await["code"], "rate_limited");
}

both_stores!(a_customer_cannot_type_internally);
/// A customer may not read internal notes, so it cannot be typing one: the
/// frame is refused and nobody hears of it.
async fn a_customer_cannot_type_internally(backend: Backend) {
    let r = Room::open(backend).await;
    let mut agent = r.join("agent").await;
    let mut customer = r.join("customer").await;

    r.typing_internal(&mut customer, true).await;
    let e = customer.next_main().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str(), e["room"].as_str()),
        (Some("error"), Some("forbidden"), Some(r.name.as_str()))
    );
    // The refused frame used no rate and reached nobody: the agent's next
    // typing frame is this public one.
    r.typing(&mut customer, true).await;
    assert_eq!(
        who_typing(&agent.next_of("typing").await),
        ("carol".into(), true)
    );
}
