//! The write side: the tickets (one per room, reported by the customers in
//! turn), then comments posted by the agents at a steady rate, each one's
//! acknowledgement time kept by the log position it was given.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::server::Cast;

/// Commands in flight at once; beyond it the pace slips (counted) rather
/// than piling up requests without bound.
const IN_FLIGHT_MAX: usize = 256;
/// Longest a command may take before it counts as an error.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Errors kept word for word.
const ERRORS_KEPT: usize = 10;

/// One acknowledged command.
#[derive(Debug, Clone, Copy)]
pub struct Acked {
    /// The room (ticket index) it went to.
    pub room: usize,
    /// Log position of its event.
    pub position: u64,
    /// When the request was sent.
    pub sent: Instant,
    /// When its 2xx answer arrived.
    pub acked: Instant,
}

/// What the writer did.
#[derive(Debug, Default)]
pub struct Written {
    /// Acknowledged commands.
    pub acked: Vec<Acked>,
    /// Commands sent.
    pub sent: u64,
    /// Commands that failed (non-2xx, transport error, timeout).
    pub errors: u64,
    /// Ticks at which every slot was busy, so the send waited.
    pub late: u64,
    /// The first errors.
    pub first_errors: Vec<String>,
}

/// Creates `count` tickets, reported by the customers in turn.
pub async fn create_tickets(
    http: &reqwest::Client,
    base: &str,
    cast: &Cast,
    count: usize,
) -> anyhow::Result<Vec<Uuid>> {
    let mut tickets = Vec::with_capacity(count);
    for i in 0..count {
        let token = &cast.customers[i % cast.customers.len()];
        let body = json!({
            "title": format!("fanout room {i}"),
            "description": "A ticket many people watch at once.",
            "priority": "medium",
            "kind": "question",
        });
        let r = http
            .post(format!("{base}/api/v1/tickets"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if !status.is_success() {
            bail!("creating ticket {i}: {status} {v}");
        }
        let id = v["id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .with_context(|| format!("no ticket id in {v}"))?;
        tickets.push(id);
    }
    Ok(tickets)
}

/// Where the run posts, and how fast.
pub struct Pace {
    /// Commands per second.
    pub rate_per_s: u32,
    /// Length of the run.
    pub duration: Duration,
}

/// Posts comments round-robin over the rooms at `pace`; raises each
/// room's highest acknowledged position in `room_heads` as answers come.
pub async fn post_comments(
    http: &reqwest::Client,
    base: &str,
    cast: &Arc<Cast>,
    tickets: &Arc<Vec<Uuid>>,
    pace: &Pace,
    room_heads: &Arc<Vec<AtomicU64>>,
    progress: &indicatif::ProgressBar,
) -> Written {
    let total = (u64::from(pace.rate_per_s) * pace.duration.as_secs()).max(1);
    let out = Arc::new(Mutex::new(Written::default()));
    let slots = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    let period = Duration::from_secs_f64(1.0 / f64::from(pace.rate_per_s.max(1)));
    let mut ticker = tokio::time::interval(period);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..total {
        ticker.tick().await;
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                lock(&out).late += 1;
                match slots.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => break,
                }
            }
        };
        let n = n as usize;
        let room = n % tickets.len();
        let url = format!("{base}/api/v1/tickets/{}/comments", tickets[room]);
        let request = http
            .post(url)
            .bearer_auth(&cast.agents[n % cast.agents.len()])
            .timeout(COMMAND_TIMEOUT)
            .json(&json!({"body": format!("fanout comment {n}")}));
        let out = out.clone();
        let room_heads = room_heads.clone();
        let progress = progress.clone();
        tasks.spawn(async move {
            let sent = Instant::now();
            let answer = post(request).await;
            let acked = Instant::now();
            drop(permit);
            progress.inc(1);
            let mut out = lock(&out);
            out.sent += 1;
            match answer {
                Ok(position) => {
                    room_heads[room].fetch_max(position, Ordering::AcqRel);
                    out.acked.push(Acked {
                        room,
                        position,
                        sent,
                        acked,
                    });
                }
                Err(e) => {
                    out.errors += 1;
                    if out.first_errors.len() < ERRORS_KEPT {
                        out.first_errors.push(format!("comment {n}: {e:#}"));
                    }
                }
            }
        });
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let mut out = lock(&out);
    std::mem::take(&mut *out)
}

fn lock(out: &Mutex<Written>) -> std::sync::MutexGuard<'_, Written> {
    out.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends one command; its event's position.
async fn post(request: reqwest::RequestBuilder) -> anyhow::Result<u64> {
    let r = request.send().await?;
    let status = r.status();
    let v: Value = r.json().await?;
    if !status.is_success() {
        bail!("{status} {v}");
    }
    v["position"]
        .as_u64()
        .with_context(|| format!("no position in {v}"))
}
