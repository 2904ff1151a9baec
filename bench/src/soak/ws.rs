//! WebSocket clients: each connects to `/ws` with its user's token,
//! subscribes to a ticket room (customers: one of their own tickets; some
//! clients also to `tickets`), and drains its frames, counting events.
//! The churn asks random clients to close and reconnect, resuming each room
//! `after` the last position seen. An error frame, a close the client did
//! not ask for, a broken stream or a slow handshake is an error.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use futures::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::metrics::Metrics;
use super::pool::TicketPool;
use super::server::{Cast, ServerChild};
use crate::ws_client::{self, Socket, CLOSE_TIMEOUT};

/// Every this many clients one also joins the `tickets` room (its frames
/// fan out to every member, so a few members are plenty).
const TICKETS_ROOM_EVERY: usize = 50;
/// Every this many clients one is an agent; the others are customers.
const AGENT_EVERY: usize = 4;
/// Handshakes in flight during the initial ramp (the listen backlog is finite).
const RAMP_HANDSHAKES_PARALLEL: usize = 32;
/// Longest connect + subscribe before it counts as an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Interval between two churn batches.
const CHURN_PERIOD: Duration = Duration::from_secs(1);
/// Delay of the first churn batch after the run starts.
const CHURN_PHASE: Duration = Duration::from_millis(500);
/// Pause before reconnecting after a failure.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(500);

/// The running clients.
pub struct Clients {
    /// Their tasks (they end after the stop).
    pub tasks: Vec<JoinHandle<()>>,
    /// One per client: notified to make it reconnect.
    pub churn: Arc<Vec<Arc<Notify>>>,
}

/// The part of a server frame the clients look at.
#[derive(Deserialize)]
struct FrameHead {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    room: Option<String>,
    #[serde(default)]
    position: Option<u64>,
}

/// Starts `count` clients; the first connections are throttled.
pub fn spawn_clients(
    addr: &str,
    cast: &Arc<Cast>,
    pool: &Arc<TicketPool>,
    metrics: &Arc<Metrics>,
    count: usize,
    stop: &watch::Receiver<bool>,
) -> Clients {
    let ramp = Arc::new(Semaphore::new(RAMP_HANDSHAKES_PARALLEL));
    let churn: Arc<Vec<Arc<Notify>>> =
        Arc::new((0..count).map(|_| Arc::new(Notify::new())).collect());
    let tasks = (0..count)
        .map(|i| {
            let client = Client {
                i,
                addr: addr.to_string(),
                cast: cast.clone(),
                pool: pool.clone(),
                metrics: metrics.clone(),
                churn: churn[i].clone(),
                stop: stop.clone(),
                positions: HashMap::new(),
                rooms: Vec::new(),
            };
            tokio::spawn(client.run(ramp.clone()))
        })
        .collect();
    Clients { tasks, churn }
}

/// Waits until `count` clients are connected and subscribed.
pub async fn wait_connected(
    metrics: &Metrics,
    count: usize,
    timeout: Duration,
    server: &mut ServerChild,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let connected = metrics.ws_connected.load(Ordering::Relaxed);
        if connected >= count as i64 {
            return Ok(());
        }
        if let Some(status) = server.exited() {
            bail!("the server exited during the ramp: {status}");
        }
        if Instant::now() > deadline {
            bail!(
                "{connected} of {count} WebSocket clients connected after {timeout:?}; errors: {:?}",
                metrics.first_errors()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every [`CHURN_PERIOD`], asks `per_s` random clients to reconnect.
pub fn spawn_churn(
    churn: Arc<Vec<Arc<Notify>>>,
    per_s: usize,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let per_s = per_s.min(churn.len());
        if per_s == 0 {
            return;
        }
        let mut rng = StdRng::seed_from_u64(rand::random());
        // Half a period out of phase with the samples (taken on whole
        // seconds), so a sample never lands on a batch's reconnects.
        let mut interval =
            tokio::time::interval_at(tokio::time::Instant::now() + CHURN_PHASE, CHURN_PERIOD);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.changed() => return,
            }
            for i in rand::seq::index::sample(&mut rng, churn.len(), per_s) {
                churn[i].notify_one();
            }
            metrics
                .ws_churned
                .fetch_add(per_s as u64, Ordering::Relaxed);
        }
    })
}

/// Why a connection ended.
enum Ended {
    Churn,
    Stop,
    Lost,
}

struct Client {
    i: usize,
    addr: String,
    cast: Arc<Cast>,
    pool: Arc<TicketPool>,
    metrics: Arc<Metrics>,
    churn: Arc<Notify>,
    stop: watch::Receiver<bool>,
    /// Last event position seen per room, to resume from.
    positions: HashMap<String, u64>,
    /// Rooms joined (chosen at the first connect, kept across reconnects).
    rooms: Vec<String>,
}

impl Client {
    async fn run(mut self, ramp: Arc<Semaphore>) {
        let mut rng = StdRng::seed_from_u64(rand::random());
        let token = self.choose_rooms(&mut rng);
        let mut first = Some(ramp);
        loop {
            if *self.stop.borrow() {
                return;
            }
            let permit = match first.take() {
                Some(ramp) => ramp.acquire_owned().await.ok(),
                None => None,
            };
            let started = Instant::now();
            let connected = tokio::time::timeout(CONNECT_TIMEOUT, self.connect(&token)).await;
            drop(permit);
            let mut ws = match connected {
                Ok(Ok(ws)) => ws,
                Ok(Err(e)) => {
                    self.metrics.error(format!("ws client {}: {e:#}", self.i));
                    self.backoff().await;
                    continue;
                }
                Err(_) => {
                    self.metrics.error(format!(
                        "ws client {}: not subscribed within {CONNECT_TIMEOUT:?}",
                        self.i
                    ));
                    self.backoff().await;
                    continue;
                }
            };
            self.metrics.connect(started.elapsed());
            self.metrics.ws_connected.fetch_add(1, Ordering::Relaxed);
            let ended = self.drain(&mut ws).await;
            self.metrics.ws_connected.fetch_sub(1, Ordering::Relaxed);
            match ended {
                Ended::Lost => self.backoff().await,
                Ended::Churn => self.close(ws).await,
                Ended::Stop => {
                    self.close(ws).await;
                    return;
                }
            }
        }
    }

    /// Picks the user and the rooms; returns the token.
    fn choose_rooms(&mut self, rng: &mut StdRng) -> String {
        let (token, ticket) = if self.i.is_multiple_of(AGENT_EVERY) {
            let agent = &self.cast.agents[(self.i / AGENT_EVERY) % self.cast.agents.len()];
            (agent.token.clone(), self.pool.random(rng))
        } else {
            let c = self.i % self.cast.customers.len();
            (
                self.cast.customers[c].token.clone(),
                self.pool.random_of(c, rng),
            )
        };
        if let Some(t) = ticket {
            self.rooms.push(format!("ticket:{t}"));
        }
        if self.i.is_multiple_of(TICKETS_ROOM_EVERY) || self.rooms.is_empty() {
            self.rooms.push("tickets".to_string());
        }
        token
    }

    async fn backoff(&mut self) {
        tokio::select! {
            _ = tokio::time::sleep(RECONNECT_BACKOFF) => {}
            _ = self.stop.changed() => {}
        }
    }

    /// Connects, joins every room (resuming after the last position seen)
    /// and waits until each is confirmed.
    async fn connect(&mut self, token: &str) -> anyhow::Result<Socket> {
        let url = format!("ws://{}/ws?token={token}", self.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
        for room in &self.rooms {
            let frame = match self.positions.get(room) {
                Some(after) => json!({"type": "subscribe", "room": room, "after": after}),
                None => json!({"type": "subscribe", "room": room}),
            };
            ws.send(Message::Text(frame.to_string().into())).await?;
        }
        let mut pending = self.rooms.len();
        while pending > 0 {
            let msg = ws
                .next()
                .await
                .ok_or_else(|| anyhow!("closed before subscribed"))??;
            let subscribed = match msg {
                Message::Text(t) => self.frame(t.as_str())? == "subscribed",
                Message::Close(f) => bail!("closed before subscribed: {f:?}"),
                _ => false,
            };
            if subscribed {
                pending -= 1;
            }
        }
        Ok(ws)
    }

    /// Counts one server frame; its type. An error frame is an error.
    fn frame(&mut self, text: &str) -> anyhow::Result<String> {
        self.metrics.ws_frames.fetch_add(1, Ordering::Relaxed);
        let head: FrameHead = serde_json::from_str(text)?;
        match head.kind.as_str() {
            "event" => {
                self.metrics.ws_events.fetch_add(1, Ordering::Relaxed);
                if let (Some(room), Some(p)) = (head.room, head.position) {
                    self.positions.insert(room, p);
                }
            }
            "error" => bail!("error frame: {text}"),
            _ => {}
        }
        Ok(head.kind)
    }

    /// Reads until the churn, the stop or the connection's end.
    async fn drain(&mut self, ws: &mut Socket) -> Ended {
        let churn = self.churn.clone();
        loop {
            let msg = tokio::select! {
                msg = ws.next() => msg,
                _ = churn.notified() => return Ended::Churn,
                _ = self.stop.changed() => return Ended::Stop,
            };
            let Some(problem) = ws_client::problem(msg, |t| self.frame(t).map(drop)) else {
                continue;
            };
            self.metrics
                .error(format!("ws client {}: {problem}", self.i));
            return Ended::Lost;
        }
    }

    /// A clean close: the client's close frame, then the server's.
    async fn close(&self, ws: Socket) {
        match ws_client::close(ws).await {
            Ok(Ok(())) | Ok(Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed)) => {}
            Ok(Err(e)) => self
                .metrics
                .error(format!("ws client {}: closing: {e}", self.i)),
            Err(_) => self.metrics.error(format!(
                "ws client {}: no close from the server within {CLOSE_TIMEOUT:?}",
                self.i
            )),
        }
    }
}
