//! A real feed on 127.0.0.1:0 over a real store (sled in a temp directory or
//! PostgreSQL in a fresh database), with real WebSocket clients.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use event_store::schema::{EventPayload, Priority, TicketId, TicketKind, UserId};
use event_store::testing::stores::TestStore;
use event_store::{
    Actor, AppendOutcome, AppendRequest, EventStore, ExpectedVersion, NewEvent, PgOptions,
    Principal, Role, SledOptions, Visibility,
};
use futures::{SinkExt, StreamExt};
use live_feed::{AuthRejected, Authenticate, FeedConfig, FeedState, ReadReceipts, ReceiptError};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub const TENANT: &str = "demo";

/// sled's page cache in these tests (many stores open at once).
const SLED_CACHE_BYTES: u64 = 8 * 1024 * 1024;

pub use event_store::testing::stores::Backend;

/// A fresh, empty store of `backend` and its place (keep it while the
/// store is used).
pub async fn fresh_store(backend: Backend) -> (Arc<dyn EventStore>, TestStore) {
    let place = backend.place().await;
    let sled = SledOptions {
        cache_capacity_bytes: SLED_CACHE_BYTES,
        ..SledOptions::default()
    };
    let store = place.open_with(sled, PgOptions::default()).await;
    (store, place)
}

/// Tokens the test authenticator knows, each a principal with an expiry.
#[derive(Default)]
pub struct TestAuth {
    tokens: Mutex<HashMap<String, (Principal, DateTime<Utc>)>>,
}

impl TestAuth {
    pub fn add(&self, token: &str, principal: Principal, expires_at: DateTime<Utc>) {
        self.tokens
            .lock()
            .expect("auth lock")
            .insert(token.to_string(), (principal, expires_at));
    }
}

impl Authenticate for TestAuth {
    fn principal(&self, token: &str) -> Result<(Principal, DateTime<Utc>), AuthRejected> {
        self.tokens
            .lock()
            .expect("auth lock")
            .get(token)
            .cloned()
            .ok_or(AuthRejected)
    }
}

/// Records every receipt it is given that names an event of its ticket
/// (the write side's fuller check is tested in command-api).
pub struct TestReceipts {
    store: Arc<dyn EventStore>,
    pub recorded: Mutex<Vec<(UserId, TicketId, u64)>>,
}

#[async_trait]
impl ReadReceipts for TestReceipts {
    async fn record(
        &self,
        principal: &Principal,
        ticket: TicketId,
        position: u64,
    ) -> Result<Visibility, ReceiptError> {
        let named = self.store.read_all(position.max(1), 1).await;
        let Some(event) = named
            .ok()
            .and_then(|events| events.into_iter().next())
            .filter(|e| e.position == position && e.stream_id == ticket)
        else {
            return Err(ReceiptError::Invalid("not a position of this room".into()));
        };
        self.recorded
            .lock()
            .expect("receipts lock")
            .push((principal.user_id, ticket, position));
        Ok(event.visibility)
    }
}

pub fn principal(name: &str, role: Role, tenant: &str) -> Principal {
    Principal {
        user_id: Uuid::now_v7(),
        tenant: tenant.to_string(),
        role,
        name: name.to_string(),
    }
}

pub struct Harness {
    pub addr: SocketAddr,
    pub store: Arc<dyn EventStore>,
    pub feed: FeedState,
    pub auth: Arc<TestAuth>,
    pub receipts: Arc<TestReceipts>,
    pub agent: Principal,
    pub customer: Principal,
    pub other_customer: Principal,
    pub technician: Principal,
    pub analyst: Principal,
    pub foreign_agent: Principal,
    _place: TestStore,
}

impl Harness {
    pub async fn start(backend: Backend) -> Harness {
        Harness::start_with(backend, FeedConfig::default()).await
    }

    pub async fn start_with(backend: Backend, config: FeedConfig) -> Harness {
        Harness::start_wrapped(backend, config, |s| s).await
    }

    /// A harness whose feed sees the store through `wrap` (fault or
    /// timing injection); appends go to the store directly.
    pub async fn start_wrapped(
        backend: Backend,
        config: FeedConfig,
        wrap: impl FnOnce(Arc<dyn EventStore>) -> Arc<dyn EventStore>,
    ) -> Harness {
        let (store, dir) = fresh_store(backend).await;
        let auth = Arc::new(TestAuth::default());
        let receipts = Arc::new(TestReceipts {
            store: store.clone(),
            recorded: Mutex::default(),
        });
        let dyn_store: Arc<dyn EventStore> = wrap(store.clone());
        let feed =
            FeedState::new(dyn_store, auth.clone(), config).with_read_receipts(receipts.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = live_feed::router(feed.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        let h = Harness {
            addr,
            store,
            feed,
            auth,
            receipts,
            agent: principal("alice", Role::Agent, TENANT),
            customer: principal("carol", Role::Customer, TENANT),
            other_customer: principal("olga", Role::Customer, TENANT),
            technician: principal("dave", Role::Technician, TENANT),
            analyst: principal("frank", Role::Analyst, TENANT),
            foreign_agent: principal("zed", Role::Agent, "other"),
            _place: dir,
        };
        let later = Utc::now() + chrono::Duration::hours(1);
        for (token, p) in [
            ("agent", &h.agent),
            ("customer", &h.customer),
            ("other_customer", &h.other_customer),
            ("technician", &h.technician),
            ("analyst", &h.analyst),
            ("foreign_agent", &h.foreign_agent),
        ] {
            h.auth.add(token, p.clone(), later);
        }
        h
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub async fn connect(&self, token: &str) -> Client {
        Client::connect(&format!("{}?token={token}", self.url())).await
    }

    /// Appends `payloads` to `stream` as one command of `actor`.
    pub async fn append(
        &self,
        stream: Uuid,
        actor: &Principal,
        payloads: Vec<EventPayload>,
    ) -> AppendOutcome {
        let req = AppendRequest {
            stream_id: stream,
            expected: ExpectedVersion::Any,
            events: payloads.into_iter().map(NewEvent::new).collect(),
            command_id: Uuid::now_v7(),
            request_fingerprint: None,
            correlation_id: Uuid::now_v7(),
            tenant: actor.tenant.clone(),
            actor: Actor {
                user_id: actor.user_id,
                role: actor.role,
            },
            recorded_at: Utc::now(),
        };
        self.store.append(req).await.expect("append")
    }

    /// A new ticket reported by `reporter`, already fanned out (so rooms
    /// joined afterwards start after it).
    pub async fn ticket(&self, reporter: &Principal) -> TicketId {
        let id = Uuid::now_v7();
        let created = self
            .append(
                id,
                reporter,
                vec![EventPayload::TicketCreated {
                    number: 1,
                    title: "Printer on fire".into(),
                    description: "It is on fire".into(),
                    priority: Priority::High,
                    kind: TicketKind::Incident,
                    reporter: reporter.user_id,
                    location: None,
                    tags: vec![],
                    device: None,
                }],
            )
            .await;
        self.fanned_out(created.position).await;
        id
    }

    /// A comment on `ticket`; returns its position.
    pub async fn comment(
        &self,
        ticket: TicketId,
        author: &Principal,
        body: &str,
        internal: bool,
    ) -> u64 {
        self.append(ticket, author, vec![comment(body, internal)])
            .await
            .position
    }

    /// Waits until the feed has fanned out everything up to `position`.
    pub async fn fanned_out(&self, position: u64) {
        wait_until("feed reaches position", || self.feed.position() >= position).await;
    }
}

pub fn comment(body: &str, internal: bool) -> EventPayload {
    EventPayload::CommentPosted {
        comment_id: Uuid::now_v7(),
        body: body.to_string(),
        internal,
    }
}

/// Polls `cond` until true; fails the test after [`WAIT`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What the server said next.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Json(Value),
    Close(Option<u16>),
    Ended,
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        Client::try_connect(url.into_client_request().expect("request"))
            .await
            .expect("connect")
    }

    pub async fn try_connect(
        request: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Client { ws })
    }

    pub async fn with_header(
        url: &str,
        name: &'static str,
        value: &str,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let mut req = url.into_client_request().expect("request");
        req.headers_mut()
            .insert(name, HeaderValue::from_str(value).expect("header"));
        Client::try_connect(req).await
    }

    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.ws.send(m).await.expect("send");
    }

    /// The next frame (pings are answered by tungstenite and skipped).
    pub async fn next(&mut self) -> Frame {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return Frame::Json(serde_json::from_str(t.as_str()).expect("json frame"))
                }
                Some(Ok(Message::Close(frame))) => {
                    return Frame::Close(frame.map(|f: CloseFrame| u16::from(f.code)))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => panic!("server sent a binary frame"),
                Some(Err(_)) | None => return Frame::Ended,
            }
        }
    }

    /// The next JSON frame of type `kind`, skipping presence and typing.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            match self.next().await {
                Frame::Json(v) if v["type"] == kind => return v,
                Frame::Json(v)
                    if v["type"] == "presence" || v["type"] == "typing" || v["type"] == "read" =>
                {
                    continue
                }
                other => panic!("expected a {kind} frame, got {other:?}"),
            }
        }
    }

    /// The next JSON frame that is not presence, typing or read.
    pub async fn next_main(&mut self) -> Value {
        loop {
            match self.next().await {
                Frame::Json(v)
                    if v["type"] == "presence" || v["type"] == "typing" || v["type"] == "read" =>
                {
                    continue
                }
                Frame::Json(v) => return v,
                other => panic!("expected a frame, got {other:?}"),
            }
        }
    }

    /// Subscribes and returns the `subscribed` or `error` answer.
    pub async fn subscribe(&mut self, room: &str, after: Option<u64>) -> Value {
        let mut frame = json!({"type": "subscribe", "room": room});
        if let Some(after) = after {
            frame["after"] = json!(after);
        }
        self.send(frame).await;
        self.next_main().await
    }

    /// Sends a ping and returns every event frame received before the pong.
    pub async fn events_until_pong(&mut self) -> Vec<Value> {
        self.send(json!({"type": "ping"})).await;
        let mut events = Vec::new();
        loop {
            let v = self.next_main().await;
            match v["type"].as_str() {
                Some("pong") => return events,
                Some("event") => events.push(v),
                _ => panic!("unexpected frame {v}"),
            }
        }
    }

    /// Reads until a close frame or the end; returns the close code.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.next().await {
                Frame::Json(_) => continue,
                Frame::Close(code) => return code,
                Frame::Ended => return None,
            }
        }
    }
}

/// Positions of event frames.
pub fn positions(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["position"].as_u64().expect("position"))
        .collect()
}
