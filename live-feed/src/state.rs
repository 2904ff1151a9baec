//! The feed's shared state: what the `/ws` handler and every connection use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use event_store::EventStore;
use tokio::sync::watch;

use crate::auth::Authenticate;
use crate::config::FeedConfig;
use crate::conn::ConnId;
use crate::hub::Hub;
use crate::receipts::{NoReadReceipts, ReadReceipts};
use crate::stats::{FeedStats, FeedStatsSnapshot};

/// Everything `/ws` needs; cheap to clone. Create it inside a Tokio
/// runtime: it starts the task that follows the log.
#[derive(Clone)]
pub struct FeedState {
    store: Arc<dyn EventStore>,
    authenticator: Arc<dyn Authenticate>,
    receipts: Arc<dyn ReadReceipts>,
    config: Arc<FeedConfig>,
    hub: Arc<Hub>,
    shutdown: Arc<watch::Sender<bool>>,
    open: Arc<watch::Sender<u64>>,
    next_id: Arc<AtomicU64>,
    stats: Arc<FeedStats>,
    /// Bumped when sessions were revoked: every connection asks again
    /// whether its token is still accepted.
    revocations: Arc<watch::Sender<u64>>,
}

impl FeedState {
    /// Starts following the log of `store` from its head. Read receipts are
    /// refused until [`FeedState::with_read_receipts`] wires them in.
    pub fn new(
        store: Arc<dyn EventStore>,
        authenticator: Arc<dyn Authenticate>,
        config: FeedConfig,
    ) -> Self {
        let stats = Arc::new(FeedStats::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let hub = Hub::start(Arc::clone(&store), Arc::clone(&stats), shutdown_rx);
        FeedState {
            store,
            authenticator,
            receipts: Arc::new(NoReadReceipts),
            config: Arc::new(config),
            hub,
            shutdown: Arc::new(shutdown),
            open: Arc::new(watch::channel(0).0),
            next_id: Arc::new(AtomicU64::new(1)),
            stats,
            revocations: Arc::new(watch::channel(0).0),
        }
    }

    /// Persists read receipts through `receipts` (a write-side command).
    pub fn with_read_receipts(mut self, receipts: Arc<dyn ReadReceipts>) -> Self {
        self.receipts = receipts;
        self
    }

    /// Closes every socket with 1001 and refuses new ones; the hub stops.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Tells every open connection that tokens were revoked: each checks
    /// its token again and closes with 4001 if it is no longer accepted.
    pub fn sessions_revoked(&self) {
        self.revocations.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Waits until no connection is open (after [`FeedState::shutdown`]:
    /// until every close frame was sent or timed out).
    pub async fn closed(&self) {
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|open| *open == 0).await;
    }

    /// The counters now.
    pub fn stats(&self) -> FeedStatsSnapshot {
        self.stats.snapshot(*self.open.borrow())
    }

    /// Position of the last log event the feed has fanned out.
    pub fn position(&self) -> u64 {
        self.hub.cursor()
    }

    pub(crate) fn authenticator(&self) -> &dyn Authenticate {
        self.authenticator.as_ref()
    }

    pub(crate) fn config(&self) -> &FeedConfig {
        &self.config
    }

    pub(crate) fn hub(&self) -> Arc<Hub> {
        Arc::clone(&self.hub)
    }

    pub(crate) fn store(&self) -> Arc<dyn EventStore> {
        Arc::clone(&self.store)
    }

    pub(crate) fn receipts(&self) -> Arc<dyn ReadReceipts> {
        Arc::clone(&self.receipts)
    }

    pub(crate) fn stats_handle(&self) -> Arc<FeedStats> {
        Arc::clone(&self.stats)
    }

    pub(crate) fn revocation_signal(&self) -> watch::Receiver<u64> {
        self.revocations.subscribe()
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub(crate) fn next_conn_id(&self) -> ConnId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a connection as open until the guard drops.
    pub(crate) fn connection_opened(&self) -> OpenGuard {
        self.stats.connected();
        self.open.send_modify(|n| *n += 1);
        OpenGuard {
            open: Arc::clone(&self.open),
        }
    }
}

/// Decrements the open-connection count when a connection ends.
pub(crate) struct OpenGuard {
    open: Arc<watch::Sender<u64>>,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.open.send_modify(|n| *n = n.saturating_sub(1));
    }
}
