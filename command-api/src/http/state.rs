//! The state every handler shares.

use std::sync::Arc;
use std::time::Duration;

use event_store::{EventStore, KvProvider, StoreError};
use projections::{ProjectionError, Projections, ProjectionsConfig};
use snapshots::{SnapshotConfig, SnapshotStore};
use thiserror::Error;
use tokio::sync::Semaphore;

use super::limits::{
    LOGIN_CONCURRENCY_MAX, RATE_LIMIT_BURST_REQUESTS_DEFAULT, RATE_LIMIT_PER_USER_PER_S_DEFAULT,
};
use super::live::{FeedAuth, FeedReceipts};
use super::login_throttle::LoginThrottle;
use super::metrics::Metrics;
use super::metrics_access::MetricsAccess;
use super::rate_limit::{RateLimit, RateLimiter};
use super::timeouts::Timeouts;
use crate::auth::users::USERS_TREE_NAME;
use crate::auth::{AuthError, JwtAuth, Revocations, UserDirectory, VerifiedToken};
use crate::service::{CommandService, ReceiptDesk, ServiceConfig, RECEIPT_STORE_INTERVAL_MS};

/// Name of the side tree holding ticket (write model) snapshots.
pub const TICKET_SNAPSHOTS_TREE_NAME: &str = "ticket-snapshots";

/// Tunables of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Per-user request rate.
    pub rate_limit: RateLimit,
    /// The live feed's settings (origins, ping interval, queue depth).
    pub feed: live_feed::FeedConfig,
    /// Shortest time between two stored read receipts of one reader for
    /// one ticket (later ones wait, the latest is stored when it ends).
    pub receipt_store_interval: Duration,
    /// How long a client may take over each part of a connection.
    pub timeouts: Timeouts,
    /// Where `/metrics` is served and with which credential.
    pub metrics: MetricsAccess,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            rate_limit: RateLimit {
                per_second: f64::from(RATE_LIMIT_PER_USER_PER_S_DEFAULT),
                burst: f64::from(RATE_LIMIT_BURST_REQUESTS_DEFAULT),
            },
            feed: live_feed::FeedConfig::default(),
            receipt_store_interval: Duration::from_millis(RECEIPT_STORE_INTERVAL_MS),
            timeouts: Timeouts::default(),
            metrics: MetricsAccess::default(),
        }
    }
}

/// Why the state could not be built.
#[derive(Debug, Error)]
pub enum StartError {
    /// The store failed (opening side trees).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The projections could not be loaded or caught up.
    #[error(transparent)]
    Projections(#[from] ProjectionError),
    /// The revocation list could not be read.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

struct Inner {
    service: Arc<CommandService>,
    receipts: Arc<ReceiptDesk>,
    feed: live_feed::FeedState,
    projections: Projections,
    follower: std::sync::Mutex<Option<tokio::task::JoinHandle<Result<(), ProjectionError>>>>,
    jwt: Arc<JwtAuth>,
    users: Arc<UserDirectory>,
    revocations: Arc<Revocations>,
    limiter: RateLimiter,
    login_throttle: LoginThrottle,
    login_slots: Semaphore,
    metrics: Metrics,
    timeouts: Timeouts,
    metrics_access: MetricsAccess,
}

/// Shared, cheaply cloned state of the router.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// State over a store, its side trees (user directory, projection
    /// snapshots), the JWT configuration and the HTTP options. Loads the
    /// projections, catches them up and starts following the log.
    pub async fn open(
        store: Arc<dyn EventStore>,
        kv: Arc<dyn KvProvider>,
        jwt: JwtAuth,
        options: HttpOptions,
    ) -> Result<Self, StartError> {
        let users_tree = kv.tree(USERS_TREE_NAME)?;
        let now_secs = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
        // Revocations live beside the users, so they survive a restart.
        let revocations = Arc::new(Revocations::open(users_tree.clone(), now_secs)?);
        let users = Arc::new(UserDirectory::new(users_tree));
        let snapshots = SnapshotStore::new(
            kv.tree(TICKET_SNAPSHOTS_TREE_NAME)?,
            SnapshotConfig::default(),
        );
        let service = Arc::new(
            CommandService::new(store.clone(), snapshots, ServiceConfig::default())
                .with_members(users.clone()),
        );
        let jwt = Arc::new(jwt);
        let receipts = ReceiptDesk::start(service.clone(), options.receipt_store_interval);
        let feed = live_feed::FeedState::new(
            store.clone(),
            Arc::new(FeedAuth {
                jwt: jwt.clone(),
                revocations: revocations.clone(),
            }),
            options.feed.clone(),
        )
        .with_read_receipts(Arc::new(FeedReceipts(receipts.clone())));
        let (projections, report) =
            Projections::open(store.clone(), kv.clone(), ProjectionsConfig::default()).await?;
        tracing::info!(
            position = report.position,
            replayed = report.replayed,
            "projections loaded"
        );
        let follower = projections.spawn();
        Ok(AppState(Arc::new(Inner {
            service,
            receipts,
            feed,
            projections,
            follower: std::sync::Mutex::new(Some(follower)),
            jwt,
            users,
            revocations,
            limiter: RateLimiter::new(options.rate_limit),
            login_throttle: LoginThrottle::default(),
            login_slots: Semaphore::new(LOGIN_CONCURRENCY_MAX),
            metrics: Metrics::default(),
            timeouts: options.timeouts,
            metrics_access: options.metrics,
        })))
    }

    /// Closes every WebSocket (1001) and refuses new ones, so that the
    /// server's graceful shutdown is not held open by live connections.
    pub fn close_live_connections(&self) {
        self.0.feed.shutdown();
    }

    /// Stops the live feed and the projection follower (it writes a final
    /// snapshot). Call after the server has stopped and before closing the store.
    pub async fn shutdown(&self) {
        self.0.feed.shutdown();
        self.0.feed.closed().await;
        // Receipts waiting for their interval are stored before the log closes.
        self.0.receipts.stop().await;
        self.0.projections.stop();
        let follower = self
            .0
            .follower
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = follower {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "projection follower ended with an error"),
                Err(e) => tracing::warn!(error = %e, "projection follower task failed"),
            }
        }
    }

    /// The write side: executes commands.
    pub fn service(&self) -> &Arc<CommandService> {
        &self.0.service
    }

    /// The live feed behind `/ws`.
    pub fn feed(&self) -> &live_feed::FeedState {
        &self.0.feed
    }

    /// The read models.
    pub fn projections(&self) -> &Projections {
        &self.0.projections
    }

    /// Token verification and issuing.
    pub fn jwt(&self) -> &JwtAuth {
        &self.0.jwt
    }

    /// The built-in user directory.
    pub fn users(&self) -> &Arc<UserDirectory> {
        &self.0.users
    }

    /// Per-user request limiter.
    pub fn limiter(&self) -> &RateLimiter {
        &self.0.limiter
    }

    /// Login throttling per client address and per (account, address).
    pub(crate) fn login_throttle(&self) -> &LoginThrottle {
        &self.0.login_throttle
    }

    /// Revoked tokens and per-user "not before" instants.
    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.0.revocations
    }

    /// The presented token, verified and not revoked.
    pub fn verify_session(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        self.0.revocations.verify(&self.0.jwt, token)
    }

    /// Slots for concurrent password verifications.
    pub(crate) fn login_slots(&self) -> &Semaphore {
        &self.0.login_slots
    }

    /// The process's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The connection timeouts the server enforces.
    pub fn timeouts(&self) -> Timeouts {
        self.0.timeouts
    }

    /// Where `/metrics` is served and with which credential.
    pub fn metrics_access(&self) -> &MetricsAccess {
        &self.0.metrics_access
    }
}
