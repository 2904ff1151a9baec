//! Helpers shared by the event-store integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use event_store::testing::postgres::PgServer;
use event_store::{
    Actor, AppendRequest, EventPayload, EventStore, ExpectedVersion, KvProvider, NewEvent,
    PgOptions, PgStore, Priority, RecordedEvent, Role, SledOptions, SledStore, Storage, TicketKind,
};
use uuid::Uuid;

#[allow(unused_imports)]
pub use event_store::both_stores;
pub use event_store::testing::stores::Backend;

/// What a test may set on either store.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub subscriber_buffer_events: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            subscriber_buffer_events: event_store::limits::SUBSCRIBER_BUFFER_EVENTS,
        }
    }
}

/// An open store of one backend, with what it takes to open it again.
pub struct Fixture {
    pub store: Arc<dyn EventStore>,
    /// The side trees of `store`.
    pub kv: Arc<dyn KvProvider>,
    pub backend: Backend,
    settings: Settings,
    dir: Option<tempfile::TempDir>,
    /// The database URL (PostgreSQL).
    pub url: Option<String>,
    pub server: Option<Arc<PgServer>>,
}

/// A [`Fixture`] of either backend (the tests call `backend.fresh()`).
pub trait Fresh {
    /// A fresh, empty store.
    async fn fresh(self) -> Fixture;
    /// A fresh, empty store with `settings`.
    async fn fresh_with(self, settings: Settings) -> Fixture;
}

impl Fresh for Backend {
    async fn fresh(self) -> Fixture {
        self.fresh_with(Settings::default()).await
    }

    async fn fresh_with(self, settings: Settings) -> Fixture {
        let mut fixture = match self {
            Backend::Sled => Fixture {
                store: placeholder(),
                kv: event_store::testing::MemoryKv::new(),
                backend: self,
                settings,
                dir: Some(tempfile::tempdir().expect("temp dir")),
                url: None,
                server: None,
            },
            Backend::Postgres => {
                let server = PgServer::shared().expect("start the test PostgreSQL");
                let url = server.fresh_database().expect("create a database");
                Fixture {
                    store: placeholder(),
                    kv: event_store::testing::MemoryKv::new(),
                    backend: self,
                    settings,
                    dir: None,
                    url: Some(url),
                    server: Some(server),
                }
            }
        };
        fixture.set(fixture.open().await);
        fixture
    }
}

/// A stand-in until the real store is opened.
fn placeholder() -> Arc<dyn EventStore> {
    Arc::new(event_store::testing::MemoryStore::default())
}

impl Fixture {
    /// Makes `storage` the fixture's store and side trees.
    fn set(&mut self, storage: Arc<dyn Storage>) {
        self.store = storage.clone();
        self.kv = storage;
    }

    /// Another instance of the store on the same data.
    pub async fn open(&self) -> Arc<dyn Storage> {
        match self.backend {
            Backend::Sled => {
                let options = SledOptions {
                    subscriber_buffer_events: self.settings.subscriber_buffer_events,
                    ..SledOptions::default()
                };
                let dir = self.dir.as_ref().expect("sled dir");
                SledStore::open(dir.path(), options).expect("open store")
            }
            Backend::Postgres => {
                let options = PgOptions {
                    subscriber_buffer_events: self.settings.subscriber_buffer_events,
                    ..PgOptions::default()
                };
                let url = self.url.as_deref().expect("database url");
                PgStore::open(url, options).await.expect("open store")
            }
        }
    }

    /// Closes the store and opens it again (a restart).
    pub async fn reopen(&mut self) {
        self.store.close().await.expect("close");
        // sled's side-tree handles keep its directory open.
        self.store = placeholder();
        self.kv = event_store::testing::MemoryKv::new();
        let storage = self.open().await;
        self.set(storage);
    }
}

/// A fresh store in a fresh temporary directory.
pub fn fresh() -> (tempfile::TempDir, Arc<SledStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(dir.path(), SledOptions::default()).expect("open store");
    (dir, store)
}

pub fn actor() -> Actor {
    Actor {
        user_id: Uuid::from_u128(7),
        role: Role::Agent,
    }
}

pub fn created(number: u64) -> EventPayload {
    EventPayload::TicketCreated {
        number,
        title: format!("ticket {number}"),
        description: "the printer is on fire".into(),
        priority: Priority::High,
        kind: TicketKind::Incident,
        reporter: Uuid::from_u128(42),
        location: None,
        tags: vec![],
        device: None,
    }
}

pub fn comment(text: &str) -> EventPayload {
    EventPayload::CommentPosted {
        comment_id: Uuid::now_v7(),
        body: text.into(),
        internal: false,
    }
}

pub fn request(
    stream: Uuid,
    expected: ExpectedVersion,
    payloads: Vec<EventPayload>,
) -> AppendRequest {
    AppendRequest {
        stream_id: stream,
        expected,
        events: payloads.into_iter().map(NewEvent::new).collect(),
        command_id: Uuid::now_v7(),
        request_fingerprint: None,
        correlation_id: Uuid::now_v7(),
        tenant: "demo".into(),
        actor: actor(),
        recorded_at: Utc::now(),
    }
}

/// Creates ticket `number` on a new stream and returns the stream's id.
pub async fn create_ticket(store: &dyn EventStore, number: u64) -> Uuid {
    let ticket = Uuid::now_v7();
    let create = request(ticket, ExpectedVersion::NoStream, vec![created(number)]);
    store.append(create).await.expect("create");
    ticket
}

/// Appends `count` comments saying `text` to `stream`, one append each.
pub async fn post_comments(store: &dyn EventStore, stream: Uuid, count: usize, text: &str) {
    for _ in 0..count {
        let post = request(stream, ExpectedVersion::Any, vec![comment(text)]);
        store.append(post).await.expect("comment");
    }
}

/// Every durable event, paging through `read_all`.
pub async fn read_everything(store: &dyn EventStore) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    loop {
        let page = store
            .read_all(out.len() as u64 + 1, event_store::limits::READ_PAGE_MAX)
            .await
            .expect("read_all");
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// Positions 1..=n and, per stream, versions 1..=k, in order.
pub fn assert_gapless(events: &[RecordedEvent]) {
    let mut versions = std::collections::HashMap::new();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.position, i as u64 + 1, "positions are gapless");
        let v = versions.entry(e.stream_id).or_insert(0u64);
        *v += 1;
        assert_eq!(e.stream_version, *v, "stream versions are gapless");
    }
}

/// Polls `cond` until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cond()
}

/// Closes a store and drops it so its directory can be reopened.
pub async fn close<S: EventStore + ?Sized>(store: Arc<S>) {
    store.close().await.expect("close");
    drop(store);
}

/// Every stream read through `read_stream` (the stream index) holds exactly
/// the positions `read_all` finds for it, and `stream_version` agrees.
pub async fn assert_streams_match_the_log(store: &dyn EventStore) {
    let all = read_everything(store).await;
    assert_gapless(&all);
    let mut by_stream: std::collections::HashMap<Uuid, Vec<u64>> = Default::default();
    for e in &all {
        by_stream.entry(e.stream_id).or_default().push(e.position);
    }
    for (stream, positions) in by_stream {
        let mut read = Vec::new();
        loop {
            let page = store
                .read_stream(stream, read.len() as u64 + 1, 100)
                .await
                .expect("read_stream");
            if page.is_empty() {
                break;
            }
            read.extend(page.into_iter().map(|e| e.position));
        }
        assert_eq!(read, positions, "stream {stream} read through the index");
        assert_eq!(
            store.stream_version(stream).await.expect("version"),
            positions.len() as u64
        );
        // A page from the middle starts where asked.
        let mid = positions.len() as u64 / 2 + 1;
        let page = store.read_stream(stream, mid, 3).await.expect("mid");
        assert_eq!(page.first().map(|e| e.stream_version), Some(mid));
    }
}

/// Raw sled on a store directory, polling for the directory lock that a
/// just-closed store's background threads may still hold for a moment.
pub fn open_raw(path: &std::path::Path) -> sled::Db {
    let start = Instant::now();
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) if start.elapsed() < Duration::from_secs(2) => {
                assert!(e.to_string().contains("could not acquire lock"), "{e}");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("raw sled: {e}"),
        }
    }
}

/// Copies a store directory (sled's files) to `to`.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}
