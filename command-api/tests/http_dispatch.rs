//! Technician dispatch through a real server and the live feed: a critical
//! incident with a location goes to the nearest technician on creation, a
//! decline (or an unanswered request) passes it to the next nearest, and the
//! agent watching the ticket room sees every step in log order.

mod http_common;

use event_store::both_stores;
use std::time::Duration;

use chrono::Utc;
use command_api::domain::limits::{DISPATCH_ANSWER_TIMEOUT_SECS_DEFAULT, TRAVEL_SPEED_KMH_DEFAULT};
use futures::{SinkExt, StreamExt};
use http_common::{error_code, Backend, TestServer};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a condition on the live feed.
const FEED_WAIT_SECS: u64 = 10;

/// Where the incidents are (Berlin, Alexanderplatz).
const INCIDENT: (f64, f64) = (52.52, 13.405);
/// The nearer technician (Berlin-Mitte, about 2.3 km away).
const NEAR: (f64, f64) = (52.50, 13.40);
/// The farther technician (Potsdam, about 27 km away).
const FAR: (f64, f64) = (52.39, 13.065);

/// Great-circle distance in km (mean Earth radius), the figure the server's
/// choice is checked against.
fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6371.0088 * h.sqrt().asin()
}

/// Asserts the ticket's dispatch went to `technician`, `from` away, with
/// the ETA at the default speed.
fn assert_dispatch_figures(dispatch: &Value, technician: &str, from: (f64, f64)) {
    assert_eq!(dispatch["technician"], technician, "{dispatch}");
    let expected_km = haversine_km(INCIDENT, from);
    let km = dispatch["distance_km"].as_f64().expect("distance_km");
    assert!(
        (km - expected_km).abs() <= expected_km * 0.005,
        "distance {km} km, great circle {expected_km} km"
    );
    let eta = dispatch["eta_minutes"].as_f64().expect("eta_minutes");
    let expected_eta = km / TRAVEL_SPEED_KMH_DEFAULT * 60.0;
    assert!(
        (eta - expected_eta).abs() <= expected_eta * 0.01 + 0.01,
        "eta {eta} min, expected {expected_eta} min"
    );
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One `/ws` connection that keeps every frame it received, so a test can
/// wait for a condition and later check the whole sequence.
struct Feed {
    ws: Ws,
    frames: Vec<Value>,
}

impl Feed {
    async fn connect(server: &TestServer, token: &str) -> Feed {
        let url = format!("ws://{}/ws?token={token}", server.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect /ws");
        Feed { ws, frames: vec![] }
    }

    async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .await
            .expect("send frame");
    }

    /// Reads frames until `found` answers, or fails after [`FEED_WAIT_SECS`].
    async fn wait_for<T>(&mut self, what: &str, found: impl Fn(&[Value]) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(FEED_WAIT_SECS);
        loop {
            if let Some(t) = found(&self.frames) {
                return t;
            }
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "timed out waiting for {what}; frames so far: {:#?}",
                        self.frames
                    )
                })
                .expect("socket open")
                .expect("frame");
            if let Message::Text(t) = msg {
                self.frames
                    .push(serde_json::from_str(&t).expect("a JSON frame"));
            }
        }
    }

    /// Joins `room` (replaying after `after`, if given); returns the room
    /// head the server reported.
    async fn subscribe(&mut self, room: &str, after: Option<u64>) -> u64 {
        let mut frame = json!({"type": "subscribe", "room": room});
        if let Some(a) = after {
            frame["after"] = json!(a);
        }
        self.send(frame).await;
        self.wait_for(&format!("subscribed to {room}"), |frames| {
            frames.iter().find_map(|f| {
                if f["type"] == "error" {
                    panic!("subscribing to {room}: {f}");
                }
                (f["type"] == "subscribed" && f["room"] == room)
                    .then(|| f["position"].as_u64().expect("position"))
            })
        })
        .await
    }

    /// The event frames received in `room`, in arrival order.
    fn events_in(&self, room: &str) -> Vec<Value> {
        events_in(&self.frames, room)
    }

    /// Waits until `room` has an event of `kind` for which `matches` holds;
    /// returns that event (the frame's `event`).
    async fn wait_event(
        &mut self,
        room: &str,
        kind: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_for(&format!("{kind} in {room}"), |frames| {
            events_in(frames, room)
                .into_iter()
                .map(|f| f["event"].clone())
                .find(|e| e["kind"] == kind && matches(e))
        })
        .await
    }

    async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

fn events_in(frames: &[Value], room: &str) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| f["type"] == "event" && f["room"] == room)
        .cloned()
        .collect()
}

/// Asserts the frames' positions strictly increase (no duplicate, no reordering).
fn assert_strictly_increasing(frames: &[Value], room: &str) {
    let positions: Vec<u64> = frames
        .iter()
        .map(|f| f["position"].as_u64().expect("position"))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "positions in {room} must strictly increase: {positions:?}"
    );
}

/// A critical incident at [`INCIDENT`], created as `token`'s user.
async fn create_critical(server: &TestServer, token: &str, title: &str) -> String {
    let (s, b) = server
        .post(
            "/api/v1/tickets",
            token,
            json!({
                "title": title, "description": "Server room is flooding",
                "priority": "critical", "kind": "incident",
                "location": {"lat": INCIDENT.0, "lon": INCIDENT.1, "site": "HQ", "building": "A"}
            }),
        )
        .await;
    assert_eq!(s, 201, "create: {b}");
    b["id"].as_str().expect("id").to_string()
}

async fn report_location(server: &TestServer, token: &str, at: (f64, f64)) {
    let (s, b) = server
        .post(
            "/api/v1/technicians/me/location",
            token,
            json!({"lat": at.0, "lon": at.1}),
        )
        .await;
    assert_eq!(s, 200, "report location: {b}");
}

/// The ticket's `dispatch` as `token`'s user reads it.
async fn dispatch_of(server: &TestServer, ticket: &str, token: &str) -> (Value, Value) {
    let (s, t) = server
        .get(&format!("/api/v1/tickets/{ticket}"), token)
        .await;
    assert_eq!(s, 200, "get ticket: {t}");
    (t["dispatch"].clone(), t)
}

both_stores!(critical_incident_is_dispatched_declined_redispatched_and_completed_live);
async fn critical_incident_is_dispatched_declined_redispatched_and_completed_live(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let cast = server.cast("demo");
    let (carol, alice) = (&cast.carol.1, &cast.alice.1);
    let near = server.add_user("demo", "nina", event_store::Role::Technician);
    let near_token = server.token_for(&near);
    let far = server.add_user("demo", "paul", event_store::Role::Technician);
    let far_token = server.token_for(&far);
    // dave (a technician) never reports a location and is never dispatched.
    let stranger = &cast.dave.1;
    let (near_id, far_id) = (near.id.to_string(), far.id.to_string());

    report_location(&server, &near_token, NEAR).await;
    report_location(&server, &far_token, FAR).await;

    let near_room = format!("user:{near_id}");
    let far_room = format!("user:{far_id}");
    let mut near_feed = Feed::connect(&server, &near_token).await;
    near_feed.subscribe(&near_room, None).await;
    let mut far_feed = Feed::connect(&server, &far_token).await;
    far_feed.subscribe(&far_room, None).await;

    // carol reports a critical incident: it is dispatched on creation.
    let ticket = create_critical(&server, carol, "Flooded server room").await;
    let (first, t) = dispatch_of(&server, &ticket, alice).await;
    assert_eq!(t["status"], "open", "{t}");
    assert_eq!(first["status"], "requested", "{first}");
    assert_eq!(first["choice"], "nearest", "{first}");
    assert_dispatch_figures(&first, &near_id, NEAR);
    let first_id = first["id"].as_str().expect("dispatch id").to_string();

    // The agent watches the ticket from its start.
    let ticket_room = format!("ticket:{ticket}");
    let mut agent_feed = Feed::connect(&server, alice).await;
    agent_feed.subscribe(&ticket_room, Some(0)).await;

    // The nearer technician is notified in their own room.
    let request = near_feed
        .wait_event(&near_room, "DispatchRequested", |e| {
            e["dispatch_id"] == first_id.as_str()
        })
        .await;
    assert_eq!(request["technician"], near_id.as_str(), "{request}");
    assert_eq!(request["stream_id"], ticket.as_str(), "{request}");
    assert_eq!(request["choice"], "nearest", "{request}");

    // A technician the ticket was never dispatched to does not see it.
    let (s, b) = server
        .post(
            &format!("/api/v1/dispatches/{first_id}/accept"),
            stranger,
            json!({}),
        )
        .await;
    assert_eq!((s, error_code(&b).as_str()), (404, "not_found"), "{b}");

    // The nearer technician declines: the next nearest is asked.
    let (s, b) = server
        .post(
            &format!("/api/v1/dispatches/{first_id}/decline"),
            &near_token,
            json!({"reason": "stuck in traffic"}),
        )
        .await;
    assert_eq!(s, 200, "decline: {b}");
    let (second, _) = dispatch_of(&server, &ticket, alice).await;
    assert_ne!(second["id"], first["id"], "a new dispatch: {second}");
    assert_eq!(second["status"], "requested", "{second}");
    assert_eq!(second["choice"], "nearest", "{second}");
    assert_dispatch_figures(&second, &far_id, FAR);
    let second_id = second["id"].as_str().expect("dispatch id").to_string();
    let request = far_feed
        .wait_event(&far_room, "DispatchRequested", |e| {
            e["dispatch_id"] == second_id.as_str()
        })
        .await;
    assert_eq!(request["technician"], far_id.as_str(), "{request}");

    // Neither the technician who declined (403: they still see the ticket)
    // nor a stranger (404) may answer someone else's request.
    let accept_second = format!("/api/v1/dispatches/{second_id}/accept");
    let (s, b) = server.post(&accept_second, &near_token, json!({})).await;
    assert_eq!((s, error_code(&b).as_str()), (403, "forbidden"), "{b}");
    let (s, b) = server.post(&accept_second, stranger, json!({})).await;
    assert_eq!((s, error_code(&b).as_str()), (404, "not_found"), "{b}");
    // A declined request cannot be accepted afterwards.
    let (s, b) = server
        .post(
            &format!("/api/v1/dispatches/{first_id}/accept"),
            &near_token,
            json!({}),
        )
        .await;
    assert_eq!(s, 409, "accepting a declined request: {b}");

    // The farther technician accepts: the ticket is in progress.
    let (s, b) = server.post(&accept_second, &far_token, json!({})).await;
    assert_eq!(s, 200, "accept: {b}");
    let (d, t) = dispatch_of(&server, &ticket, alice).await;
    assert_eq!(t["status"], "in_progress", "{t}");
    assert_eq!(
        (d["status"].as_str(), d["technician"].as_str()),
        (Some("accepted"), Some(far_id.as_str())),
        "{d}"
    );

    // Travelling (with a position), on site, done.
    let progress = format!("/api/v1/dispatches/{second_id}/status");
    let (s, b) = server
        .post(
            &progress,
            &far_token,
            json!({"status": "en_route", "location": {"lat": 52.45, "lon": 13.25}}),
        )
        .await;
    assert_eq!(s, 200, "en_route: {b}");
    agent_feed
        .wait_event(&ticket_room, "DispatchProgressed", |e| {
            e["stage"] == "en_route"
        })
        .await;
    let (s, b) = server
        .post(&progress, &far_token, json!({"status": "on_site"}))
        .await;
    assert_eq!(s, 200, "on_site: {b}");
    agent_feed
        .wait_event(&ticket_room, "DispatchProgressed", |e| {
            e["stage"] == "on_site"
        })
        .await;
    let (s, b) = server
        .post(&progress, &far_token, json!({"status": "completed"}))
        .await;
    assert_eq!(s, 200, "completed: {b}");
    let (d, t) = dispatch_of(&server, &ticket, alice).await;
    assert_eq!(t["status"], "resolved", "{t}");
    assert!(t["resolved_at"].is_string(), "{t}");
    assert_eq!(d["status"], "completed", "{d}");
    agent_feed
        .wait_event(&ticket_room, "TicketStatusChanged", |e| {
            e["to"] == "resolved"
        })
        .await;

    // The agent's room saw the whole life, once each, in log order.
    let seen = agent_feed.events_in(&ticket_room);
    assert_strictly_increasing(&seen, &ticket_room);
    let steps: Vec<String> = seen
        .iter()
        .map(|f| {
            let e = &f["event"];
            let kind = e["kind"].as_str().expect("kind");
            match kind {
                "DispatchRequested" => {
                    format!("{kind}->{}", e["technician"].as_str().unwrap_or("-"))
                }
                "DispatchProgressed" => format!("{kind}:{}", e["stage"].as_str().unwrap_or("-")),
                "TicketStatusChanged" => format!("{kind}:{}", e["to"].as_str().unwrap_or("-")),
                _ => kind.to_string(),
            }
        })
        .collect();
    assert_eq!(
        steps,
        [
            "TicketCreated".to_string(),
            format!("DispatchRequested->{near_id}"),
            "DispatchDeclined".into(),
            format!("DispatchRequested->{far_id}"),
            "DispatchAccepted".into(),
            "TicketStatusChanged:assigned".into(),
            "TicketStatusChanged:in_progress".into(),
            "DispatchProgressed:en_route".into(),
            "DispatchProgressed:on_site".into(),
            "DispatchCompleted".into(),
            "TicketStatusChanged:resolved".into(),
        ],
        "ticket room steps"
    );
    let en_route = &seen[7]["event"];
    assert_eq!(
        (
            en_route["location"]["lat"].as_f64(),
            en_route["location"]["lon"].as_f64()
        ),
        (Some(52.45), Some(13.25)),
        "the en-route position reaches the room: {en_route}"
    );
    let declined = &seen[2]["event"];
    assert_eq!(declined["reason"], "stuck in traffic", "{declined}");
    assert_eq!(declined["technician"], near_id.as_str(), "{declined}");

    // An explicit dispatch on a non-critical ticket: nothing happens on
    // creation, then the agent names the (now free) nearer technician.
    let (s, b) = server
        .post(
            "/api/v1/tickets",
            alice,
            json!({
                "title": "Badge reader broken", "description": "Door B stays shut",
                "priority": "high", "kind": "incident",
                "location": {"lat": INCIDENT.0, "lon": INCIDENT.1, "site": "HQ"}
            }),
        )
        .await;
    assert_eq!(s, 201, "create: {b}");
    let other = b["id"].as_str().expect("id").to_string();
    let (d, _) = dispatch_of(&server, &other, alice).await;
    assert!(d.is_null(), "a high ticket is not auto-dispatched: {d}");
    let (s, b) = server
        .post(
            &format!("/api/v1/tickets/{other}/dispatches"),
            alice,
            json!({"technician_id": near_id}),
        )
        .await;
    assert_eq!(s, 200, "explicit dispatch: {b}");
    let explicit_id = b["dispatch_id"].as_str().expect("dispatch_id").to_string();
    assert_eq!(b["id"], other.as_str(), "{b}");
    let (d, _) = dispatch_of(&server, &other, alice).await;
    assert_eq!(d["id"], explicit_id.as_str(), "{d}");
    assert_eq!(d["choice"], "explicit", "{d}");
    assert_eq!(d["status"], "requested", "{d}");
    assert_dispatch_figures(&d, &near_id, NEAR);
    near_feed
        .wait_event(&near_room, "DispatchRequested", |e| {
            e["dispatch_id"] == explicit_id.as_str()
        })
        .await;
    // Per room, delivery is in log order: the explicit request came after
    // the re-dispatch, so had that one leaked into the nearer technician's
    // room it would be here already.
    let near_requests = near_feed.events_in(&near_room);
    assert_strictly_increasing(&near_requests, &near_room);
    let got: Vec<&str> = near_requests
        .iter()
        .filter_map(|f| f["event"]["dispatch_id"].as_str())
        .collect();
    assert_eq!(
        got,
        [first_id.as_str(), explicit_id.as_str()],
        "only the nearer technician's own requests"
    );
    // A dispatch of a ticket that already has an active one is refused.
    let (s, b) = server
        .post(
            &format!("/api/v1/tickets/{other}/dispatches"),
            alice,
            json!({"technician_id": far_id}),
        )
        .await;
    assert_eq!(s, 409, "second active dispatch: {b}");
    // Technicians cannot dispatch.
    let (s, b) = server
        .post(
            &format!("/api/v1/tickets/{other}/dispatches"),
            &near_token,
            json!({}),
        )
        .await;
    assert_eq!((s, error_code(&b).as_str()), (403, "forbidden"), "{b}");

    near_feed.close().await;
    far_feed.close().await;
    agent_feed.close().await;
    server.stop().await;
}

both_stores!(unanswered_request_times_out_to_the_next_nearest_live);
async fn unanswered_request_times_out_to_the_next_nearest_live(backend: Backend) {
    let server = TestServer::start(backend).await;
    let cast = server.cast("demo");
    let alice = &cast.alice.1;
    let near = server.add_user("demo", "nina", event_store::Role::Technician);
    let near_token = server.token_for(&near);
    let far = server.add_user("demo", "paul", event_store::Role::Technician);
    let far_token = server.token_for(&far);
    report_location(&server, &near_token, NEAR).await;
    report_location(&server, &far_token, FAR).await;
    let far_room = format!("user:{}", far.id);
    let mut far_feed = Feed::connect(&server, &far_token).await;
    far_feed.subscribe(&far_room, None).await;

    // The agent reports it this time.
    let ticket = create_critical(&server, alice, "Power cut").await;
    let ticket_room = format!("ticket:{ticket}");
    let mut agent_feed = Feed::connect(&server, alice).await;
    let head = agent_feed.subscribe(&ticket_room, None).await;
    let (first, _) = dispatch_of(&server, &ticket, alice).await;
    assert_dispatch_figures(&first, &near.id.to_string(), NEAR);

    // Nothing is overdue before the timeout; after it, the request is
    // declined as "timeout" by the system and passed on.
    let service = server.state.service();
    let expired = service
        .expire_overdue(Utc::now())
        .await
        .expect("expire now");
    assert!(expired.is_empty(), "not overdue yet: {expired:?}");
    let timeout_secs = service.config().dispatch_timeout_secs;
    assert_eq!(timeout_secs, DISPATCH_ANSWER_TIMEOUT_SECS_DEFAULT);
    let later =
        Utc::now() + chrono::TimeDelta::seconds(i64::try_from(timeout_secs).expect("secs") + 1);
    let expired = service.expire_overdue(later).await.expect("expire later");
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(expired[0].technician, near.id);
    let next = expired[0].redispatched.expect("re-dispatched");
    // A second tick changes nothing.
    let again = service.expire_overdue(later).await.expect("expire again");
    assert!(again.is_empty(), "{again:?}");

    let (second, _) = dispatch_of(&server, &ticket, alice).await;
    assert_eq!(second["id"], next.to_string(), "{second}");
    assert_dispatch_figures(&second, &far.id.to_string(), FAR);
    far_feed
        .wait_event(&far_room, "DispatchRequested", |e| {
            e["dispatch_id"] == next.to_string().as_str()
        })
        .await;
    let next_id = next.to_string();
    let requested = agent_feed
        .wait_event(&ticket_room, "DispatchRequested", |e| {
            e["dispatch_id"] == next_id.as_str()
        })
        .await;
    assert_eq!(requested["technician"], far.id.to_string(), "{requested}");
    // Live delivery starts after the head the server reported on joining;
    // the hub may not have fanned out the creation's events by then, so
    // the room's events are a suffix of the ticket's history, each once.
    let seen = agent_feed.events_in(&ticket_room);
    assert_strictly_increasing(&seen, &ticket_room);
    assert!(
        seen.iter()
            .all(|f| f["position"].as_u64().is_some_and(|p| p > head)),
        "live events come after the subscribed head {head}: {seen:#?}"
    );
    let kinds: Vec<&str> = seen
        .iter()
        .filter_map(|f| f["event"]["kind"].as_str())
        .collect();
    let history = [
        "TicketCreated",
        "DispatchRequested",
        "DispatchDeclined",
        "DispatchRequested",
    ];
    assert!(
        kinds.len() >= 2 && history.ends_with(&kinds),
        "the timeout and the re-dispatch, after at most the earlier history: {kinds:?}"
    );
    let declined = &seen[seen.len() - 2]["event"];
    assert_eq!(declined["reason"], "timeout", "{declined}");
    assert_eq!(declined["technician"], near.id.to_string(), "{declined}");
    assert_eq!(
        declined["actor"]["id"],
        command_api::service::SYSTEM_USER_ID.to_string(),
        "{declined}"
    );

    far_feed.close().await;
    agent_feed.close().await;
    server.stop().await;
}
