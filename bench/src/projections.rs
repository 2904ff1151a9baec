//! `ticketlog bench projections`: rebuild rate against raw replay rate,
//! restart-to-serving time, and the statistics query's p99, over a
//! generated log in a sled store.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use event_store::{
    Actor, AppendRequest, DispatchChoice, EventPayload, EventStore, ExpectedVersion, KvProvider,
    Location, NewEvent, Pages, Principal, Priority, Role, SledOptions, SledStore, TicketKind,
    TicketStatus,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use projections::error::ProjectionError;
use projections::limits::READ_PAGE_EVENTS;
use projections::model::ReadModel;
use projections::persist::TREE_NAME;
use projections::query::TicketQuery;
use projections::replay::fold_into;
use projections::runner::{Progress, Projections, ProjectionsConfig};
use projections::stats::{GroupBy, StatsQuery};

/// Events each generated ticket's life consists of.
pub const EVENTS_PER_TICKET: u64 = 10;
/// Appends in flight while generating.
pub const GENERATE_CONCURRENCY: usize = 256;
/// Most events held in memory for the fold-only figure.
pub const FOLD_ONLY_EVENTS_MAX: u64 = 200_000;
/// Tenant of the generated log.
pub const BENCH_TENANT: &str = "bench";

/// What to measure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchOptions {
    /// Directory of the sled store (reused when it already holds the log).
    pub dir: PathBuf,
    /// Events in the log (tickets = events / 10).
    pub events: u64,
    /// Statistics queries timed.
    pub stats_queries: u32,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            dir: PathBuf::from("bench-projections"),
            events: 1_000_000,
            stats_queries: 200,
        }
    }
}

/// The figures, as `ticketlog bench projections --json` prints them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectionBenchReport {
    /// Events in the log.
    pub events: u64,
    /// Tickets in the log.
    pub tickets: u64,
    /// Cores available.
    pub nproc: usize,
    /// Seconds spent generating the log (0 when reused).
    pub generate_s: f64,
    /// `read_all` + decode of the whole log, events per second.
    pub raw_replay_events_per_s: f64,
    /// Folding the whole log into a fresh read model, events per second.
    pub rebuild_events_per_s: f64,
    /// Folding alone (events already in memory, first `FOLD_ONLY_EVENTS_MAX`
    /// of the log), events per second: the fold's own cost without reads.
    pub fold_only_events_per_s: f64,
    /// Writing the snapshot of the full model, seconds.
    pub snapshot_write_s: f64,
    /// Size of that snapshot, bytes.
    pub snapshot_bytes: u64,
    /// Reopening the store, loading the snapshot, replaying the tail and
    /// answering a first query, seconds.
    pub restart_to_serving_s: f64,
    /// Of which the projections' part (snapshot load + tail), seconds.
    pub projections_open_s: f64,
    /// Statistics query over all tickets: median, milliseconds.
    pub stats_query_p50_ms: f64,
    /// Statistics query over all tickets: 99th percentile, milliseconds.
    pub stats_query_p99_ms: f64,
}

fn bench_err(e: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Snapshot(format!("bench: {e}"))
}

fn uid(kind: u128, n: u64) -> Uuid {
    Uuid::from_u128((kind << 96) | u128::from(n))
}

/// The appends of ticket `i`'s life: `EVENTS_PER_TICKET` events in five
/// commands at realistic offsets.
fn ticket_life(i: u64) -> Vec<(i64, Actor, Vec<EventPayload>)> {
    use TicketStatus::*;
    let customer = Actor {
        user_id: uid(1, i % 5000),
        role: Role::Customer,
    };
    let agent = Actor {
        user_id: uid(2, i % 20),
        role: Role::Agent,
    };
    let tech = Actor {
        user_id: uid(3, i % 50),
        role: Role::Technician,
    };
    let priority = [
        Priority::Critical,
        Priority::High,
        Priority::Medium,
        Priority::Low,
    ][(i % 4) as usize];
    let kind = [
        TicketKind::Incident,
        TicketKind::Maintenance,
        TicketKind::ChangeRequest,
        TicketKind::Question,
    ][(i % 3) as usize];
    let st = |from, to| EventPayload::TicketStatusChanged {
        from,
        to,
        note: None,
    };
    let comment = |n: u64, internal| EventPayload::CommentPosted {
        comment_id: uid(5, i * 4 + n),
        body: format!(
            "Comment {n} on ticket {i}: the unit on floor {} needs attention.",
            i % 9
        ),
        internal,
    };
    let resolve_after = 600 + ((i * 7919) % 86_400) as i64;
    let last = if i.is_multiple_of(5) {
        (
            tech.clone(),
            vec![
                EventPayload::DispatchAccepted {
                    dispatch_id: uid(6, i),
                    technician: tech.user_id,
                },
                comment(3, false),
                EventPayload::ReadReceiptRecorded {
                    user: tech.user_id,
                    position: 1,
                },
            ],
        )
    } else {
        (
            agent.clone(),
            vec![
                st(InProgress, Resolved),
                comment(3, false),
                EventPayload::ReadReceiptRecorded {
                    user: agent.user_id,
                    position: 1,
                },
            ],
        )
    };
    vec![
        (
            0,
            customer.clone(),
            vec![EventPayload::TicketCreated {
                number: i + 1,
                title: format!("Ticket {i}: printer {} jammed", i % 97),
                description: format!("Reported by customer {} at site {}.", i % 5000, i % 40),
                priority,
                kind,
                reporter: customer.user_id,
                location: Some(Location {
                    site: Some(format!("site-{}", i % 40)),
                    ..Location::default()
                }),
                tags: vec!["bench".into()],
                device: None,
            }],
        ),
        (
            60,
            agent.clone(),
            vec![
                EventPayload::TicketAssigned {
                    assignee: agent.user_id,
                    previous: None,
                },
                st(Open, Assigned),
            ],
        ),
        (
            300,
            agent.clone(),
            vec![comment(1, false), comment(2, true)],
        ),
        (
            600,
            agent.clone(),
            vec![
                st(Assigned, InProgress),
                EventPayload::DispatchRequested {
                    dispatch_id: uid(6, i),
                    technician: Some(tech.user_id),
                    choice: DispatchChoice::Nearest,
                    distance_km: Some((i % 30) as f64),
                    eta_minutes: Some((i % 45) as f64),
                    radius_km: 50.0,
                    candidates: vec![],
                },
            ],
        ),
        (resolve_after, last.0, last.1),
    ]
}

async fn generate(
    store: &Arc<SledStore>,
    tickets: u64,
    progress: &Option<Progress>,
) -> Result<(), ProjectionError> {
    let base = Utc
        .with_ymd_and_hms(2025, 1, 6, 0, 0, 0)
        .single()
        .ok_or_else(|| bench_err("base time"))?;
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let results = futures::stream::iter(0..tickets)
        .map(|i| {
            let store = store.clone();
            let done = done.clone();
            let progress = progress.clone();
            async move {
                let stream_id = uid(4, i);
                let created = base + chrono::Duration::seconds(i as i64 * 10);
                let mut version = 0u64;
                for (n, (offset, actor, payloads)) in ticket_life(i).into_iter().enumerate() {
                    let count = payloads.len() as u64;
                    let req = AppendRequest {
                        stream_id,
                        expected: ExpectedVersion::Exact(version),
                        events: payloads.into_iter().map(NewEvent::new).collect(),
                        command_id: uid(7, i * 8 + n as u64),
                        request_fingerprint: None,
                        correlation_id: uid(7, i * 8 + n as u64),
                        tenant: BENCH_TENANT.into(),
                        actor,
                        recorded_at: created + chrono::Duration::seconds(offset),
                    };
                    store.append(req).await?;
                    version += count;
                }
                let d = done.fetch_add(EVENTS_PER_TICKET, std::sync::atomic::Ordering::Relaxed)
                    + EVENTS_PER_TICKET;
                if let Some(p) = &progress {
                    if d.is_multiple_of(10_000) {
                        p(d, tickets * EVENTS_PER_TICKET);
                    }
                }
                Ok::<(), ProjectionError>(())
            }
        })
        .buffer_unordered(GENERATE_CONCURRENCY);
    futures::pin_mut!(results);
    while let Some(r) = results.next().await {
        r?;
    }
    Ok(())
}

fn open_store(opts: &BenchOptions) -> Result<Arc<SledStore>, ProjectionError> {
    Ok(SledStore::open(
        opts.dir.join("store"),
        SledOptions::default(),
    )?)
}

/// Runs the benchmark; `progress` sees generation progress.
pub async fn run(
    opts: &BenchOptions,
    progress: Option<Progress>,
) -> Result<ProjectionBenchReport, ProjectionError> {
    let tickets = opts.events / EVENTS_PER_TICKET;
    let events = tickets * EVENTS_PER_TICKET;
    let store = open_store(opts)?;
    let mut generate_s = 0.0;
    let head = store.head().await?;
    if head != events {
        if head != 0 {
            return Err(bench_err(format!(
                "{} holds {head} events, not {events}; use an empty directory",
                opts.dir.display()
            )));
        }
        let started = Instant::now();
        generate(&store, tickets, &progress).await?;
        generate_s = started.elapsed().as_secs_f64();
    }
    let dyn_store: Arc<dyn EventStore> = store.clone();

    // Raw replay: read and decode everything, fold nothing.
    let started = Instant::now();
    let mut seen = 0u64;
    let mut kept = Vec::new();
    let mut pages = Pages::log(&*dyn_store, 1).page_size(READ_PAGE_EVENTS);
    while let Some(page) = pages.next_page().await? {
        seen += page.len() as u64;
        if (kept.len() as u64) < FOLD_ONLY_EVENTS_MAX {
            kept.extend(page);
        }
    }
    let raw_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut model = ReadModel::default();
    for e in &kept {
        model
            .apply(e)
            .map_err(|g| bench_err(format!("gap at {}", g.got)))?;
    }
    let fold_only_events_per_s = kept.len() as f64 / started.elapsed().as_secs_f64();
    drop((kept, model));

    // Rebuild: the same reads, folded into a fresh model.
    let started = Instant::now();
    let model = fold_into(ReadModel::default(), dyn_store.clone(), events, None).await?;
    let rebuild_s = started.elapsed().as_secs_f64();

    // Snapshot of the full model.
    let started = Instant::now();
    let encoded = projections::persist::encode(&model)?;
    let snapshot_bytes = encoded.len();
    store.drop_tree(TREE_NAME)?;
    projections::persist::SnapshotSlot::new(store.tree(TREE_NAME)?)
        .save(model.position, encoded)?;
    let snapshot_write_s = started.elapsed().as_secs_f64();
    drop(model);

    // Stats over every ticket, through the live handle.
    let (projections, _) = Projections::open(
        dyn_store.clone(),
        store.clone(),
        ProjectionsConfig::default(),
    )
    .await?;
    let analyst = Principal {
        user_id: uid(8, 1),
        tenant: BENCH_TENANT.into(),
        role: Role::Analyst,
        name: "analyst".into(),
    };
    let now = Utc::now();
    let mut timings = Vec::with_capacity(opts.stats_queries as usize);
    for q in 0..opts.stats_queries {
        let group_by = [
            GroupBy::Priority,
            GroupBy::Kind,
            GroupBy::Assignee,
            GroupBy::Site,
            GroupBy::Week,
        ][q as usize % 5];
        let started = Instant::now();
        let report = projections.stats(
            &analyst,
            &StatsQuery {
                from: None,
                to: None,
                group_by,
            },
            now,
        )?;
        timings.push(started.elapsed());
        if report.total.count != tickets {
            return Err(bench_err(format!(
                "stats counted {} tickets of {tickets}",
                report.total.count
            )));
        }
    }
    timings.sort_unstable();
    let pct = |p: usize| -> f64 {
        let rank = (p * timings.len()).div_ceil(100).max(1);
        timings
            .get(rank - 1)
            .copied()
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
            * 1000.0
    };
    let (stats_query_p50_ms, stats_query_p99_ms) = (pct(50), pct(99));

    // Restart: close everything, reopen the store and the projections,
    // answer a first query.
    drop(projections);
    store.close().await?;
    drop(dyn_store);
    drop(store);
    let started = Instant::now();
    // `SledStore::open` itself waits (bounded) for a just-dropped handle's lock.
    let store = open_store(opts)?;
    let dyn_store: Arc<dyn EventStore> = store.clone();
    let open_started = Instant::now();
    let (projections, report) =
        Projections::open(dyn_store, store.clone(), ProjectionsConfig::default()).await?;
    let projections_open_s = open_started.elapsed().as_secs_f64();
    let admin = Principal {
        user_id: uid(8, 2),
        tenant: BENCH_TENANT.into(),
        role: Role::Admin,
        name: "admin".into(),
    };
    let first = projections.tickets(&admin, &TicketQuery::default())?;
    let restart_to_serving_s = started.elapsed().as_secs_f64();
    if first.items.is_empty()
        || !matches!(
            report.snapshot,
            projections::runner::SnapshotSource::Loaded { .. }
        )
    {
        return Err(bench_err(format!(
            "restart did not serve from the snapshot: {report:?}"
        )));
    }
    drop(projections);
    store.close().await?;

    Ok(ProjectionBenchReport {
        events: seen,
        tickets,
        nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
        generate_s,
        raw_replay_events_per_s: seen as f64 / raw_s,
        rebuild_events_per_s: events as f64 / rebuild_s,
        fold_only_events_per_s,
        snapshot_write_s,
        snapshot_bytes,
        restart_to_serving_s,
        projections_open_s,
        stats_query_p50_ms,
        stats_query_p99_ms,
    })
}
