//! The PostgreSQL backend: the log in one table, written through a single
//! locked head row by a group-committing writer per process (any number
//! of processes may write the same database), read through a pool, and
//! followed by a tailer that wakes on `NOTIFY` and reads by position.
//!
//! Modules: [`schema`] (tables, versioned migrations), `append` (the
//! log-head writer), `reads`, `tail` (the live side of subscriptions),
//! `verify`, `kv` (side trees), [`session`] (the settings every session carries), `rows`,
//! `import` (another store's log copied in unchanged).

mod append;
mod batch_rows;
mod import;
mod kv;
mod reads;
mod rows;
pub mod schema;
pub mod session;
mod tail;
mod verify;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::{broadcast, mpsc, oneshot, watch, Notify};
use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::error::StoreError;
use crate::limits::{
    PG_CONNECT_TIMEOUT_MILLIS, PG_READ_POOL_CONNECTIONS, READ_PAGE_MAX, SUBSCRIBER_BUFFER_EVENTS,
    WRITER_QUEUE_DEPTH,
};
use crate::record::{AppendOutcome, AppendRequest, Appended, PriorCommand, RecordedEvent};
use crate::schema::StreamId;
use crate::store::{EventStore, EventStream, VerifyReport};

use crate::appending::WriterMsg;
use append::Writer;

/// The channel every writer notifies after a commit (payload: the new
/// head, for people watching; the tailer does not trust it).
pub const NOTIFY_CHANNEL: &str = "ticketlog_log";

/// Settings of a PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Live events buffered per subscriber before it is told it lagged.
    pub subscriber_buffer_events: usize,
    /// Sessions in the read pool.
    pub read_pool_connections: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            subscriber_buffer_events: SUBSCRIBER_BUFFER_EVENTS,
            read_pool_connections: PG_READ_POOL_CONNECTIONS,
        }
    }
}

/// State shared by the store handle, the tailer and the subscribers.
pub(crate) struct Shared {
    pool: Pool,
    /// Taken on close so that subscribers end.
    live: Mutex<Option<broadcast::Sender<Arc<RecordedEvent>>>>,
}

impl Shared {
    /// Broadcasts records read from the log, in position order.
    fn publish(&self, page: Vec<RecordedEvent>) {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = live.as_ref() {
            for rec in page {
                // No receivers is fine; lagging receivers find out on their own.
                let _ = tx.send(Arc::new(rec));
            }
        }
    }
}

#[async_trait]
impl crate::subscription::LiveLog for Shared {
    async fn read_page(&self, from: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        reads::read_all(&self.pool, from, READ_PAGE_MAX).await
    }

    fn live_receiver(&self) -> Option<broadcast::Receiver<Arc<RecordedEvent>>> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.as_ref().map(broadcast::Sender::subscribe)
    }
}

/// The PostgreSQL-backed event store.
pub struct PgStore {
    shared: Arc<Shared>,
    queue: mpsc::Sender<WriterMsg>,
    stop: watch::Sender<bool>,
    /// The writer, then the tailer.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The sessions of the side trees.
    kv: Arc<kv::KvSessions>,
}

impl PgStore {
    /// Connects to `url`, creates or migrates the schema, and starts the
    /// writer and the tailer (on the current tokio runtime).
    pub async fn open(url: &str, options: PgOptions) -> Result<Arc<PgStore>, StoreError> {
        let config = session::session_config(url)?;
        let mut client = session::connect(&config).await?;
        schema::migrate(&mut client).await?;
        drop(client);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let wait = std::time::Duration::from_millis(PG_CONNECT_TIMEOUT_MILLIS);
        let pool = Pool::builder(manager)
            .max_size(options.read_pool_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(wait))
            .create_timeout(Some(wait))
            .build()
            .map_err(|e| StoreError::Unavailable(format!("database pool: {e}")))?;
        let head = reads::head(&pool).await?;
        let (live_tx, _) = broadcast::channel(options.subscriber_buffer_events.max(1));
        let shared = Arc::new(Shared {
            pool,
            live: Mutex::new(Some(live_tx)),
        });
        let commits = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let (queue, queue_rx) = mpsc::channel(WRITER_QUEUE_DEPTH);
        let writer = tokio::spawn(Writer::new(config.clone(), commits.clone()).run(queue_rx));
        let kv = kv::KvSessions::start(config.clone())?;
        let tailer = tokio::spawn(tail::run(shared.clone(), config, head, commits, stopped));
        Ok(Arc::new(PgStore {
            shared,
            queue,
            stop,
            tasks: Mutex::new(vec![writer, tailer]),
            kv,
        }))
    }
}

#[async_trait]
impl EventStore for PgStore {
    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        self.append_recorded(req).await.map(|a| a.outcome)
    }

    async fn append_recorded(&self, req: AppendRequest) -> Result<Appended, StoreError> {
        crate::appending::validate_shape(&req)?;
        crate::appending::submit(&self.queue, |reply| WriterMsg::Append(Box::new(req), reply)).await
    }

    async fn find_command(&self, command_id: Uuid) -> Result<Option<PriorCommand>, StoreError> {
        reads::find_command(&self.shared.pool, command_id).await
    }

    async fn read_stream(
        &self,
        stream: StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        reads::read_stream(&self.shared.pool, stream, from_version, limit).await
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        reads::read_all(&self.shared.pool, from_position, limit).await
    }

    async fn stream_version(&self, stream: StreamId) -> Result<u64, StoreError> {
        reads::stream_version(&self.shared.pool, stream).await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        reads::head(&self.shared.pool).await
    }

    fn subscribe(&self, from_position: u64) -> EventStream {
        crate::subscription::subscribe(self.shared.clone(), from_position)
    }

    async fn verify(
        &self,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<VerifyReport, StoreError> {
        verify::verify(&self.shared.pool, progress).await
    }

    async fn close(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let closed = match self.queue.send(WriterMsg::Close(reply)).await {
            Ok(()) => answer.await.unwrap_or(Ok(())),
            // Already closed.
            Err(_) => Ok(()),
        };
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            task.await
                .map_err(|e| StoreError::Unavailable(format!("a store task failed: {e}")))?;
        }
        self.shared
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // The pool stays: reads after close work as on sled (subscribers
        // read to the end, then see `Closed`); it closes when dropped.
        closed
    }
}
