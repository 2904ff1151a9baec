//! `ticketlog bench http`: an in-process server on 127.0.0.1:0 over a fresh
//! store, 50 concurrent HTTP clients (each its own user and connection)
//! posting comments to 1,000 tickets with valid JWTs; commands/s, p50/p99
//! latency; then, in the same run and on the same store, the raw append
//! rate of the event store with the same concurrency as the ceiling.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use clap::Args;
use command_api::auth::JwtAuth;
use command_api::http::rate_limit::RateLimit;
use command_api::http::{AppState, HttpOptions};
use event_store::{
    Actor, AppendRequest, EventPayload, EventStore, ExpectedVersion, NewEvent, PgOptions, PgStore,
    Principal, Role, SledOptions, SledStore, Storage,
};
use hdrhistogram::Histogram;
use rand::RngCore;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

/// Slowest latency the histogram holds, in microseconds.
const LATENCY_MAX_MICROS: u64 = 60_000_000;
/// Comments posted before measuring (connections, caches, snapshots warm).
const WARMUP_REQUESTS: u64 = 2_000;
/// Events appended per writer in the store-ceiling phase.
const CEILING_EVENTS_PER_WRITER: u64 = 1_000;
/// Worker threads: the issue's machine has 2 cores, shared by clients and server.
const BENCH_WORKER_THREADS_DEFAULT: usize = 2;

/// `ticketlog bench http`.
#[derive(Debug, Args)]
pub struct BenchHttpArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Tickets commented on.
    #[arg(long, default_value_t = 1000)]
    tickets: usize,
    /// Comments posted in the measured phase.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Directory for the bench's store (default: a temporary directory).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Measure on this PostgreSQL store instead of a sled one
    /// (`postgres://USER@HOST:PORT/DB`, best an empty database: the
    /// bench's events stay in its log).
    #[arg(long, env = "TICKETLOG_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Tokio worker threads shared by clients and server (default: 2, the
    /// issue's machine, capped at the cores present).
    #[arg(long)]
    worker_threads: Option<usize>,
}

/// The bench's answer.
#[derive(Debug, Serialize)]
struct Report {
    /// `sled` or `postgres`.
    store: &'static str,
    commands_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    store_ceiling_events_per_s: f64,
    requests: u64,
    errors: u64,
    clients: usize,
    tickets: usize,
    elapsed_s: f64,
    cores: usize,
    worker_threads: usize,
}

/// Runs the benchmark and prints the report.
pub fn run(args: BenchHttpArgs) -> anyhow::Result<ExitCode> {
    if args.clients == 0 || args.tickets == 0 {
        bail!("--clients and --tickets must be at least 1");
    }
    // Warnings only (a refused command is worth seeing; per-request lines are not).
    command_api::logging::init(command_api::logging::LogFormat::Text, "warn");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let worker_threads = args
        .worker_threads
        .unwrap_or_else(|| BENCH_WORKER_THREADS_DEFAULT.min(cores))
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .enable_all()
        .build()?;
    let report = runtime.block_on(bench(&args, cores, worker_threads))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "bench http ({}): {} clients, {} tickets, {} comments in {:.2} s ({} errors)\n  \
             {:.0} commands/s   p50 {:.2} ms   p99 {:.2} ms   p99.9 {:.2} ms   max {:.2} ms\n  \
             store ceiling (raw appends, same store, {} writers): {:.0} events/s\n  \
             {} cores, {} runtime worker threads shared by clients and server",
            report.store,
            report.clients,
            report.tickets,
            report.requests,
            report.elapsed_s,
            report.errors,
            report.commands_per_s,
            report.p50_ms,
            report.p99_ms,
            report.p999_ms,
            report.max_ms,
            report.clients,
            report.store_ceiling_events_per_s,
            report.cores,
            report.worker_threads
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn bench(
    args: &BenchHttpArgs,
    cores: usize,
    worker_threads: usize,
) -> anyhow::Result<Report> {
    let temp = tempfile::tempdir()?;
    let dir = args
        .data
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    let (store, store_name): (Arc<dyn Storage>, _) = match &args.database_url {
        Some(url) => (
            PgStore::open(url, PgOptions::default())
                .await
                .context("opening the PostgreSQL store")?,
            "postgres",
        ),
        None => (
            SledStore::open(dir.join("store"), SledOptions::default())
                .context("opening the bench store")?,
            "sled",
        ),
    };
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let jwt = JwtAuth::hs256(&secret, 3600)?;
    // The bench measures the command path, not the limiter: 50 users at
    // 400+ requests/s each would trip the production default.
    let options = HttpOptions {
        rate_limit: RateLimit {
            per_second: 1e9,
            burst: 1e9,
        },
        ..HttpOptions::default()
    };
    let store_dyn: Arc<dyn EventStore> = store.clone();
    let state = AppState::open(store_dyn.clone(), store.clone(), jwt, options).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(command_api::http::serve(
        listener,
        state.clone(),
        async move {
            let _ = stop_rx.await;
        },
    ));

    let principals: Vec<Principal> = (0..args.clients)
        .map(|i| Principal {
            user_id: Uuid::now_v7(),
            tenant: "bench".into(),
            role: Role::Agent,
            name: format!("agent-{i}"),
        })
        .collect();
    let tokens: Vec<String> = principals
        .iter()
        .map(|p| state.jwt().issue(p, Utc::now()).map(|t| t.token))
        .collect::<Result<_, _>>()?;
    let clients: Vec<reqwest::Client> = (0..args.clients)
        .map(|_| reqwest::Client::builder().pool_max_idle_per_host(1).build())
        .collect::<Result<_, _>>()?;
    let base = format!("http://{addr}");

    // Tickets, created over HTTP by the clients.
    let tickets = create_tickets(&clients, &tokens, &base, args.tickets).await?;
    let tickets = Arc::new(tickets);

    // Warm-up, then the measured phase.
    run_phase(
        &clients,
        &tokens,
        &base,
        &tickets,
        WARMUP_REQUESTS.min(args.requests),
    )
    .await?;
    let started = Instant::now();
    let (histogram, errors) = run_phase(&clients, &tokens, &base, &tickets, args.requests).await?;
    let elapsed = started.elapsed();

    // The ceiling: raw appends on the same store, same concurrency.
    let ceiling = store_ceiling(&store_dyn, &principals, &tickets).await?;

    let _ = stop_tx.send(());
    server.await??;
    state.shutdown().await;
    store.close().await?;

    let ok = args.requests.saturating_sub(errors);
    Ok(Report {
        store: store_name,
        commands_per_s: ok as f64 / elapsed.as_secs_f64(),
        p50_ms: histogram.value_at_quantile(0.50) as f64 / 1000.0,
        p99_ms: histogram.value_at_quantile(0.99) as f64 / 1000.0,
        p999_ms: histogram.value_at_quantile(0.999) as f64 / 1000.0,
        max_ms: histogram.max() as f64 / 1000.0,
        store_ceiling_events_per_s: ceiling,
        requests: args.requests,
        errors,
        clients: args.clients,
        tickets: args.tickets,
        elapsed_s: elapsed.as_secs_f64(),
        cores,
        worker_threads,
    })
}

async fn create_tickets(
    clients: &[reqwest::Client],
    tokens: &[String],
    base: &str,
    count: usize,
) -> anyhow::Result<Vec<Uuid>> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for (client, token) in clients.iter().zip(tokens) {
        let (client, token, base, next) = (
            client.clone(),
            token.clone(),
            base.to_string(),
            next.clone(),
        );
        tasks.spawn(async move {
            let mut ids = vec![];
            while next.fetch_add(1, Ordering::Relaxed) < count as u64 {
                let resp = client
                    .post(format!("{base}/api/v1/tickets"))
                    .bearer_auth(&token)
                    .json(&json!({"title": "bench ticket", "description": "load", "priority": "medium", "kind": "incident"}))
                    .send()
                    .await?;
                let status = resp.status();
                let body: serde_json::Value = resp.json().await?;
                if !status.is_success() {
                    bail!("creating a ticket failed with {status}: {body}");
                }
                let id = body["id"].as_str().and_then(|s| Uuid::parse_str(s).ok()).context("ticket id")?;
                ids.push(id);
            }
            Ok::<_, anyhow::Error>(ids)
        });
    }
    let mut all = vec![];
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined??);
    }
    Ok(all)
}

async fn run_phase(
    clients: &[reqwest::Client],
    tokens: &[String],
    base: &str,
    tickets: &Arc<Vec<Uuid>>,
    requests: u64,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for (client, token) in clients.iter().zip(tokens) {
        let (client, token, base, next, tickets) = (
            client.clone(),
            token.clone(),
            base.to_string(),
            next.clone(),
            tickets.clone(),
        );
        tasks.spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, LATENCY_MAX_MICROS, 3)?;
            let mut errors = 0u64;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests {
                    break;
                }
                let ticket = tickets[(n as usize) % tickets.len()];
                let sent = Instant::now();
                let resp = client
                    .post(format!("{base}/api/v1/tickets/{ticket}/comments"))
                    .bearer_auth(&token)
                    .json(&json!({"body": format!("bench comment {n}")}))
                    .send()
                    .await;
                let ok = match resp {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        let _ = r.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                histogram.saturating_record(micros.max(1));
                if !ok {
                    errors += 1;
                }
            }
            Ok::<_, anyhow::Error>((histogram, errors))
        });
    }
    let mut merged = Histogram::<u64>::new_with_bounds(1, LATENCY_MAX_MICROS, 3)?;
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        let (h, e) = joined??;
        merged.add(&h)?;
        errors += e;
    }
    Ok((merged, errors))
}

async fn store_ceiling(
    store: &Arc<dyn EventStore>,
    principals: &[Principal],
    tickets: &Arc<Vec<Uuid>>,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (w, p) in principals.iter().enumerate() {
        let (store, p, tickets) = (store.clone(), p.clone(), tickets.clone());
        tasks.spawn(async move {
            for i in 0..CEILING_EVENTS_PER_WRITER {
                let ticket = tickets[(w + i as usize * 7) % tickets.len()];
                let request = AppendRequest {
                    stream_id: ticket,
                    expected: ExpectedVersion::Any,
                    events: vec![NewEvent::new(EventPayload::CommentPosted {
                        comment_id: Uuid::now_v7(),
                        body: format!("ceiling comment {i}"),
                        internal: false,
                    })],
                    command_id: Uuid::now_v7(),
                    request_fingerprint: None,
                    correlation_id: Uuid::now_v7(),
                    tenant: p.tenant.clone(),
                    actor: Actor {
                        user_id: p.user_id,
                        role: p.role,
                    },
                    recorded_at: Utc::now(),
                };
                store.append(request).await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    let events = CEILING_EVENTS_PER_WRITER * principals.len() as u64;
    Ok(events as f64
        / started
            .elapsed()
            .as_secs_f64()
            .max(Duration::from_micros(1).as_secs_f64()))
}
