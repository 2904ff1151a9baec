//! Where a command finds its store: the embedded one in a data directory,
//! or a PostgreSQL database. Every command that opens a store takes these
//! flags and opens it here, so each works the same on both.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use command_api::config::store_path;
use event_store::{PgOptions, PgStore, SledOptions, SledStore, Storage};

/// `--data` and `--database-url`.
#[derive(Debug, Clone, Args)]
pub struct StoreLocation {
    /// Data directory: the embedded store and node-local files (unused with --database-url).
    #[arg(long, env = "TICKETLOG_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// PostgreSQL store (`postgres://USER@HOST:PORT/DB`) instead of the embedded one in --data.
    #[arg(long, env = "TICKETLOG_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// Whether opening may create an empty store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// A new store is created when there is none (`serve`, `user add`).
    IfMissing,
    /// The store must exist already (the read-only and repair commands).
    Never,
}

impl StoreLocation {
    /// Opens the store (on the current tokio runtime), with `sled` for the
    /// embedded one. A PostgreSQL schema is created or migrated on open
    /// whatever `create` says: an empty database is an empty log.
    pub async fn open(
        &self,
        create: Create,
        sled: SledOptions,
    ) -> anyhow::Result<Arc<dyn Storage>> {
        if let Some(url) = &self.database_url {
            let store = PgStore::open(url, PgOptions::default())
                .await
                .context("opening the PostgreSQL store")?;
            return Ok(store);
        }
        Ok(open_sled(&self.data, create, sled)?)
    }

    /// For messages: where the store is (never the URL, which may hold a password).
    pub fn describe(&self) -> String {
        match &self.database_url {
            Some(_) => "the PostgreSQL database".to_string(),
            None => self.data.display().to_string(),
        }
    }
}

/// The embedded store of `data`.
pub fn open_sled(
    data: &Path,
    create: Create,
    options: SledOptions,
) -> anyhow::Result<Arc<SledStore>> {
    let path = store_path(data);
    match create {
        Create::IfMissing => {
            std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?
        }
        Create::Never if !path.exists() => {
            anyhow::bail!("no event store in {}", data.display())
        }
        Create::Never => {}
    }
    SledStore::open(&path, options).with_context(|| {
        format!(
            "opening the store in {} (is a server running on it?)",
            data.display()
        )
    })
}
