//! Command-line interface. Every flag can also come from the environment
//! as `TICKETLOG_<FLAG>`.

mod bench;
mod bench_fanout;
mod bench_http;
mod bench_more;
mod bench_soak;
mod expiry;
mod fd_limit;
mod logging;
mod offline;
mod rebuild;
mod replay;
mod serve;
mod serve_child;
mod signals;
mod stats;
mod user;
mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use command_api::auth::JwtAlgorithm;
use command_api::http::limits::{
    RATE_LIMIT_BURST_REQUESTS_DEFAULT, RATE_LIMIT_PER_USER_PER_S_DEFAULT,
};

/// Ticketlog: an event-sourced helpdesk.
#[derive(Debug, Parser)]
#[command(name = "ticketlog", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (API, live feed) on one port.
    Serve(ServeArgs),
    /// Manage the built-in user directory.
    #[command(subcommand)]
    User(UserCommand),
    /// Check every record of the log (checksums, contiguity, hash chain).
    Verify(VerifyArgs),
    /// Rebuild the read model from position 1 and save its snapshot (server stopped).
    Rebuild(rebuild::RebuildArgs),
    /// Statistics of a tenant as JSON or CSV (as an analyst).
    Stats(stats::StatsArgs),
    /// A ticket's recorded history, or its state at a moment (as an auditor).
    Replay(replay::ReplayArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `ticketlog serve`.
#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TICKETLOG_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Data directory (event store, generated secret).
    #[arg(long, env = "TICKETLOG_DATA", default_value = "./data")]
    data: PathBuf,
    /// Seed the `demo` tenant with users and tickets (idempotent).
    #[arg(long, env = "TICKETLOG_DEMO")]
    demo: bool,
    /// File holding the HS256 secret (else TICKETLOG_JWT_SECRET, else generated in the data dir).
    #[arg(
        long,
        env = "TICKETLOG_JWT_SECRET_FILE",
        conflicts_with = "jwt_public_key"
    )]
    jwt_secret_file: Option<PathBuf>,
    /// PEM public key of an outside token issuer (requires --jwt-alg).
    #[arg(long, env = "TICKETLOG_JWT_PUBLIC_KEY", requires = "jwt_alg")]
    jwt_public_key: Option<PathBuf>,
    /// Algorithm of the public key: EdDSA or RS256.
    #[arg(long, env = "TICKETLOG_JWT_ALG", requires = "jwt_public_key")]
    jwt_alg: Option<JwtAlgorithm>,
    /// Lifetime of tokens issued by /api/v1/auth/token.
    #[arg(long, env = "TICKETLOG_TOKEN_TTL_SECS", default_value_t = command_api::auth::jwt::TOKEN_TTL_SECS_DEFAULT)]
    token_ttl_secs: u64,
    /// Sustained requests per second per user.
    #[arg(long, env = "TICKETLOG_RATE_LIMIT_PER_S", default_value_t = RATE_LIMIT_PER_USER_PER_S_DEFAULT)]
    rate_limit_per_s: u32,
    /// Burst size per user.
    #[arg(long, env = "TICKETLOG_RATE_LIMIT_BURST", default_value_t = RATE_LIMIT_BURST_REQUESTS_DEFAULT)]
    rate_limit_burst: u32,
    /// Log format: text or json.
    #[arg(long, env = "TICKETLOG_LOG_FORMAT", default_value = "text")]
    log_format: logging::LogFormat,
    /// Free disk space, in MiB, below which appends are refused with 503 (0: never).
    #[arg(long, env = "TICKETLOG_DISK_RESERVE_MIB", default_value_t = event_store::sled_store::DISK_RESERVE_BYTES_DEFAULT / MIB)]
    disk_reserve_mib: u64,
    /// sled's page cache, in MiB (sled treats it as a soft cap).
    #[arg(long, env = "TICKETLOG_CACHE_MIB", default_value_t = event_store::sled_store::CACHE_CAPACITY_BYTES_DEFAULT / MIB)]
    cache_mib: u64,
}

/// Bytes in a MiB, for flags given in MiB.
const MIB: u64 = 1024 * 1024;

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user (password from --password or a line on stdin).
    Add(UserAddArgs),
}

/// `ticketlog user add`.
#[derive(Debug, Args)]
struct UserAddArgs {
    /// Data directory.
    #[arg(long, env = "TICKETLOG_DATA", default_value = "./data")]
    data: PathBuf,
    /// Tenant.
    #[arg(long, env = "TICKETLOG_TENANT")]
    tenant: String,
    /// User name (login).
    #[arg(long, env = "TICKETLOG_NAME")]
    name: String,
    /// Role: customer, agent, technician, auditor, analyst, admin.
    #[arg(long, env = "TICKETLOG_ROLE")]
    role: String,
    /// Password; prompted from stdin when absent.
    #[arg(long, env = "TICKETLOG_PASSWORD")]
    password: Option<String>,
}

/// `ticketlog verify`.
#[derive(Debug, Args)]
struct VerifyArgs {
    /// Data directory.
    #[arg(long, env = "TICKETLOG_DATA", default_value = "./data")]
    data: PathBuf,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Raw event-store appends (1, 16, 64 writers) and replay.
    Append(BenchArgs),
    /// 50 HTTP clients posting comments to 1,000 tickets on an in-process server.
    Http(BenchHttpArgs),
    /// Projection rebuild rate, restart-to-serving time, stats query latency.
    Projections(bench_more::BenchProjectionsArgs),
    /// Choosing the nearest available technician among 10,000.
    Dispatch(bench_more::BenchDispatchArgs),
    /// Every benchmark and the peers (runs `bash bench/run` in the repository).
    All(bench_more::BenchAllArgs),
    /// 10 minutes of mixed load on a `serve` child: RSS, fds, latency sampled and charted.
    Soak(bench_soak::BenchSoakArgs),
    /// N WebSocket clients over 100 ticket rooms of a `serve` child: delivery latency, RSS per connection.
    Fanout(bench_fanout::BenchFanoutArgs),
}

/// Common bench flags.
#[derive(Debug, Args)]
struct BenchArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// `ticketlog bench http`.
#[derive(Debug, Args)]
struct BenchHttpArgs {
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
    /// Tokio worker threads shared by clients and server (default: 2, the
    /// issue's machine, capped at the cores present).
    #[arg(long)]
    worker_threads: Option<usize>,
}

/// Parses arguments and runs the subcommand; errors print and exit 1 (2 for
/// a failed verification).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::User(UserCommand::Add(args)) => user::add(args),
        Command::Verify(args) => verify::run(args),
        Command::Bench(BenchCommand::Append(args)) => bench::append(args),
        Command::Bench(BenchCommand::Http(args)) => bench::http(args),
        Command::Rebuild(args) => rebuild::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Bench(BenchCommand::Projections(args)) => bench_more::projections(args),
        Command::Bench(BenchCommand::Dispatch(args)) => bench_more::dispatch(args),
        Command::Bench(BenchCommand::All(args)) => bench_more::all(args),
        Command::Bench(BenchCommand::Soak(args)) => bench_soak::run(args),
        Command::Bench(BenchCommand::Fanout(args)) => bench_fanout::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
