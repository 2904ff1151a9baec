//! The WebSocket clients: each connects to `/ws` with a token of a user
//! allowed to see its ticket, subscribes to one ticket room (client `i` to
//! room `i % rooms`), and notes when each event frame arrived, by position.
//! Small buffers, so that 10,000 of them fit in a modest bench process.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::server::Cast;
use crate::ws_client::{self, Socket};

/// Handshakes in flight during the ramp (the listen backlog is finite).
const RAMP_HANDSHAKES_PARALLEL: usize = 64;
/// Longest connect + subscribe before it counts as an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Initial read buffer of a client (tungstenite's default is 128 KiB).
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Largest frame a client accepts (the server's event frames are small).
const FRAME_BYTES_MAX: usize = 64 * 1024;
/// Every this many clients of a room, one is an agent; the others are the
/// ticket's reporter (a customer may see only their own tickets).
const AGENT_EVERY: usize = 4;
/// Errors kept word for word.
const ERRORS_KEPT: usize = 10;

/// What every client shares with the bench, updated as it goes.
#[derive(Debug)]
pub struct Shared {
    /// Clients connected and subscribed.
    pub connected: AtomicUsize,
    /// Clients that could not connect or subscribe.
    pub failed: AtomicUsize,
    /// Clients subscribed, per room.
    pub members: Vec<AtomicUsize>,
    /// Last event position each client received.
    pub last_position: Vec<AtomicU64>,
    /// Event frames received by all clients.
    pub events: AtomicU64,
    /// `presence` frames received by all clients (one per member at every join).
    pub presence: AtomicU64,
    /// Errors (connect, error frames, unexpected closes).
    pub errors: AtomicU64,
    /// The first errors.
    pub first_errors: Mutex<Vec<String>>,
}

impl Shared {
    /// Counters for `clients` clients over `rooms` rooms.
    pub fn new(clients: usize, rooms: usize) -> Self {
        Shared {
            connected: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            members: (0..rooms).map(|_| AtomicUsize::new(0)).collect(),
            last_position: (0..clients).map(|_| AtomicU64::new(0)).collect(),
            events: AtomicU64::new(0),
            presence: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            first_errors: Mutex::new(vec![]),
        }
    }

    /// Counts an error and keeps the first ones.
    pub fn error(&self, e: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_errors.lock().unwrap_or_else(|p| p.into_inner());
        if first.len() < ERRORS_KEPT {
            first.push(e);
        }
    }
}

/// What one client saw.
#[derive(Debug, Default)]
pub struct Received {
    /// Its room's index.
    pub room: usize,
    /// Whether it was subscribed.
    pub subscribed: bool,
    /// Event positions, with the moment each frame arrived.
    pub events: Vec<(u64, Instant)>,
}

/// The part of a server frame the clients look at.
#[derive(Deserialize)]
struct FrameHead<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default)]
    position: Option<u64>,
}

/// Starts `count` clients, spread evenly over `tickets`; they run until
/// `stop` turns true.
pub fn spawn(
    addr: &str,
    cast: &Arc<Cast>,
    tickets: &Arc<Vec<Uuid>>,
    shared: &Arc<Shared>,
    count: usize,
    stop: &watch::Receiver<bool>,
) -> Vec<JoinHandle<Received>> {
    let ramp = Arc::new(Semaphore::new(RAMP_HANDSHAKES_PARALLEL));
    (0..count)
        .map(|i| {
            let room = i % tickets.len();
            // Tickets are reported round-robin by the customers.
            let token = if (i / tickets.len()).is_multiple_of(AGENT_EVERY) {
                cast.agents[(i / tickets.len() / AGENT_EVERY) % cast.agents.len()].clone()
            } else {
                cast.customers[room % cast.customers.len()].clone()
            };
            let client = Client {
                i,
                url: format!("ws://{addr}/ws?token={token}"),
                room_name: format!("ticket:{}", tickets[room]),
                shared: shared.clone(),
                stop: stop.clone(),
                received: Received {
                    room,
                    ..Received::default()
                },
            };
            tokio::spawn(client.run(ramp.clone()))
        })
        .collect()
}

struct Client {
    i: usize,
    url: String,
    room_name: String,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    received: Received,
}

impl Client {
    async fn run(mut self, ramp: Arc<Semaphore>) -> Received {
        let permit = ramp.acquire_owned().await.ok();
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, self.connect()).await;
        drop(permit);
        let mut ws = match connected {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => return self.failed(format!("{e:#}")),
            Err(_) => return self.failed(format!("not subscribed within {CONNECT_TIMEOUT:?}")),
        };
        self.received.subscribed = true;
        self.shared.members[self.received.room].fetch_add(1, Ordering::Relaxed);
        self.shared.connected.fetch_add(1, Ordering::Relaxed);
        if self.drain(&mut ws).await {
            self.close(ws).await;
        }
        self.received
    }

    fn failed(self, e: String) -> Received {
        self.shared.failed.fetch_add(1, Ordering::Relaxed);
        self.give_up();
        self.shared.error(format!("client {}: {e}", self.i));
        self.received
    }

    async fn connect(&mut self) -> anyhow::Result<Socket> {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(0)
            .max_message_size(Some(FRAME_BYTES_MAX))
            .max_frame_size(Some(FRAME_BYTES_MAX));
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(self.url.as_str(), Some(config), false)
                .await?;
        let subscribe = json!({"type": "subscribe", "room": self.room_name});
        ws.send(Message::Text(subscribe.to_string().into())).await?;
        loop {
            let msg = ws
                .next()
                .await
                .ok_or_else(|| anyhow!("closed before subscribed"))??;
            match msg {
                Message::Text(t) if self.frame(t.as_str())? == Kind::Subscribed => return Ok(ws),
                Message::Close(f) => bail!("closed before subscribed: {f:?}"),
                _ => {}
            }
        }
    }

    /// Tells the drain not to wait for this client (it counts as an error).
    fn give_up(&self) {
        self.shared.last_position[self.i].store(u64::MAX, Ordering::Release);
    }

    /// Notes one server frame. An error frame is an error.
    fn frame(&mut self, text: &str) -> anyhow::Result<Kind> {
        let at = Instant::now();
        let head: FrameHead = serde_json::from_str(text)?;
        Ok(match (head.kind, head.position) {
            ("event", Some(p)) => {
                self.received.events.push((p, at));
                self.shared.last_position[self.i].store(p, Ordering::Release);
                self.shared.events.fetch_add(1, Ordering::Relaxed);
                Kind::Event
            }
            ("subscribed", _) => Kind::Subscribed,
            ("presence", _) => {
                self.shared.presence.fetch_add(1, Ordering::Relaxed);
                Kind::Other
            }
            ("error", _) => bail!("error frame: {text}"),
            _ => Kind::Other,
        })
    }

    /// Reads until the stop (true) or the connection's end (false).
    async fn drain(&mut self, ws: &mut Socket) -> bool {
        let mut stop = self.stop.clone();
        loop {
            let msg = tokio::select! {
                msg = ws.next() => msg,
                _ = stop.wait_for(|s| *s) => return true,
            };
            let Some(problem) = ws_client::problem(msg, |t| self.frame(t).map(drop)) else {
                continue;
            };
            self.shared.error(format!("client {}: {problem}", self.i));
            self.give_up();
            return false;
        }
    }

    /// A clean close: the client's close frame, then the server's.
    async fn close(&self, ws: Socket) {
        let _ = ws_client::close(ws).await;
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Subscribed,
    Event,
    Other,
}
