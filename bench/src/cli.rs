//! `ticketlog bench …`: the subcommands, their flags, and the small ones
//! (`append`, `projections`, `dispatch`, `all`) that only print a report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use command_api::progress;

use crate::append::{run_append_bench, AppendBenchOptions};
use crate::dispatch::{run_dispatch_bench, DispatchBenchOptions};
use crate::fanout::BenchFanoutArgs;
use crate::http::BenchHttpArgs;
use crate::projections::BenchOptions;
use crate::soak::BenchSoakArgs;

/// Environment variable naming the repository `bench all` runs `bench/run` in.
pub const REPO_ENV: &str = "TICKETLOG_REPO";
/// The script `bench all` runs, relative to the repository.
const BENCH_SCRIPT: &str = "bench/run";

/// `ticketlog bench`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Raw event-store appends (1, 16, 64 writers) and replay.
    Append(BenchAppendArgs),
    /// 50 HTTP clients posting comments to 1,000 tickets on an in-process server.
    Http(BenchHttpArgs),
    /// Projection rebuild rate, restart-to-serving time, stats query latency.
    Projections(BenchProjectionsArgs),
    /// Choosing the nearest available technician among 10,000.
    Dispatch(BenchDispatchArgs),
    /// Every benchmark and the peers (runs `bash bench/run` in the repository).
    All(BenchAllArgs),
    /// 10 minutes of mixed load on a `serve` child: RSS, fds, latency sampled and charted.
    Soak(BenchSoakArgs),
    /// N WebSocket clients over 100 ticket rooms of a `serve` child: delivery latency, RSS per connection.
    Fanout(BenchFanoutArgs),
}

/// Runs one `ticketlog bench` subcommand.
pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Append(args) => append(args),
        BenchCommand::Http(args) => crate::http::run(args),
        BenchCommand::Projections(args) => projections(args),
        BenchCommand::Dispatch(args) => dispatch(args),
        BenchCommand::All(args) => all(args),
        BenchCommand::Soak(args) => crate::soak::run(args),
        BenchCommand::Fanout(args) => crate::fanout::run(args),
    }
}

/// `ticketlog bench append`.
#[derive(Debug, Args)]
pub struct BenchAppendArgs {
    #[command(flatten)]
    common: BenchArgs,
    /// Measure this PostgreSQL store instead of a temporary sled one
    /// (`postgres://USER@HOST:PORT/DB`; the events stay in its log).
    #[arg(long, env = "TICKETLOG_DATABASE_URL")]
    database_url: Option<String>,
}

/// Common bench flags.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// `ticketlog bench projections`.
#[derive(Debug, Args)]
pub struct BenchProjectionsArgs {
    /// Print one JSON object instead of an indented one.
    #[arg(long)]
    json: bool,
    /// Events in the generated log (tickets = events / 10).
    #[arg(long, default_value_t = BenchOptions::default().events)]
    events: u64,
    /// Statistics queries timed.
    #[arg(long, default_value_t = BenchOptions::default().stats_queries)]
    stats_queries: u32,
    /// Directory of the generated log, reused when it already holds it
    /// (default: a temporary directory, deleted afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// `ticketlog bench dispatch`.
#[derive(Debug, Args)]
pub struct BenchDispatchArgs {
    /// Print one JSON object instead of an indented one.
    #[arg(long)]
    json: bool,
    /// Technicians to choose among.
    #[arg(long, default_value_t = DispatchBenchOptions::default().technicians)]
    technicians: usize,
    /// Choices timed.
    #[arg(long, default_value_t = DispatchBenchOptions::default().choices)]
    choices: usize,
}

/// `ticketlog bench all`.
#[derive(Debug, Args)]
pub struct BenchAllArgs {
    /// Repository holding `bench/run` (default: $TICKETLOG_REPO, else the
    /// current directory).
    #[arg(long, env = REPO_ENV)]
    repo: Option<PathBuf>,
}

fn print_report<T: serde::Serialize>(report: &T, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        println!("{}", serde_json::to_string_pretty(report)?);
    }
    Ok(())
}

/// Raw store appends (see [`crate::append`]).
pub fn append(args: BenchAppendArgs) -> anyhow::Result<ExitCode> {
    let opts = AppendBenchOptions {
        database_url: args.database_url,
        ..AppendBenchOptions::default()
    };
    let report = run_append_bench(opts).context("append benchmark")?;
    print_report(&report, args.common.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Rebuild rate, restart-to-serving and stats latency over a generated log.
pub fn projections(args: BenchProjectionsArgs) -> anyhow::Result<ExitCode> {
    let temp = tempfile::tempdir().context("creating a temporary directory")?;
    let opts = BenchOptions {
        dir: args.dir.unwrap_or_else(|| temp.path().to_path_buf()),
        events: args.events,
        stats_queries: args.stats_queries,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let bar = progress::events_bar("generating", true);
    let report = runtime.block_on(crate::projections::run(
        &opts,
        Some(progress::bar_progress(&bar)),
    ));
    bar.finish_and_clear();
    let report = report.context("projections benchmark")?;
    print_report(&report, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Choosing the nearest available technician: pure CPU on this thread (no
/// runtime is running here, so nothing else is blocked).
pub fn dispatch(args: BenchDispatchArgs) -> anyhow::Result<ExitCode> {
    if args.technicians == 0 || args.choices == 0 {
        anyhow::bail!("--technicians and --choices must be at least 1");
    }
    let report = run_dispatch_bench(DispatchBenchOptions {
        technicians: args.technicians,
        choices: args.choices,
        ..DispatchBenchOptions::default()
    });
    print_report(&report, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `bash bench/run` in the repository and returns its exit status.
pub fn all(args: BenchAllArgs) -> anyhow::Result<ExitCode> {
    let repo = match args.repo {
        Some(r) => r,
        None => std::env::current_dir().context("reading the current directory")?,
    };
    let script = repo.join(BENCH_SCRIPT);
    if !script.is_file() {
        anyhow::bail!(
            "{} not found: run `ticketlog bench all` from the Ticketlog repository, or set {REPO_ENV} (or --repo) to it",
            script.display()
        );
    }
    let status = std::process::Command::new("bash")
        .arg(BENCH_SCRIPT)
        .current_dir(&repo)
        .status()
        .context("starting bash")?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        // Killed by a signal.
        None => ExitCode::FAILURE,
    })
}
