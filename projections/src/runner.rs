//! The projection runner: loads the last snapshot, catches up from its
//! checkpoint, follows the live log, snapshots periodically, rebuilds
//! beside the live model and swaps atomically. Also the query façade the
//! HTTP layer calls (one method per route).

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use event_store::{
    can_see, EventStore, KvProvider, Pages, Permission, Principal, RecordedEvent, StoreError,
    TicketId,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Mutex};

use crate::audit::{self, event_json, AuditReport, EventsPage};
use crate::chat::ChatPage;
use crate::error::ProjectionError;
use crate::limits::{
    APPLY_BATCH_EVENTS, AUDIT_STREAM_EVENTS_MAX, EVENTS_SCAN_MAX, READ_PAGE_EVENTS,
    REBUILD_SWAP_GAP_EVENTS, RESUBSCRIBE_BACKOFF_MS, SNAPSHOT_EVERY_EVENTS, SNAPSHOT_EVERY_SECS,
    WAIT_FOR_MAX_MS,
};
use crate::model::{ReadModel, UnreadSummary};
use crate::persist::{self, Loaded, SnapshotSlot, TREE_NAME};
use crate::query::{page_limit, AsOf, Page, TicketQuery};
use crate::replay::fold_into;
use crate::stats::{SlaTargets, StatsQuery, StatsReport};
use crate::ticket::ShownTicket;

/// Names accepted by `rebuild --projection`: every view lives in one read
/// model so that they always agree on the position they reflect.
pub const PROJECTION_NAMES: [&str; 1] = ["read_model"];

/// Progress callback: `(events done, events total)`.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// How the runner behaves.
#[derive(Debug, Clone)]
pub struct ProjectionsConfig {
    /// SLA targets for the statistics.
    pub sla: SlaTargets,
    /// Events between snapshots.
    pub snapshot_every_events: u64,
    /// Longest time between snapshots while events arrive.
    pub snapshot_every: Duration,
}

impl Default for ProjectionsConfig {
    fn default() -> Self {
        ProjectionsConfig {
            sla: SlaTargets::default(),
            snapshot_every_events: SNAPSHOT_EVERY_EVENTS,
            snapshot_every: Duration::from_secs(SNAPSHOT_EVERY_SECS),
        }
    }
}

/// Where the state served after `open` came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "source")]
pub enum SnapshotSource {
    /// A valid snapshot at this position.
    Loaded {
        /// Its checkpoint.
        position: u64,
    },
    /// None stored: folded from position 1.
    Missing,
    /// A corrupt one, ignored: folded from position 1.
    Corrupt {
        /// What was wrong.
        reason: String,
    },
}

/// What `open` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenReport {
    /// Where the state came from.
    pub snapshot: SnapshotSource,
    /// Events folded after the snapshot.
    pub replayed: u64,
    /// Position served now.
    pub position: u64,
    /// Wall time of `open`, in seconds.
    pub elapsed_s: f64,
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RebuildReport {
    /// Events folded.
    pub events: u64,
    /// Position of the swapped-in model.
    pub position: u64,
    /// Wall time, in seconds.
    pub elapsed_s: f64,
    /// Events per second.
    pub events_per_s: f64,
}

struct Inner {
    store: Arc<dyn EventStore>,
    slot: SnapshotSlot,
    config: ProjectionsConfig,
    model: RwLock<ReadModel>,
    /// Held by whoever advances or replaces the model, so events are
    /// applied by one writer at a time and exactly once.
    advance: Mutex<SnapshotClock>,
    /// Serializes snapshot writes.
    persist: Mutex<u64>,
    position: watch::Sender<u64>,
    stop: watch::Sender<bool>,
}

struct SnapshotClock {
    position: u64,
    at: Instant,
}

/// The read side: shared handle to the live read model (cheap to clone).
#[derive(Clone)]
pub struct Projections {
    inner: Arc<Inner>,
}

impl Projections {
    /// Loads the last snapshot from `kv` (or starts from position 1 if it
    /// is missing or corrupt), folds the log up to its current head, and
    /// returns a handle that serves reads. Call [`Projections::spawn`] to
    /// follow the live log.
    pub async fn open(
        store: Arc<dyn EventStore>,
        kv: Arc<dyn KvProvider>,
        config: ProjectionsConfig,
    ) -> Result<(Projections, OpenReport), ProjectionError> {
        let started = Instant::now();
        let slot = SnapshotSlot::new(kv.tree(TREE_NAME)?);
        let load_slot = slot.clone();
        let loaded = tokio::task::spawn_blocking(move || load_slot.load())
            .await
            .map_err(|e| ProjectionError::Snapshot(format!("load task: {e}")))?;
        let (model, snapshot) = match loaded {
            Loaded::Model(m) => {
                let position = m.position;
                (*m, SnapshotSource::Loaded { position })
            }
            Loaded::Missing => (ReadModel::default(), SnapshotSource::Missing),
            Loaded::Corrupt(reason) => {
                tracing::warn!(%reason, "projection snapshot corrupt; rebuilding from position 1");
                (ReadModel::default(), SnapshotSource::Corrupt { reason })
            }
        };
        let from = model.position;
        let head = store.head().await?;
        let model = fold_into(model, store.clone(), head, None).await?;
        let position = model.position;
        let (position_tx, _) = watch::channel(position);
        let (stop, _) = watch::channel(false);
        let snapshot_position = if matches!(snapshot, SnapshotSource::Loaded { .. }) {
            from
        } else {
            0
        };
        let projections = Projections {
            inner: Arc::new(Inner {
                store,
                slot,
                config,
                model: RwLock::new(model),
                advance: Mutex::new(SnapshotClock {
                    position: snapshot_position,
                    at: Instant::now(),
                }),
                persist: Mutex::new(snapshot_position),
                position: position_tx,
                stop,
            }),
        };
        if position > snapshot_position
            && position - snapshot_position >= projections.inner.config.snapshot_every_events
            || (snapshot_position == 0 && position > 0)
        {
            projections.snapshot().await?;
        }
        let report = OpenReport {
            snapshot,
            replayed: position - from,
            position,
            elapsed_s: started.elapsed().as_secs_f64(),
        };
        Ok((projections, report))
    }

    fn read(&self) -> RwLockReadGuard<'_, ReadModel> {
        self.inner
            .model
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The last position folded into the served model.
    pub fn position(&self) -> u64 {
        *self.inner.position.borrow()
    }

    /// The SLA targets statistics are computed against.
    pub fn sla(&self) -> SlaTargets {
        self.inner.config.sla
    }

    /// Runs `f` over the live model under its read lock (keep it short).
    pub fn with_model<T>(&self, f: impl FnOnce(&ReadModel) -> T) -> T {
        f(&self.read())
    }

    /// Read-your-writes: waits until the model has folded `position`,
    /// at most `timeout` (capped at `WAIT_FOR_MAX_MS`).
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<u64, ProjectionError> {
        let mut rx = self.inner.position.subscribe();
        let timeout = timeout.min(Duration::from_millis(WAIT_FOR_MAX_MS));
        let reached = tokio::time::timeout(timeout, async {
            rx.wait_for(|p| *p >= position).await.map(|p| *p)
        })
        .await;
        match reached {
            Ok(Ok(p)) => Ok(p),
            _ => Err(ProjectionError::NotCaughtUp {
                wanted: position,
                reached: self.position(),
            }),
        }
    }

    // ---- queries -------------------------------------------------------

    /// `GET /api/v1/tickets`.
    pub fn tickets(
        &self,
        principal: &Principal,
        query: &TicketQuery,
    ) -> Result<Page<ShownTicket>, ProjectionError> {
        self.read().tickets(principal, query)
    }

    /// `GET /api/v1/tickets/{id}`.
    pub fn ticket(
        &self,
        principal: &Principal,
        id: TicketId,
    ) -> Result<ShownTicket, ProjectionError> {
        self.read().ticket(principal, id)
    }

    /// `GET /api/v1/tickets/{id}/chat?after=&limit=`.
    pub fn chat(
        &self,
        principal: &Principal,
        id: TicketId,
        after: Option<u64>,
        limit: Option<usize>,
    ) -> Result<ChatPage, ProjectionError> {
        self.read().chat(principal, id, after.unwrap_or(0), limit)
    }

    /// Unread comment counts of the principal over the tickets they see.
    pub fn unread(&self, principal: &Principal) -> UnreadSummary {
        self.read().unread(principal)
    }

    /// `GET /api/v1/stats`, with `now` for an absent `to` and for the age
    /// of unresolved tickets.
    pub fn stats(
        &self,
        principal: &Principal,
        query: &StatsQuery,
        now: DateTime<Utc>,
    ) -> Result<StatsReport, ProjectionError> {
        self.read()
            .stats(principal, query, &self.inner.config.sla, now)
    }

    /// `GET /api/v1/tickets/{id}/audit?as_of=`: read from the ticket's
    /// stream in the log, so it shows exactly what was recorded.
    pub async fn audit(
        &self,
        principal: &Principal,
        id: TicketId,
        as_of: Option<AsOf>,
    ) -> Result<AuditReport, ProjectionError> {
        // Cheap refusal first, so invisible ids cost no stream read.
        if !self.read().can_open(principal, id) {
            return Err(ProjectionError::NotFound);
        }
        let mut events: Vec<RecordedEvent> = vec![];
        let mut pages = Pages::stream(&*self.inner.store, id, 1).page_size(READ_PAGE_EVENTS);
        while let Some(page) = pages.next_page().await? {
            let done =
                as_of.is_some_and(|c| page.iter().any(|e| !c.includes(e.position, &e.recorded_at)));
            events.extend(page);
            if done || events.len() >= AUDIT_STREAM_EVENTS_MAX {
                break;
            }
        }
        audit::report(principal, &events, as_of)
    }

    /// `GET /api/v1/events?after=&limit=`: the raw log for `audit.read`
    /// holders, every event passed through `can_see`, up to the position
    /// the model has folded (whose audiences decide visibility).
    pub async fn events(
        &self,
        principal: &Principal,
        after: Option<u64>,
        limit: Option<usize>,
    ) -> Result<EventsPage, ProjectionError> {
        if !principal.has(Permission::AuditRead) {
            return Err(ProjectionError::Forbidden {
                permission: Permission::AuditRead.as_str(),
            });
        }
        let limit = page_limit(limit)?;
        let head = self.position();
        let mut cursor = after.unwrap_or(0);
        let mut items = vec![];
        let mut scanned = 0usize;
        let mut pages = Pages::log(&*self.inner.store, cursor.saturating_add(1))
            .page_size(READ_PAGE_EVENTS)
            .until(head);
        while items.len() < limit && scanned < EVENTS_SCAN_MAX {
            let Some(page) = pages.next_page().await? else {
                break;
            };
            let model = self.read();
            for e in &page {
                scanned += 1;
                cursor = e.position;
                if model
                    .audience(e.stream_id)
                    .is_some_and(|a| can_see(principal, e, a))
                {
                    items.push(event_json(e, principal.sees_versions()));
                    if items.len() == limit {
                        break;
                    }
                }
            }
        }
        let next = (cursor < head).then_some(cursor);
        Ok(EventsPage {
            items,
            next,
            next_cursor: next.map(|n| n.to_string()),
        })
    }

    // ---- runner --------------------------------------------------------

    /// Spawns the follower: applies live events as they are appended until
    /// [`Projections::stop`]; writes a final snapshot on the way out.
    pub fn spawn(&self) -> tokio::task::JoinHandle<Result<(), ProjectionError>> {
        let this = self.clone();
        tokio::spawn(async move { this.follow().await })
    }

    /// Asks the follower to stop after its current batch.
    pub fn stop(&self) {
        self.inner.stop.send_replace(true);
    }

    async fn follow(self) -> Result<(), ProjectionError> {
        let mut stop = self.inner.stop.subscribe();
        'subscribe: while !*stop.borrow_and_update() {
            let from = self.position() + 1;
            let mut stream = self
                .inner
                .store
                .subscribe(from)
                .ready_chunks(APPLY_BATCH_EVENTS);
            loop {
                let batch = tokio::select! {
                    _ = stop.changed() => break 'subscribe,
                    batch = stream.next() => batch,
                };
                let Some(batch) = batch else {
                    // The store ended the stream (closing); try again later.
                    tokio::time::sleep(Duration::from_millis(RESUBSCRIBE_BACKOFF_MS)).await;
                    continue 'subscribe;
                };
                let mut events = Vec::with_capacity(batch.len());
                let mut failure = None;
                for item in batch {
                    match item {
                        Ok(e) => events.push(e),
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                let gap = self.apply_live(&events).await;
                self.maybe_snapshot().await?;
                if gap {
                    continue 'subscribe;
                }
                match failure {
                    None => {}
                    // Everything before `resume_from` has been applied, so
                    // resubscribing from our own checkpoint resumes there.
                    Some(StoreError::Lagged { resume_from }) => {
                        tracing::debug!(resume_from, "projection lagged; resubscribing");
                        continue 'subscribe;
                    }
                    Some(StoreError::Closed) => break 'subscribe,
                    Some(e) => {
                        tracing::warn!(error = %e, "projection subscription failed; resubscribing");
                        tokio::time::sleep(Duration::from_millis(RESUBSCRIBE_BACKOFF_MS)).await;
                        continue 'subscribe;
                    }
                }
            }
        }
        self.snapshot().await
    }

    /// Applies a batch under one write lock; true if it hit a gap (the
    /// subscription must restart from the checkpoint).
    async fn apply_live(&self, events: &[Arc<RecordedEvent>]) -> bool {
        if events.is_empty() {
            return false;
        }
        let _advance = self.inner.advance.lock().await;
        let (position, gap) = {
            let mut model = self
                .inner
                .model
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let mut gap = false;
            for e in events {
                if model.apply(e).is_err() {
                    gap = true;
                    break;
                }
            }
            (model.position, gap)
        };
        self.inner.position.send_replace(position);
        gap
    }

    /// Folds whatever the log holds beyond the checkpoint (for the CLI and
    /// tests; the follower does this continuously).
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        let _advance = self.inner.advance.lock().await;
        let mut pages =
            Pages::log(&*self.inner.store, self.position() + 1).page_size(READ_PAGE_EVENTS);
        while let Some(page) = pages.next_page().await? {
            let position = {
                let mut model = self
                    .inner
                    .model
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                for e in &page {
                    model.apply(e).map_err(|g| {
                        ProjectionError::Store(StoreError::Corrupt {
                            position: g.got,
                            reason: format!("log skips from {} to {}", g.expected, g.got),
                        })
                    })?;
                }
                model.position
            };
            self.inner.position.send_replace(position);
        }
        Ok(self.position())
    }

    async fn maybe_snapshot(&self) -> Result<(), ProjectionError> {
        let due = {
            let clock = self.inner.advance.lock().await;
            let behind = self.position().saturating_sub(clock.position);
            behind >= self.inner.config.snapshot_every_events
                || (behind > 0 && clock.at.elapsed() >= self.inner.config.snapshot_every)
        };
        if due {
            self.snapshot().await?;
        }
        Ok(())
    }

    /// Writes a snapshot of the live model now (state and checkpoint in one
    /// blob). Readers keep reading meanwhile; the follower waits.
    pub async fn snapshot(&self) -> Result<(), ProjectionError> {
        let mut written = self.inner.persist.lock().await;
        let inner = self.inner.clone();
        let last = *written;
        let position = tokio::task::spawn_blocking(move || -> Result<u64, ProjectionError> {
            let (position, encoded) = {
                let model = inner.model.read().unwrap_or_else(PoisonError::into_inner);
                if model.position <= last {
                    return Ok(last);
                }
                (model.position, persist::encode(&model)?)
            };
            inner.slot.save(position, encoded)?;
            Ok(position)
        })
        .await
        .map_err(|e| ProjectionError::Snapshot(format!("snapshot task: {e}")))??;
        *written = position;
        let mut clock = self.inner.advance.lock().await;
        clock.position = position;
        clock.at = Instant::now();
        Ok(())
    }

    /// Rebuilds every view from position 1 beside the live model (which
    /// keeps serving reads and following the log), then swaps the new one
    /// in atomically and snapshots it. `progress(done, total)` is called
    /// as events are folded.
    pub async fn rebuild(
        &self,
        progress: Option<Progress>,
    ) -> Result<RebuildReport, ProjectionError> {
        let started = Instant::now();
        let store = self.inner.store.clone();
        let total = store.head().await?;
        let mut fresh =
            fold_into(ReadModel::default(), store.clone(), total, progress.clone()).await?;
        // Chase the live model without stopping it until the gap is small.
        while self.position() > fresh.position + REBUILD_SWAP_GAP_EVENTS {
            fresh = fold_into(fresh, store.clone(), self.position(), progress.clone()).await?;
        }
        let old = {
            let _advance = self.inner.advance.lock().await;
            let live = self.position();
            fresh = fold_into(fresh, store.clone(), live, progress).await?;
            if fresh.position != live {
                return Err(ProjectionError::Snapshot(format!(
                    "rebuild reached {} but the live model is at {live}",
                    fresh.position
                )));
            }
            let mut model = self
                .inner
                .model
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *model, fresh)
        };
        let position = self.position();
        // Dropping a large model takes a while; not on a reader's path.
        tokio::task::spawn_blocking(move || drop(old));
        {
            let mut written = self.inner.persist.lock().await;
            *written = 0;
        }
        self.snapshot().await?;
        let elapsed_s = started.elapsed().as_secs_f64();
        Ok(RebuildReport {
            events: position,
            position,
            elapsed_s,
            events_per_s: if elapsed_s > 0.0 {
                position as f64 / elapsed_s
            } else {
                0.0
            },
        })
    }
}
