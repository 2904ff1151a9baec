//! The HTTP load: paced command writers (create, public and internal
//! comments, assignment and the status workflow) and query clients (ticket
//! list, ticket, conversation, statistics). Every non-2xx answer, transport
//! error or timeout is an error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use uuid::Uuid;

use super::metrics::Metrics;
use super::pool::TicketPool;
use super::server::Cast;
use super::BenchSoakArgs;

/// Default churn: this percentage of the WebSocket clients every second.
pub const CHURN_PERCENT_DEFAULT: usize = 2;
/// WebSocket clients per hot ticket (so a command on a hot ticket reaches a
/// few subscribers).
const WS_CLIENTS_PER_HOT_TICKET: usize = 4;
/// Fewest hot tickets.
const HOT_TICKETS_MIN: usize = 50;
/// Most hot tickets.
const HOT_TICKETS_MAX: usize = 1_000;
/// Longest a request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Tickets created in parallel during the setup.
const SETUP_PARALLELISM: usize = 8;
/// Page size of list and conversation queries.
const QUERY_PAGE_LIMIT: usize = 50;
/// The workflow a managed ticket walks, one command per step: the
/// assignment (open → assigned), then these statuses, then reopened.
const STATUS_STEPS: [&str; 4] = ["in_progress", "resolved", "closed", "open"];

/// Hot tickets for a number of WebSocket clients.
pub fn hot_tickets(ws_clients: usize) -> usize {
    (ws_clients / WS_CLIENTS_PER_HOT_TICKET).clamp(HOT_TICKETS_MIN, HOT_TICKETS_MAX)
}

/// A ticket whose workflow one writer drives (so two writers never race
/// on its status).
#[derive(Debug, Clone)]
pub struct Managed {
    id: Uuid,
    /// 0: assign next; 1..: `STATUS_STEPS[step - 1]` next.
    step: usize,
    /// Completed workflow rounds (picks the next assignee).
    round: usize,
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()?)
}

/// Creates the hot tickets (customers report them) and shares them out
/// among the writers.
pub async fn create_initial_tickets(
    base: &str,
    cast: &Arc<Cast>,
    pool: &Arc<TicketPool>,
    metrics: &Arc<Metrics>,
    writers: usize,
    count: usize,
) -> anyhow::Result<Vec<Vec<Managed>>> {
    let http = http_client()?;
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..SETUP_PARALLELISM {
        let (http, base, cast, pool, metrics) = (
            http.clone(),
            base.to_string(),
            cast.clone(),
            pool.clone(),
            metrics.clone(),
        );
        tasks.spawn(async move {
            let mut ids = vec![];
            for n in (lane..count).step_by(SETUP_PARALLELISM) {
                let customer = n % cast.customers.len();
                let token = &cast.customers[customer].token;
                let Some(id) = create_ticket(&http, &base, token, &metrics).await else {
                    bail!(
                        "creating the initial tickets failed: {:?}",
                        metrics.first_errors()
                    );
                };
                pool.add(id, customer);
                ids.push(id);
            }
            Ok::<_, anyhow::Error>(ids)
        });
    }
    let mut managed = vec![Vec::new(); writers];
    let mut n = 0;
    while let Some(joined) = tasks.join_next().await {
        for id in joined.context("setup task")?? {
            managed[n % writers].push(Managed {
                id,
                step: 0,
                round: 0,
            });
            n += 1;
        }
    }
    Ok(managed)
}

/// Starts the writers and the query clients.
pub fn spawn_load(
    base: &str,
    cast: &Arc<Cast>,
    pool: &Arc<TicketPool>,
    metrics: &Arc<Metrics>,
    args: &BenchSoakArgs,
    managed: Vec<Vec<Managed>>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut tasks = vec![];
    let writer_period = period(args.writers, args.commands_per_s);
    for (w, own) in managed.into_iter().enumerate() {
        let writer = Writer {
            w,
            http: http_client()?,
            base: base.to_string(),
            cast: cast.clone(),
            pool: pool.clone(),
            metrics: metrics.clone(),
            own,
            next_own: 0,
            rng: StdRng::seed_from_u64(rand::random()),
        };
        tasks.push(tokio::spawn(writer.run(writer_period, stop.clone())));
    }
    if args.queries_per_s > 0 {
        let query_period = period(args.query_clients, args.queries_per_s);
        for _ in 0..args.query_clients {
            let reader = Reader {
                http: http_client()?,
                base: base.to_string(),
                cast: cast.clone(),
                pool: pool.clone(),
                metrics: metrics.clone(),
                rng: StdRng::seed_from_u64(rand::random()),
            };
            tasks.push(tokio::spawn(reader.run(query_period, stop.clone())));
        }
    }
    Ok(tasks)
}

/// Interval between one task's requests for a total rate over `tasks`.
fn period(tasks: usize, per_s: u32) -> Duration {
    Duration::from_secs_f64(tasks.max(1) as f64 / f64::from(per_s.max(1)))
}

/// Ticks every `period` until the stop; `false` once stopped.
async fn tick(interval: &mut tokio::time::Interval, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = interval.tick() => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

fn interval(period: Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval(period);
    // A slow answer delays the writer; it does not cause a burst after it.
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

/// Sends one request; the answer's JSON on a 2xx, else an error counted.
async fn send(
    request: reqwest::RequestBuilder,
    what: &str,
    metrics: &Metrics,
) -> Option<(Value, Duration)> {
    let started = Instant::now();
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            metrics.error(format!("{what}: {e}"));
            return None;
        }
    };
    let status = response.status();
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) => {
            metrics.error(format!("{what}: {status}, body: {e}"));
            return None;
        }
    };
    let elapsed = started.elapsed();
    if !status.is_success() {
        metrics.error(format!(
            "{what}: {status} {}",
            String::from_utf8_lossy(&body)
        ));
        return None;
    }
    Some((
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        elapsed,
    ))
}

/// Posts a command (with an idempotency key, as a real client does).
async fn command(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    body: Value,
    metrics: &Metrics,
) -> Option<Value> {
    let request = http
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .json(&body);
    let (v, elapsed) = send(request, &format!("POST {path}"), metrics).await?;
    metrics.command(elapsed);
    Some(v)
}

async fn create_ticket(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    metrics: &Metrics,
) -> Option<Uuid> {
    let body = json!({
        "title": "soak: printer on floor 3 jams",
        "description": "Paper jam on every second page since this morning.",
        "priority": "medium",
        "kind": "incident",
    });
    let v = command(http, base, token, "/api/v1/tickets", body, metrics).await?;
    let id = v["id"].as_str().and_then(|s| Uuid::parse_str(s).ok());
    if id.is_none() {
        metrics.error(format!("POST /api/v1/tickets: no id in {v}"));
    }
    id
}

/// One command writer: an agent, who also speaks for customers when they
/// report tickets or reply.
struct Writer {
    w: usize,
    http: reqwest::Client,
    base: String,
    cast: Arc<Cast>,
    pool: Arc<TicketPool>,
    metrics: Arc<Metrics>,
    own: Vec<Managed>,
    next_own: usize,
    rng: StdRng,
}

impl Writer {
    async fn run(mut self, period: Duration, mut stop: watch::Receiver<bool>) {
        let mut interval = interval(period);
        while tick(&mut interval, &mut stop).await {
            self.one().await;
        }
    }

    async fn one(&mut self) {
        let agent = &self.cast.agents[self.w % self.cast.agents.len()];
        let roll = self.rng.random_range(0..100);
        let hot = self.pool.random(&mut self.rng);
        match (roll, hot) {
            (0..5, _) | (_, None) => {
                let customer = self.rng.random_range(0..self.cast.customers.len());
                let token = &self.cast.customers[customer].token;
                if let Some(id) = create_ticket(&self.http, &self.base, token, &self.metrics).await
                {
                    self.pool.add(id, customer);
                    self.own.push(Managed {
                        id,
                        step: 0,
                        round: 0,
                    });
                }
            }
            (5..55, Some(t)) => {
                let body = json!({"body": "Could you try the other tray and tell me?"});
                self.comment(&agent.token, t, body).await;
            }
            (55..70, Some(t)) => {
                let body =
                    json!({"body": "Internal: vendor contract covers this.", "internal": true});
                self.comment(&agent.token, t, body).await;
            }
            (70..80, _) => {
                let customer = self.rng.random_range(0..self.cast.customers.len());
                if let Some(t) = self.pool.random_of(customer, &mut self.rng) {
                    let body = json!({"body": "Still happening, thanks for looking."});
                    let token = self.cast.customers[customer].token.clone();
                    self.comment(&token, t, body).await;
                }
            }
            _ => self.advance(&agent.token.clone()).await,
        }
    }

    async fn comment(&self, token: &str, ticket: Uuid, body: Value) {
        let path = format!("/api/v1/tickets/{ticket}/comments");
        command(&self.http, &self.base, token, &path, body, &self.metrics).await;
    }

    /// The next workflow step of the next of this writer's tickets.
    async fn advance(&mut self, token: &str) {
        if self.own.is_empty() {
            return;
        }
        let i = self.next_own % self.own.len();
        self.next_own = self.next_own.wrapping_add(1);
        let Managed { id, step, round } = self.own[i].clone();
        let (path, body) = if step == 0 {
            let assignee = &self.cast.agents[(self.w + round) % self.cast.agents.len()];
            (
                format!("/api/v1/tickets/{id}/assign"),
                json!({"assignee_id": assignee.id}),
            )
        } else {
            (
                format!("/api/v1/tickets/{id}/status"),
                json!({"status": STATUS_STEPS[step - 1]}),
            )
        };
        if command(&self.http, &self.base, token, &path, body, &self.metrics)
            .await
            .is_some()
        {
            let m = &mut self.own[i];
            if step == STATUS_STEPS.len() {
                m.step = 0;
                m.round += 1;
            } else {
                m.step += 1;
            }
        }
    }
}

/// One query client.
struct Reader {
    http: reqwest::Client,
    base: String,
    cast: Arc<Cast>,
    pool: Arc<TicketPool>,
    metrics: Arc<Metrics>,
    rng: StdRng,
}

impl Reader {
    async fn run(mut self, period: Duration, mut stop: watch::Receiver<bool>) {
        let mut interval = interval(period);
        while tick(&mut interval, &mut stop).await {
            self.one().await;
        }
    }

    async fn one(&mut self) {
        let agent = &self.cast.agents[self.rng.random_range(0..self.cast.agents.len())];
        let customer = &self.cast.customers[self.rng.random_range(0..self.cast.customers.len())];
        let Some(ticket) = self.pool.random(&mut self.rng) else {
            return;
        };
        let roll = self.rng.random_range(0..100);
        let (token, path) = match roll {
            0..15 => (
                &agent.token,
                format!("/api/v1/tickets?limit={QUERY_PAGE_LIMIT}"),
            ),
            15..25 => (
                &agent.token,
                format!("/api/v1/tickets?status=in_progress&limit={QUERY_PAGE_LIMIT}"),
            ),
            25..35 => (
                &customer.token,
                format!("/api/v1/tickets?limit={QUERY_PAGE_LIMIT}"),
            ),
            35..65 => (&agent.token, format!("/api/v1/tickets/{ticket}")),
            65..90 => (
                &agent.token,
                format!("/api/v1/tickets/{ticket}/chat?limit={QUERY_PAGE_LIMIT}"),
            ),
            _ => (&agent.token, "/api/v1/stats?group_by=priority".to_string()),
        };
        let request = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some((_, elapsed)) = send(request, &format!("GET {path}"), &self.metrics).await {
            self.metrics.query(elapsed);
        }
    }
}

/// Fails the setup early when the server refuses the load outright.
pub fn check_setup(metrics: &Metrics) -> anyhow::Result<()> {
    if metrics.errors() > 0 {
        bail!("errors during the setup: {:?}", metrics.first_errors());
    }
    Ok(())
}
