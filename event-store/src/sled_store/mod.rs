//! The embedded backend: the log in one sled tree, written by a single
//! group-committing writer, read in checked pages, followed by subscribers.
//!
//! Records are stored in pages (many records per sled value, see [`page`]),
//! one group commit writing one or a few pages plus the head meta; the
//! stream and command index follow in coalesced chunks (see `index.rs` and
//! [`keys`] for the layout). That keeps sled's per-key cost off the
//! per-event path while every record keeps its own checksum and hash link.

mod export;
mod index;
mod indexer;
pub mod keys;
mod kv;
mod options;
pub mod page;
mod reads;
mod space;
mod verify;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use crate::codec;
use crate::error::StoreError;
use crate::limits::{
    INDEX_LAG_EVENTS, OPEN_LOCK_RETRY_MILLIS, OPEN_LOCK_WAIT_MILLIS, OPEN_TAIL_CHECK_RECORDS,
    VERIFY_STEP_RECORDS, WRITER_QUEUE_DEPTH,
};
use crate::record::{
    AppendOutcome, AppendRequest, Appended, PriorCommand, RecordedEvent, HASH_BYTES,
};
use crate::schema::StreamId;
use crate::store::{EventStore, EventStream, VerifyReport};

pub use keys::LOG_TREE;
pub use kv::{SledKvTree, SIDE_TREE_PREFIX};
pub use options::{SledOptions, CACHE_CAPACITY_BYTES_DEFAULT, DISK_RESERVE_BYTES_DEFAULT};
pub use verify::verify_dir;

use crate::appending::WriterMsg;
use index::{IndexedAppend, PendingIndex, Span};
use writer::{Writer, WriterStart};

/// State shared by the store handle, the writer and the subscribers.
pub(crate) struct Shared {
    pub(crate) db: sled::Db,
    pub(crate) log: sled::Tree,
    /// sled's data file, synced after each flush (see `SledOptions::fdatasync`).
    pub(crate) data_file: Option<std::fs::File>,
    /// Last position made durable and acknowledged; reads never go past it,
    /// so nothing unflushed is ever served.
    durable_head: AtomicU64,
    /// Durable appends not yet in index keys (written only by the writer).
    pub(crate) pending: RwLock<PendingIndex>,
    /// Held while a chunk of the index is folded, so chunks go one at a time.
    pub(crate) chunking: Mutex<()>,
    /// Taken on close so that subscribers end.
    live: Mutex<Option<broadcast::Sender<Arc<RecordedEvent>>>>,
}

impl Shared {
    pub(crate) fn durable_head(&self) -> u64 {
        self.durable_head.load(Ordering::Acquire)
    }

    pub(crate) fn set_durable_head(&self, head: u64) {
        self.durable_head.store(head, Ordering::Release);
    }

    /// The first append of `command`, if it was appended before (in memory
    /// or in index keys), as a retry sees it, with the fingerprint its
    /// first record carries.
    pub(crate) fn prior_command(&self, command: &Uuid) -> Result<Option<PriorCommand>, StoreError> {
        let (pending, may_be_on_disk) = {
            let pending = self.pending.read().unwrap_or_else(|e| e.into_inner());
            (pending.command(command), pending.may_hold_on_disk(command))
        };
        let first = match pending {
            Some(a) => a,
            None if !may_be_on_disk => return Ok(None),
            None => match index::find_command(&self.log, command)? {
                Some(a) => a,
                None => return Ok(None),
            },
        };
        let rec = self.record_at(first.span.first_position)?;
        if rec.command_id != *command {
            return Err(StoreError::Corrupt {
                position: rec.position,
                reason: format!("command index of {command} does not match the record"),
            });
        }
        Ok(Some(PriorCommand {
            outcome: first.outcome(true),
            request_fingerprint: rec.request_fingerprint,
        }))
    }
}

#[async_trait]
impl crate::subscription::LiveLog for Shared {
    async fn read_page(&self, from: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_all(from, crate::limits::READ_PAGE_MAX)
    }

    fn live_receiver(&self) -> Option<broadcast::Receiver<Arc<RecordedEvent>>> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.as_ref().map(broadcast::Sender::subscribe)
    }
}

/// The sled-backed event store. This process owns the directory (sled
/// locks it), which is what makes the writer's in-memory heads valid.
pub struct SledStore {
    shared: Arc<Shared>,
    queue: mpsc::Sender<WriterMsg>,
    /// The writer, then the indexer (which stops once the writer has).
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl SledStore {
    /// Opens (or creates) the store in `path`, checking the tail of the log
    /// (refusing with `Corrupt` if it fails), and starts the writer.
    pub fn open(
        path: impl AsRef<Path>,
        options: SledOptions,
    ) -> Result<Arc<SledStore>, StoreError> {
        let db = open_db(path.as_ref(), options.cache_capacity_bytes)?;
        let log = db.open_tree(LOG_TREE)?;
        check_layout(&log)?;
        if options.check_tail_on_open {
            verify::check_tail(&log, OPEN_TAIL_CHECK_RECORDS)?;
        }
        let (head, head_hash) = match log.get(keys::head_key())? {
            None => (0, [0; HASH_BYTES]),
            Some(v) => keys::parse_head_meta(&v).ok_or(StoreError::Corrupt {
                position: 0,
                reason: "malformed head meta".into(),
            })?,
        };
        let indexed = indexed_through(&log)?.min(head);
        let (mut pending, unindexed) = rebuild_pending(&log, indexed, head);
        // A damaged tail cannot be indexed: refuse it, unless a tool forces
        // the open to inspect it, and then refuse appends instead.
        let poisoned = match unindexed {
            Some(e) if options.check_tail_on_open => return Err(e),
            Some(e) => Some(format!("opened without a complete index: {e}")),
            None => None,
        };
        let command_prefix_max = match log.scan_prefix(keys::commands_prefix()).next_back() {
            None => None,
            Some(item) => {
                let (key, _) = item?;
                key.get(..keys::command_prefix(&uuid::Uuid::nil()).len())
                    .map(<[u8]>::to_vec)
            }
        };
        pending.set_command_prefix_max(command_prefix_max);
        let layout_written = log.get(keys::layout_key())?.is_some();
        let (live_tx, _) = broadcast::channel(options.subscriber_buffer_events.max(1));
        let data_file = if options.fdatasync {
            let file = std::fs::File::open(path.as_ref().join(SLED_DATA_FILE)).map_err(|e| {
                StoreError::Unavailable(format!("cannot open sled's data file to sync it: {e}"))
            })?;
            Some(file)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            db,
            log,
            data_file,
            durable_head: AtomicU64::new(head),
            pending: RwLock::new(pending),
            chunking: Mutex::new(()),
            live: Mutex::new(Some(live_tx.clone())),
        });
        let (queue, queue_rx) = mpsc::channel(WRITER_QUEUE_DEPTH);
        // One signal is enough to make the indexer look again.
        let (index_signal, signals) = std::sync::mpsc::sync_channel(1);
        let indexer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("event-store-indexer".into())
                .spawn(move || indexer::run(shared, signals, INDEX_LAG_EVENTS))
                .map_err(|e| StoreError::Unavailable(format!("cannot start the indexer: {e}")))?
        };
        let start = WriterStart {
            head,
            head_hash,
            layout_written,
            index_signal,
            poisoned,
        };
        let space = space::SpaceGuard::new(path.as_ref().to_path_buf(), options.disk_reserve_bytes);
        let writer = Writer::new(shared.clone(), live_tx, start, options.faults, space);
        let handle = std::thread::Builder::new()
            .name("event-store-writer".into())
            .spawn(move || writer.run(queue_rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer: {e}")))?;
        Ok(Arc::new(SledStore {
            shared,
            queue,
            threads: Mutex::new(vec![handle, indexer]),
        }))
    }

    /// The sled tree holding the log, for the append benchmark's raw-scan
    /// baseline (`ticketlog-bench`): read it, never write it.
    pub fn log_tree(&self) -> &sled::Tree {
        &self.shared.log
    }

    /// The last durable position, without going through the async trait.
    pub fn durable_head(&self) -> u64 {
        self.shared.durable_head()
    }
}

/// Opens sled, waiting (bounded) for its directory lock: a store dropped just
/// before may hold it until its background threads end. Another live owner
/// still gets an error once the wait is over.
/// The file sled 0.34 keeps its log-structured data in.
const SLED_DATA_FILE: &str = "db";

fn open_db(path: &Path, cache_capacity_bytes: u64) -> Result<sled::Db, StoreError> {
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_millis(OPEN_LOCK_WAIT_MILLIS);
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(cache_capacity_bytes)
            .open()
        {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(OPEN_LOCK_RETRY_MILLIS));
            }
            other => return Ok(other?),
        }
    }
}

/// Refuses a log written with another layout (an empty log takes this one).
pub(crate) fn check_layout(log: &sled::Tree) -> Result<(), StoreError> {
    match log.get(keys::layout_key())? {
        Some(v) if v.as_ref() == keys::layout_value() => Ok(()),
        Some(v) => Err(StoreError::Unavailable(format!(
            "the log has layout {v:?}, this build reads layout {}",
            keys::LAYOUT_VERSION
        ))),
        None if log.get(keys::head_key())?.is_some() => Err(StoreError::Unavailable(format!(
            "the log was written with an older layout; this build reads layout {}",
            keys::LAYOUT_VERSION
        ))),
        None => Ok(()),
    }
}

/// Positions `1..=` this are in index keys.
fn indexed_through(log: &sled::Tree) -> Result<u64, StoreError> {
    match log.get(keys::indexed_key())? {
        None => Ok(0),
        Some(v) => keys::parse_u64(&v).ok_or(StoreError::Corrupt {
            position: 0,
            reason: "malformed indexed-through position".into(),
        }),
    }
}

/// Indexes in memory the appends after `indexed`, read back from the log
/// (bounded: the writer never lets the index lag much more than
/// `INDEX_LAG_EVENTS`). On damage, returns what it indexed before it and why.
fn rebuild_pending(
    log: &sled::Tree,
    indexed: u64,
    head: u64,
) -> (PendingIndex, Option<StoreError>) {
    let mut pending = PendingIndex::default();
    let mut current: Option<IndexedAppend> = None;
    let scanned = reads::scan_records(log, indexed + 1, head, |position, bytes| {
        let rec = codec::decode(position, bytes)?;
        if let Some(a) = current.as_mut() {
            let continues = a.stream == rec.stream_id
                && a.command == rec.command_id
                && a.span.last_version() + 1 == rec.stream_version;
            if continues {
                a.span.count += 1;
                return Ok(true);
            }
            pending.push(*a);
        }
        current = Some(IndexedAppend {
            stream: rec.stream_id,
            command: rec.command_id,
            span: Span {
                first_version: rec.stream_version,
                first_position: position,
                count: 1,
            },
        });
        Ok(true)
    });
    let failure = match scanned {
        Ok(next) if next == head + 1 => None,
        Ok(next) => Some(StoreError::Corrupt {
            position: next,
            reason: "record missing".into(),
        }),
        Err(e) => Some(e),
    };
    // A partly read last append is left out: it is not whole.
    if failure.is_none() {
        if let Some(a) = current {
            pending.push(a);
        }
    }
    (pending, failure)
}

#[async_trait]
impl EventStore for SledStore {
    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        self.append_recorded(req).await.map(|a| a.outcome)
    }

    async fn append_recorded(&self, req: AppendRequest) -> Result<Appended, StoreError> {
        crate::appending::validate_shape(&req)?;
        crate::appending::submit(&self.queue, |reply| WriterMsg::Append(Box::new(req), reply)).await
    }

    async fn find_command(&self, command_id: Uuid) -> Result<Option<PriorCommand>, StoreError> {
        self.shared.prior_command(&command_id)
    }

    async fn read_stream(
        &self,
        stream: StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.shared.read_stream(stream, from_version, limit)
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.shared.read_all(from_position, limit)
    }

    async fn stream_version(&self, stream: StreamId) -> Result<u64, StoreError> {
        self.shared.stream_version(stream)
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.shared.durable_head())
    }

    fn subscribe(&self, from_position: u64) -> EventStream {
        crate::subscription::subscribe(self.shared.clone(), from_position)
    }

    async fn verify(
        &self,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<VerifyReport, StoreError> {
        let mut walk = verify::Walk::live(self.shared.log.clone(), self.shared.durable_head())?;
        while !walk.done {
            walk =
                tokio::task::spawn_blocking(move || walk.step(VERIFY_STEP_RECORDS).map(|_| walk))
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("verify step failed: {e}")))??;
            progress(walk.records, walk.total());
        }
        Ok(walk.report())
    }

    async fn close(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let flushed = match self.queue.send(WriterMsg::Close(reply)).await {
            Ok(()) => answer.await.unwrap_or(Ok(())),
            // Already closed.
            Err(_) => Ok(()),
        };
        self.shared
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for handle in threads {
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|e| StoreError::Unavailable(format!("writer did not stop: {e}")))?
                .map_err(|_| StoreError::Unavailable("writer panicked".into()))?;
        }
        flushed
    }
}
