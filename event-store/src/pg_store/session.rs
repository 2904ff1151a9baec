//! The PostgreSQL sessions of the store: how they are configured (the
//! durability and liveness settings every session carries) and opened.

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls};

use crate::error::StoreError;
use crate::limits::{
    PG_CONNECT_TIMEOUT_MILLIS, PG_IDLE_IN_TRANSACTION_TIMEOUT_MILLIS, PG_KEEPALIVE_IDLE_SECS,
    PG_KEEPALIVE_INTERVAL_SECS, PG_KEEPALIVE_RETRIES,
};

/// The connection settings for `url`, with what every session of the store
/// must carry: `synchronous_commit = on` (a commit returns only once it is
/// durable), an idle-in-transaction timeout and TCP keepalives on both ends
/// (a dead or hung writer releases the log head).
pub fn session_config(url: &str) -> Result<Config, StoreError> {
    let mut config = Config::from_str(url)
        .map_err(|e| StoreError::Unavailable(format!("invalid database URL: {e}")))?;
    let ours = format!(
        "-c synchronous_commit=on -c idle_in_transaction_session_timeout={PG_IDLE_IN_TRANSACTION_TIMEOUT_MILLIS} \
         -c tcp_keepalives_idle={PG_KEEPALIVE_IDLE_SECS} -c tcp_keepalives_interval={PG_KEEPALIVE_INTERVAL_SECS} \
         -c tcp_keepalives_count={PG_KEEPALIVE_RETRIES}"
    );
    let options = match config.get_options() {
        Some(theirs) if !theirs.is_empty() => format!("{theirs} {ours}"),
        _ => ours,
    };
    config
        .options(options)
        .application_name("ticketlog")
        .connect_timeout(Duration::from_millis(PG_CONNECT_TIMEOUT_MILLIS))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(PG_KEEPALIVE_IDLE_SECS))
        .keepalives_interval(Duration::from_secs(PG_KEEPALIVE_INTERVAL_SECS))
        .keepalives_retries(PG_KEEPALIVE_RETRIES);
    Ok(config)
}

/// Opens one session; its connection is driven by a task of its own.
pub async fn connect(config: &Config) -> Result<Client, StoreError> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "database connection ended");
        }
    });
    Ok(client)
}

/// Whether `e` is the database's own answer (the statement failed and the
/// transaction is rolled back) rather than a lost connection (after which
/// a COMMIT may or may not have happened).
pub(crate) fn is_db_answer(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some()
}
