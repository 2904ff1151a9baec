//! `ticketlog bench fanout` (issue 5): N WebSocket clients spread over 100
//! ticket rooms of a `ticketlog serve` child, comments appended at a
//! steady rate through the HTTP API; measures the connect time, the
//! delivery latency from each command's acknowledgement to each client's
//! receipt of its event, the delivered events per second, and the server's
//! RSS per idle connection. Every client must get every event of its room.

mod clients;
mod report;
mod server;
mod writer;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

use clients::Shared;
use command_api::fd_limit;
use report::{Report, Targets, DELIVERY_P99_MS_TARGET, RSS_BYTES_PER_CONNECTION_TARGET};
use writer::Pace;

/// Descriptors the bench needs besides one per client.
const FDS_HEADROOM: u64 = 512;
/// Longest wait for every client to be subscribed.
const RAMP_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest wait, after the last command, for every client to have every event.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the clients to close after the run.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Interval of the RSS samples while the idle connections settle.
const SETTLE_SAMPLE: Duration = Duration::from_millis(500);
/// The idle RSS is taken once two consecutive samples differ by less than
/// this share...
const SETTLE_RSS_SHARE: f64 = 0.005;
/// ...or after this long.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Interval of the progress bars' updates, and of the drain's checks.
const TICK: Duration = Duration::from_millis(100);

/// `ticketlog bench fanout`.
#[derive(Debug, Clone, Args)]
pub struct BenchFanoutArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// WebSocket clients, spread evenly over the rooms.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Ticket rooms (one ticket each).
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    /// Comments posted per second (round-robin over the rooms).
    #[arg(long, default_value_t = 200)]
    pub rate_per_s: u32,
    /// Length of the write phase, seconds.
    #[arg(long, default_value_t = 20)]
    pub duration_s: u64,
}

/// Runs the bench; exit code 1 when a delivery went missing or anything failed.
pub fn run(args: BenchFanoutArgs) -> anyhow::Result<ExitCode> {
    if args.clients == 0 || args.rooms == 0 || args.rate_per_s == 0 || args.duration_s == 0 {
        bail!("--clients, --rooms, --rate-per-s and --duration-s must be at least 1");
    }
    // The server (a child) inherits the raised limit, and raises its own.
    let nofile = fd_limit::raise_to_hard();
    let needed = args.clients as u64 + FDS_HEADROOM;
    if !nofile.allows(needed) {
        bail!(
            "the open-files limit is {:?} (hard {:?}); {needed} are needed for {} clients",
            nofile.soft,
            nofile.hard,
            args.clients
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;
    let report = runtime.block_on(fanout(&args, cores, nofile.soft))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

async fn fanout(
    args: &BenchFanoutArgs,
    cores: usize,
    nofile_soft: Option<u64>,
) -> anyhow::Result<Report> {
    let loadavg_start = loadavg();
    let temp = tempfile::tempdir().context("creating a temporary directory")?;
    let data = temp.path().join("data");
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut child = server::start(&data, &secret).await?;
    let base = format!("http://{}", child.addr);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let cast = Arc::new(server::Cast::mint(&secret)?);
    let tickets = Arc::new(writer::create_tickets(&http, &base, &cast, args.rooms).await?);
    let rss_before = child
        .settled_rss_bytes(SETTLE_SAMPLE, SETTLE_RSS_SHARE, SETTLE_TIMEOUT)
        .await;

    // Ramp: every client connected and subscribed.
    let shared = Arc::new(Shared::new(args.clients, args.rooms));
    let (stop_tx, stop_rx) = watch::channel(false);
    let ramp_bar = bar(args.clients as u64, "connecting");
    let ramp_started = Instant::now();
    let handles = clients::spawn(
        &child.addr,
        &cast,
        &tickets,
        &shared,
        args.clients,
        &stop_rx,
    );
    loop {
        let connected = shared.connected.load(Ordering::Relaxed);
        let failed = shared.failed.load(Ordering::Relaxed);
        ramp_bar.set_position(connected as u64);
        if connected + failed >= args.clients {
            break;
        }
        if !child.running() {
            bail!("the server exited during the ramp");
        }
        if ramp_started.elapsed() > RAMP_TIMEOUT {
            bail!(
                "{connected} of {} clients subscribed after {RAMP_TIMEOUT:?}",
                args.clients
            );
        }
        tokio::time::sleep(TICK).await;
    }
    let connect_s = ramp_started.elapsed().as_secs_f64();
    ramp_bar.finish_and_clear();
    let connected = shared.connected.load(Ordering::Relaxed);
    let rss_idle = child
        .settled_rss_bytes(SETTLE_SAMPLE, SETTLE_RSS_SHARE, SETTLE_TIMEOUT)
        .await;
    let presence_frames = shared.presence.load(Ordering::Relaxed);
    let server_fds_idle = child.fds();

    // Write phase.
    let room_heads: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.rooms).map(|_| AtomicU64::new(0)).collect());
    let pace = Pace {
        rate_per_s: args.rate_per_s,
        duration: Duration::from_secs(args.duration_s),
    };
    let write_bar = bar(u64::from(args.rate_per_s) * args.duration_s, "commenting");
    let write_started = Instant::now();
    let cpu_started = (child.cpu_s(), server::cpu_s("/proc/self/stat"));
    let written = writer::post_comments(
        &http,
        &base,
        &cast,
        &tickets,
        &pace,
        &room_heads,
        &write_bar,
    )
    .await;
    let write_s = write_started.elapsed().as_secs_f64();
    let server_cpu_s = child.cpu_s() - cpu_started.0;
    let bench_cpu_s = server::cpu_s("/proc/self/stat") - cpu_started.1;
    write_bar.finish_and_clear();

    // Drain: every subscribed client has its room's last acknowledged event.
    let drain_started = Instant::now();
    while !all_caught_up(&shared, &room_heads, args.rooms)
        && drain_started.elapsed() < DRAIN_TIMEOUT
    {
        tokio::time::sleep(TICK).await;
    }
    let rss_after = child.rss_bytes();
    stop_tx.send_replace(true);
    let mut received = Vec::with_capacity(handles.len());
    let joined = tokio::time::timeout(STOP_TIMEOUT, async {
        for h in handles {
            if let Ok(r) = h.await {
                received.push(r);
            }
        }
    })
    .await;
    if joined.is_err() {
        shared.error(format!("clients did not close within {STOP_TIMEOUT:?}"));
    }
    let stopped = child.stop().await;

    let d = report::deliveries(&written, &received, args.rooms)?;
    let mut first_errors = shared
        .first_errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    first_errors.extend(written.first_errors.iter().cloned());
    if let Err(e) = &stopped {
        first_errors.push(format!("server stop: {e:#}"));
    }
    first_errors.extend(
        child
            .log
            .first
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned(),
    );
    let rss_per_connection = rss_idle.saturating_sub(rss_before) / (connected.max(1) as u64);
    let errors =
        shared.errors.load(Ordering::Relaxed) + written.errors + u64::from(stopped.is_err());
    Ok(Report {
        clients: args.clients,
        clients_connected: connected,
        rooms: args.rooms,
        connect_s,
        presence_frames,
        rate_per_s: args.rate_per_s,
        duration_s: args.duration_s,
        commands_sent: written.sent,
        commands_acked: written.acked.len() as u64,
        commands_per_s: written.acked.len() as f64 / write_s.max(1e-3),
        command_latency: report::command_latency(&written)?,
        commands_late: written.late,
        events_expected: d.expected,
        events_delivered: d.delivered,
        missing_deliveries: d.missing,
        out_of_order_deliveries: d.out_of_order,
        unmatched_events: d.unmatched,
        delivered_before_ack: d.before_ack,
        delivery_p50_ms: d.from_ack.p50_ms,
        delivery_p99_ms: d.from_ack.p99_ms,
        delivery_p999_ms: d.from_ack.p999_ms,
        delivery_max_ms: d.from_ack.max_ms,
        send_to_receipt: d.from_send,
        events_delivered_per_s: d.delivered as f64 / d.span.as_secs_f64().max(1e-3),
        rss_before_bytes: rss_before,
        rss_idle_bytes: rss_idle,
        rss_bytes_per_connection: rss_per_connection,
        rss_after_bytes: rss_after,
        server_fds_idle,
        server_cpu_share: server_cpu_s / write_s.max(1e-3),
        bench_cpu_share: bench_cpu_s / write_s.max(1e-3),
        nofile_soft,
        server_log_problems: child.log.problems(),
        errors,
        first_errors,
        cores,
        loadavg_start,
        loadavg_end: loadavg(),
        targets: Targets {
            clients_held: connected == args.clients && errors == 0,
            delivery_p99_under_50_ms: d.from_ack.p99_ms < DELIVERY_P99_MS_TARGET,
            rss_per_connection_under_16_kib: rss_per_connection < RSS_BYTES_PER_CONNECTION_TARGET,
        },
    })
}

/// Whether every subscribed client received its room's last acknowledged event.
fn all_caught_up(shared: &Shared, room_heads: &[AtomicU64], rooms: usize) -> bool {
    shared.last_position.iter().enumerate().all(|(i, last)| {
        let head = room_heads[i % rooms].load(Ordering::Acquire);
        last.load(Ordering::Acquire) >= head
    })
}
