//! The store's tables, created and migrated on open: versioned in
//! `schema_version`, under an advisory lock so that processes starting at
//! once migrate one after the other.
//!
//! `events` holds each record exactly as sled stores it (`codec`: checksum,
//! hash chain, fingerprint) with the columns its indexes need; `log_head`
//! is the single row (position, last hash) every append locks; `streams`
//! and `commands` are the heads and first outcomes an append checks under
//! that lock, with unique keys as a second line of defence. `kv` holds the
//! side trees of the other crates.

use tokio_postgres::Client;

use crate::error::StoreError;

/// Key of the advisory lock held while migrating ("ticketlg" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x7469_636b_6574_6c67;

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: &[&str] = &[
    // 1: the log, its head, the stream heads and the command outcomes.
    "CREATE TABLE log_head (
         id boolean PRIMARY KEY DEFAULT true CHECK (id),
         position bigint NOT NULL CHECK (position >= 0),
         hash bytea NOT NULL CHECK (length(hash) = 32)
     );
     INSERT INTO log_head (position, hash) VALUES (0, decode(repeat('00', 32), 'hex'));
     CREATE TABLE events (
         position bigint PRIMARY KEY CHECK (position > 0),
         stream_id uuid NOT NULL,
         stream_version bigint NOT NULL CHECK (stream_version > 0),
         command_id uuid NOT NULL,
         record bytea NOT NULL,
         UNIQUE (stream_id, stream_version)
     );
     CREATE INDEX events_command_id ON events (command_id);
     CREATE TABLE streams (
         stream_id uuid PRIMARY KEY,
         version bigint NOT NULL CHECK (version > 0),
         kind text NOT NULL,
         tenant text NOT NULL
     );
     CREATE TABLE commands (
         command_id uuid PRIMARY KEY,
         stream_id uuid NOT NULL,
         first_position bigint NOT NULL UNIQUE,
         position bigint NOT NULL,
         version bigint NOT NULL,
         request_fingerprint bytea
     );",
    // 2: side trees (users, revocations, snapshots, checkpoints, secrets).
    "CREATE TABLE kv (
         tree text NOT NULL,
         key bytea NOT NULL,
         value bytea NOT NULL,
         PRIMARY KEY (tree, key)
     );",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION_PG: i32 = MIGRATIONS.len() as i32;

/// Creates or migrates the schema; refuses a database migrated by a newer build.
pub(crate) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let row = tx
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await?;
    let current: i32 = row.get(0);
    if current > SCHEMA_VERSION_PG {
        return Err(StoreError::Unavailable(format!(
            "the database has schema version {current}, this build knows {SCHEMA_VERSION_PG}"
        )));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(migration).await?;
        let version = i as i32 + 1;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await?;
        tracing::info!(version, "database schema migrated");
    }
    tx.commit().await?;
    Ok(())
}
