//! `ticketlog bench soak` (issue 8, "proof under fire"): `ticketlog serve`
//! as a child process on a fresh data directory, under mixed load for a
//! fixed time — paced command writers, query clients, and thousands of
//! WebSocket clients of which a share reconnects every second — while the
//! server's RSS, open file descriptors, threads and the latencies are
//! sampled at a fixed interval. Writes `soak.json` and a chart `soak.svg`,
//! and fails when there was any error or RSS or descriptors grew.

mod chart;
mod load;
mod metrics;
mod pool;
mod report;
mod sample;
mod server;
mod verdict;
mod ws;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use metrics::Metrics;
use pool::TicketPool;
use sample::{Sample, Sampler};

/// Longest wait for every WebSocket client to be connected before the
/// measured run starts.
const RAMP_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest a fresh server on the run's data may take to settle.
const FRESH_SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Interval between two RSS readings of the fresh server.
const FRESH_SETTLE_STEP: Duration = Duration::from_secs(1);
/// RSS change (share) between two readings under which the fresh server has settled.
const FRESH_SETTLE_SHARE: f64 = 0.005;
/// Bytes in a MiB.
const MIB_BYTES: f64 = 1024.0 * 1024.0;

/// `bytes` in MiB.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB_BYTES
}
/// Longest wait for the load tasks to stop after the run.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the server's `/metrics` at a sample.
const METRICS_TIMEOUT: Duration = Duration::from_secs(5);
/// Interval of the progress bar's updates.
const PROGRESS_TICK: Duration = Duration::from_millis(250);
/// Descriptors the bench needs besides one per WebSocket client.
const FDS_HEADROOM: u64 = 256;

/// `ticketlog bench soak`.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct BenchSoakArgs {
    /// Length of the measured run, in seconds.
    #[arg(long, default_value_t = 600)]
    pub duration_s: u64,
    /// Interval between samples, in seconds.
    #[arg(long, default_value_t = 10)]
    pub sample_s: u64,
    /// Commands per second, spread over the writers (closed loop each).
    #[arg(long, default_value_t = 200)]
    pub commands_per_s: u32,
    /// Command writers (each an agent with its own connection).
    #[arg(long, default_value_t = 8)]
    pub writers: usize,
    /// Queries per second (ticket list, ticket, conversation, statistics).
    #[arg(long, default_value_t = 100)]
    pub queries_per_s: u32,
    /// Query clients.
    #[arg(long, default_value_t = 4)]
    pub query_clients: usize,
    /// WebSocket clients (a quarter agents, the rest customers).
    #[arg(long, default_value_t = 2000)]
    pub ws_clients: usize,
    /// WebSocket clients that disconnect and reconnect every second
    /// (default: 2% of `--ws-clients`).
    #[arg(long)]
    pub churn_per_s: Option<usize>,
    /// Directory of `soak.json` and `soak.svg`.
    #[arg(long, default_value = "bench/out")]
    pub out: PathBuf,
    /// Data directory of the server (default: a temporary one, deleted).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The server's sled page cache, in MiB: small by default, so that a
    /// bounded cache filling up (256 MiB in production) does not pass for
    /// growth.
    #[arg(long, default_value = "16")]
    pub server_cache_mib: Option<u64>,
    /// Only redraw `soak.svg` from this `soak.json` (no run).
    #[arg(long)]
    #[serde(skip)]
    pub replot: Option<PathBuf>,
}

impl BenchSoakArgs {
    /// The churn actually used.
    fn churn(&self) -> usize {
        self.churn_per_s
            .unwrap_or(self.ws_clients * load::CHURN_PERCENT_DEFAULT / 100)
    }
}

/// Runs the soak; exit status 1 when the verdict is FAIL.
pub fn run(args: BenchSoakArgs) -> anyhow::Result<ExitCode> {
    if args.duration_s == 0 || args.sample_s == 0 || args.writers == 0 {
        bail!("--duration-s, --sample-s and --writers must be at least 1");
    }
    if args.query_clients == 0 && args.queries_per_s > 0 {
        bail!("--queries-per-s needs at least one --query-clients");
    }
    if let Some(json) = &args.replot {
        report::replot(json, &args.out)?;
        return Ok(ExitCode::SUCCESS);
    }
    check_fd_limit(args.ws_clients)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let passed = runtime.block_on(soak(args))?;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Each WebSocket client holds one descriptor here and one in the server
/// (which inherits this process's limit): raise the soft limit to the hard
/// one, and refuse to start rather than count `EMFILE`s as errors.
fn check_fd_limit(ws_clients: usize) -> anyhow::Result<()> {
    let needed = ws_clients as u64 + FDS_HEADROOM;
    let limit = command_api::fd_limit::raise_to_hard();
    if !limit.allows(needed) {
        bail!(
            "the open-files limit is {:?} (hard {:?}), {needed} are needed for {ws_clients} \
             WebSocket clients: raise the hard limit first",
            limit.soft,
            limit.hard
        );
    }
    Ok(())
}

async fn soak(args: BenchSoakArgs) -> anyhow::Result<bool> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let temp = tempfile::tempdir()?;
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| temp.path().join("data"));
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let setup_started = Instant::now();
    let password = uuid::Uuid::new_v4().to_string();
    server::seed_users(&data, &password).await?;
    let mut child = server::start(&data, args.duration_s, args.server_cache_mib).await?;
    let base = format!("http://{}", child.addr);
    println!(
        "bench soak: serve pid {} on {}, {} cores; setting up {} WebSocket clients",
        child.pid, child.addr, cores, args.ws_clients
    );
    let cast = Arc::new(server::login_all(&base, &password).await?);
    let hot = load::hot_tickets(args.ws_clients);
    let pool = Arc::new(TicketPool::new(cast.customers.len(), hot));
    let metrics = Arc::new(Metrics::new()?);
    let managed =
        load::create_initial_tickets(&base, &cast, &pool, &metrics, args.writers, hot).await?;
    // After logins (argon2) and the first tickets: the clients' share alone.
    let rss_before_clients_mib = mib(child.rss_bytes());
    let (stop_tx, stop_rx) = watch::channel(false);
    let clients = ws::spawn_clients(
        &child.addr,
        &cast,
        &pool,
        &metrics,
        args.ws_clients,
        &stop_rx,
    );
    ws::wait_connected(&metrics, args.ws_clients, RAMP_TIMEOUT, &mut child).await?;
    load::check_setup(&metrics)?;
    let rss_with_clients_mib = mib(child.rss_bytes());
    let setup_s = setup_started.elapsed().as_secs_f64();
    println!(
        "bench soak: setup done in {setup_s:.1} s ({hot} hot tickets); running for {} s",
        args.duration_s
    );
    // The setup's latencies are not the soak's.
    metrics.reset_totals();

    let mut tasks = load::spawn_load(&base, &cast, &pool, &metrics, &args, managed, &stop_rx)?;
    tasks.push(ws::spawn_churn(
        clients.churn.clone(),
        args.churn(),
        metrics.clone(),
        stop_rx.clone(),
    ));
    let samples = sample_until_done(&args, &mut child, &metrics).await;

    let _ = stop_tx.send(true);
    let stopped = tokio::time::timeout(STOP_TIMEOUT, async {
        for t in tasks.into_iter().chain(clients.tasks) {
            let _ = t.await;
        }
    })
    .await;
    if stopped.is_err() {
        metrics.error(format!(
            "load tasks still running {STOP_TIMEOUT:?} after the stop"
        ));
    }
    if let Err(e) = child.stop().await {
        metrics.error(format!("server shutdown: {e:#}"));
    }
    let samples = samples?;
    let (rss_fresh_same_data_mib, heap_fresh_same_data_mib) = fresh_rss_on(&data, &args).await?;
    let baseline = verdict::Baseline {
        rss_before_clients_mib,
        rss_with_clients_mib,
        rss_fresh_same_data_mib,
        heap_fresh_same_data_mib,
    };
    let report = report::Report::build(args, cores, setup_s, samples, &metrics, &child, baseline);
    report.write_and_print()?;
    Ok(report.verdict.pass)
}

/// The settled RSS and live heap (MiB) of a fresh `serve` on `data` with
/// no client: what the data alone costs (the read model is in memory by
/// design).
async fn fresh_rss_on(data: &std::path::Path, args: &BenchSoakArgs) -> anyhow::Result<(f64, f64)> {
    let mut fresh = server::start(data, args.duration_s, args.server_cache_mib).await?;
    let rss = mib(fresh
        .settled_rss_bytes(FRESH_SETTLE_STEP, FRESH_SETTLE_SHARE, FRESH_SETTLE_TIMEOUT)
        .await);
    let heap = heap_allocated_bytes(&reqwest::Client::new(), &fresh)
        .await
        .map_or(0.0, mib);
    fresh.stop().await?;
    println!(
        "bench soak: a fresh serve on the same data settles at {rss:.1} MiB (live heap {heap:.1} MiB)"
    );
    Ok((rss, heap))
}

/// The server's live heap as its `/metrics` reports it (`None` if it does not).
async fn heap_allocated_bytes(http: &reqwest::Client, child: &server::ServerChild) -> Option<u64> {
    let text = tokio::time::timeout(METRICS_TIMEOUT, async {
        child
            .metrics_request(http)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
    })
    .await
    .ok()??;
    text.lines()
        .find_map(|l| l.strip_prefix("ticketlog_heap_allocated_bytes "))?
        .trim()
        .parse()
        .ok()
}

/// Takes one sample every `--sample-s` until `--duration-s`, with a
/// progress bar; stops early (with an error counted) if the server died.
async fn sample_until_done(
    args: &BenchSoakArgs,
    child: &mut server::ServerChild,
    metrics: &Metrics,
) -> anyhow::Result<Vec<Sample>> {
    let bar = indicatif::ProgressBar::new(args.duration_s);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} s {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut sampler = Sampler::new(child.pid, metrics);
    let http = reqwest::Client::new();
    let started = Instant::now();
    let run = Duration::from_secs(args.duration_s);
    let every = Duration::from_secs(args.sample_s);
    let mut samples = Vec::new();
    bar.suspend(|| println!("{}", Sample::header()));
    let mut next = started;
    while next < started + run {
        next = (next + every).min(started + run);
        loop {
            let now = Instant::now();
            if now >= next {
                break;
            }
            tokio::time::sleep(PROGRESS_TICK.min(next - now)).await;
            bar.set_position(started.elapsed().as_secs().min(args.duration_s));
        }
        let heap = heap_allocated_bytes(&http, child).await;
        let s = sampler.take(started.elapsed(), metrics, heap);
        bar.suspend(|| println!("{}", s.row()));
        bar.set_message(format!(
            "RSS {:.1} MiB, {} fds, {} ws, cmd p99 {:.1} ms, {} errors",
            s.rss_mib, s.fds, s.ws_connected, s.command_p99_ms, s.errors
        ));
        samples.push(s);
        if let Some(status) = child.exited() {
            metrics.error(format!("the server exited during the run: {status}"));
            break;
        }
    }
    bar.finish_and_clear();
    Ok(samples)
}
