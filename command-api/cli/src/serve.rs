//! `ticketlog serve`: the store, the API and (with `--demo`) the demo data,
//! on one port, until SIGINT or SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use command_api::auth::secret::{SecretHome, SECRETS_TREE_NAME};
use command_api::config::{build_jwt, JwtConfig, JWT_SECRET_ENV};
use command_api::http::rate_limit::RateLimit;
use command_api::http::{AppState, HttpOptions, MetricsAccess, Timeouts};
use event_store::{EventStore, KvProvider, SledOptions};

use super::location::Create;
use super::{expiry, logging, signals, ServeArgs};

/// Runs the server until a shutdown signal, then closes the store.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    logging::init(args.log_format, "info,sled=warn");
    // One descriptor per WebSocket client: 10,000 of them need more than
    // the usual soft limit of 1,024.
    let nofile = command_api::fd_limit::raise_to_hard();
    tracing::info!(soft = ?nofile.soft, hard = ?nofile.hard, "open-files limit");
    if !command_api::heap::purge_in_background() {
        tracing::warn!("jemalloc background purging unavailable: freed pages return only as the server allocates");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store = args
        .store
        .open(
            Create::IfMissing,
            SledOptions {
                disk_reserve_bytes: args.disk_reserve_mib.saturating_mul(super::MIB),
                cache_capacity_bytes: args.cache_mib.saturating_mul(super::MIB),
                ..SledOptions::default()
            },
        )
        .await?;
    let jwt_config = match (&args.jwt_public_key, args.jwt_alg) {
        (Some(path), Some(algorithm)) => JwtConfig::PublicKey {
            algorithm,
            path: path.clone(),
        },
        _ => JwtConfig::Secret {
            env_secret: std::env::var(JWT_SECRET_ENV).ok(),
            secret_file: args.jwt_secret_file.clone(),
        },
    };
    // A generated secret lives with the log: beside sled's files, or in the
    // database that every node of a cluster shares.
    let secret_home = match &args.store.database_url {
        None => SecretHome::DataDir(args.store.data.clone()),
        Some(_) => SecretHome::Store(store.tree(SECRETS_TREE_NAME)?),
    };
    let (jwt, key_source) = build_jwt(&jwt_config, &secret_home, args.token_ttl_secs)?;
    tracing::info!(keys = %key_source, "token verification configured");
    let options = HttpOptions {
        rate_limit: RateLimit {
            per_second: f64::from(args.rate_limit_per_s),
            burst: f64::from(args.rate_limit_burst),
        },
        timeouts: Timeouts {
            header_read: Duration::from_secs(args.header_read_timeout_secs),
            body_read: Duration::from_secs(args.body_read_timeout_secs),
            idle: Duration::from_secs(args.idle_timeout_secs),
            ws_handshake: Duration::from_secs(args.ws_handshake_timeout_secs),
        },
        metrics: MetricsAccess {
            separate_listener: args.metrics_listen.is_some(),
            token: args.metrics_token.clone().filter(|t| !t.is_empty()),
        },
        ..HttpOptions::default()
    };
    let store_dyn: Arc<dyn EventStore> = store.clone();
    let kv: Arc<dyn KvProvider> = store.clone();
    let state = AppState::open(store_dyn, kv, jwt, options).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let metrics_listener = match args.metrics_listen {
        Some(at) => {
            let l = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("binding {at} (--metrics-listen)"))?;
            tracing::info!(addr = %l.local_addr()?, "metrics listening");
            Some(l)
        }
        None => None,
    };
    if args.demo {
        let summary = command_api::demo::seed(&state)
            .await
            .context("seeding the demo tenant")?;
        println!("{}", summary.instructions(addr));
    }
    tracing::info!(%addr, store = %args.store.describe(), "ticketlog listening");
    let expiry = expiry::spawn(state.service().clone());
    // One signal stops both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        signals::shutdown_signal().await;
        stop_tx.send_replace(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let metrics_server = metrics_listener.map(|l| {
        tokio::spawn(command_api::http::serve_metrics(
            l,
            state.clone(),
            stopped(stop_rx.clone()),
        ))
    });
    let served = command_api::http::serve(listener, state.clone(), stopped(stop_rx)).await;
    if let Some(task) = metrics_server {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the metrics listener failed"),
            Err(e) => tracing::warn!(error = %e, "the metrics listener's task failed"),
        }
    }
    expiry.stop().await;
    state.shutdown().await;
    // In-flight requests have finished (graceful shutdown); make every
    // acknowledged write durable and stop the writer before exiting.
    let closed = store.close().await;
    served.context("serving")?;
    closed.context("closing the store")?;
    tracing::info!("store closed cleanly");
    Ok(())
}
