//! The read side opened by a CLI command on a data directory while no
//! server runs on it: the store, the projection snapshot brought up to the
//! log's head (with a progress bar when that means folding many events),
//! and local principals.
//!
//! The CLI reads the data directory directly, so whoever runs it already
//! holds every byte of the log: the principals it builds for itself are
//! trusted, and they exist only so that every answer still goes through the
//! same permission-aware queries (and thus `event_store::access`) as the API.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use command_api::progress::{bar_progress, events_bar};
use event_store::{EventStore, KvProvider, Principal, Role, SledOptions, Storage};
use indicatif::ProgressBar;
use projections::model::ReadModel;
use projections::persist::{self, Loaded, SnapshotSlot, TREE_NAME};
use projections::replay::fold_into;
use projections::{Projections, ProjectionsConfig};
use uuid::Uuid;

use super::location::{Create, StoreLocation};

/// Events behind the head from which folding shows a progress bar (below
/// it, the fold takes well under a second).
pub const PROGRESS_BAR_MIN_EVENTS: u64 = 20_000;

/// Namespace of the CLI principals' user ids (stable across runs, so a
/// reader of the output can tell the CLI apart from real users).
const CLI_PRINCIPAL_NAMESPACE: Uuid = Uuid::from_u128(0x3c51_7a0e_94d2_4b8f_a1c6_0f2e_5d83_b947);

/// A principal of `tenant` with `role`, for the CLI itself (see the module
/// documentation for why it is trusted).
pub fn cli_principal(tenant: &str, role: Role) -> Principal {
    let name = format!("ticketlog-cli-{}", role.as_str());
    Principal {
        user_id: Uuid::new_v5(&CLI_PRINCIPAL_NAMESPACE, name.as_bytes()),
        tenant: tenant.to_string(),
        role,
        name,
    }
}

/// A multi-thread runtime for one CLI command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Opens the existing store at `location`.
pub async fn open_store(location: &StoreLocation) -> anyhow::Result<Arc<dyn Storage>> {
    location.open(Create::Never, SledOptions::default()).await
}

/// What [`fold_and_save`] did.
#[derive(Debug, Clone, Copy)]
pub struct Folded {
    /// Events folded in this run.
    pub events: u64,
    /// Position of the saved snapshot.
    pub position: u64,
    /// Size of the saved snapshot, bytes.
    pub snapshot_bytes: u64,
    /// Seconds spent folding.
    pub fold_s: f64,
    /// Seconds spent writing the snapshot.
    pub save_s: f64,
}

/// Folds the log from `model`'s position to the head into `model`, then
/// saves it as the projection snapshot (state and checkpoint in one atomic
/// write), so the next `serve` (or CLI command) starts from it.
pub async fn fold_and_save(
    store: &Arc<dyn Storage>,
    model: ReadModel,
    bar: &ProgressBar,
) -> anyhow::Result<Folded> {
    let from = model.position;
    let head = store.head().await?;
    let started = Instant::now();
    let store_dyn: Arc<dyn EventStore> = store.clone();
    let model = fold_into(model, store_dyn, head, Some(bar_progress(bar)))
        .await
        .context("folding the log")?;
    let fold_s = started.elapsed().as_secs_f64();
    let slot = SnapshotSlot::new(store.tree(TREE_NAME)?);
    let saved = Instant::now();
    let position = model.position;
    let snapshot_bytes = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let encoded = persist::encode(&model)?;
        let bytes = encoded.len();
        slot.save(model.position, encoded)?;
        Ok(bytes)
    })
    .await
    .context("snapshot task")??;
    Ok(Folded {
        events: position - from,
        position,
        snapshot_bytes,
        fold_s,
        save_s: saved.elapsed().as_secs_f64(),
    })
}

/// The projections over `store`, as the server would load them. When the
/// stored snapshot is far behind the head (or missing), the tail is folded
/// first with a progress bar and saved, so that `Projections::open` (which
/// has no progress callback) only loads it.
pub async fn open_projections(store: &Arc<dyn Storage>) -> anyhow::Result<Projections> {
    let head = store.head().await?;
    let slot = SnapshotSlot::new(store.tree(TREE_NAME)?);
    let behind = head.saturating_sub(slot.position().unwrap_or(0));
    if behind >= PROGRESS_BAR_MIN_EVENTS {
        let load = slot.clone();
        let model = match tokio::task::spawn_blocking(move || load.load())
            .await
            .context("snapshot load task")?
        {
            Loaded::Model(m) => *m,
            Loaded::Missing | Loaded::Corrupt(_) => ReadModel::default(),
        };
        let bar = events_bar("loading the read model", true);
        let folded = fold_and_save(store, model, &bar).await;
        bar.finish_and_clear();
        folded?;
    }
    let store_dyn: Arc<dyn EventStore> = store.clone();
    let kv: Arc<dyn KvProvider> = store.clone();
    let (projections, _) = Projections::open(store_dyn, kv, ProjectionsConfig::default())
        .await
        .context("loading the projections")?;
    Ok(projections)
}
