//! The `ticketlog` binary: `serve`, `user add`, `verify`, `rebuild`,
//! `stats`, `replay`, `migrate-store` and `bench` (from `ticketlog-bench`). Every flag can
//! also come from the environment as `TICKETLOG_<FLAG>`.

mod expiry;
mod location;
mod migrate;
mod offline;
mod rebuild;
mod replay;
mod serve;
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
use command_api::http::timeouts;
use command_api::logging;
use ticketlog_bench::cli::BenchCommand;

/// jemalloc, not glibc's malloc: under a server's many threads glibc kept
/// every arena's high-water mark (each argon2 verification takes 19 MiB; a
/// demo server grew from 129 to 207 MiB over 24 logins), jemalloc gives
/// freed pages back (15 MiB after the same logins).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Copy the embedded store of --data into the PostgreSQL database of --database-url (server stopped).
    ///
    /// Copies the log (positions, hashes and records unchanged, with its stream and command
    /// indexes), every side tree and the generated JWT secret, so that `serve --database-url`
    /// shows the same tickets and accepts the tokens issued before. Stop the server first:
    /// migrate-store must not run while a server writes the embedded store (sled's directory
    /// lock refuses to open a store that a running server holds), and start servers on the
    /// database once it has finished. Safe to run again: only what the database lacks is
    /// copied, a completed copy is not repeated unless the embedded log has grown since, and a
    /// database holding another log is refused with nothing written.
    MigrateStore(migrate::MigrateArgs),
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
    #[command(flatten)]
    store: location::StoreLocation,
    /// Seed the `demo` tenant with users and tickets (idempotent).
    #[arg(long, env = "TICKETLOG_DEMO")]
    demo: bool,
    /// File holding the HS256 secret (else TICKETLOG_JWT_SECRET, else generated in the data dir or the database).
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
    /// Seconds a client may take to send a request's headers (from its first byte, or the accept).
    #[arg(long, env = "TICKETLOG_HEADER_READ_TIMEOUT_SECS", default_value_t = timeouts::HEADER_READ_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    header_read_timeout_secs: u64,
    /// Seconds a client may take to send a request's body (from the end of its headers); then 408.
    #[arg(long, env = "TICKETLOG_BODY_READ_TIMEOUT_SECS", default_value_t = timeouts::BODY_READ_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    body_read_timeout_secs: u64,
    /// Seconds a keep-alive connection may stay idle between requests.
    #[arg(long, env = "TICKETLOG_IDLE_TIMEOUT_SECS", default_value_t = timeouts::IDLE_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout_secs: u64,
    /// Seconds from a WebSocket upgrade request's first byte to the upgraded connection.
    #[arg(long, env = "TICKETLOG_WS_HANDSHAKE_TIMEOUT_SECS", default_value_t = timeouts::WS_HANDSHAKE_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    ws_handshake_timeout_secs: u64,
    /// Serve /metrics on this address only (the API's listener then answers 404 for it).
    #[arg(long, env = "TICKETLOG_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Bearer token that reads /metrics (else an admin's token on the API's listener); prefer the environment variable.
    #[arg(long, env = "TICKETLOG_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
}

/// Bytes in a MiB, for flags given in MiB.
const MIB: u64 = 1024 * 1024;

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user (password from --password or a line on stdin).
    Add(UserAddArgs),
    /// Set a user's password (from --password or a line on stdin) and
    /// revoke every token of theirs issued until now.
    Passwd(UserPasswdArgs),
    /// Change a user's role and revoke every token of theirs issued until
    /// now (tokens carry the role).
    Role(UserRoleArgs),
}

/// Which user a `ticketlog user` command adds or changes, and where.
#[derive(Debug, Args)]
struct UserTarget {
    #[command(flatten)]
    store: location::StoreLocation,
    /// Tenant.
    #[arg(long, env = "TICKETLOG_TENANT")]
    tenant: String,
    /// User name (login).
    #[arg(long, env = "TICKETLOG_NAME")]
    name: String,
}

/// `ticketlog user passwd`.
#[derive(Debug, Args)]
struct UserPasswdArgs {
    #[command(flatten)]
    user: UserTarget,
    /// New password; prompted from stdin when absent.
    #[arg(long, env = "TICKETLOG_PASSWORD")]
    password: Option<String>,
}

/// `ticketlog user role`.
#[derive(Debug, Args)]
struct UserRoleArgs {
    #[command(flatten)]
    user: UserTarget,
    /// New role: customer, agent, technician, auditor, analyst, admin.
    #[arg(long, env = "TICKETLOG_ROLE")]
    role: String,
}

/// `ticketlog user add`.
#[derive(Debug, Args)]
struct UserAddArgs {
    #[command(flatten)]
    user: UserTarget,
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
    #[command(flatten)]
    store: location::StoreLocation,
}

/// Parses arguments and runs the subcommand; errors print and exit 1 (2 for
/// a failed verification).
fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::User(UserCommand::Add(args)) => user::add(args),
        Command::User(UserCommand::Passwd(args)) => user::passwd(args),
        Command::User(UserCommand::Role(args)) => user::role(args),
        Command::Verify(args) => verify::run(args),
        Command::Rebuild(args) => rebuild::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Replay(args) => replay::run(args),
        Command::MigrateStore(args) => migrate::run(args),
        Command::Bench(command) => ticketlog_bench::cli::run(command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
