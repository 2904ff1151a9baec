//! Reading a stream or the whole log page by page: the one loop over
//! [`EventStore::read_stream`] and [`EventStore::read_all`], holding one
//! page at a time so memory stays bounded however long the log is.
//!
//! ```text
//! let mut pages = Pages::log(store, from_position).until(head);
//! while let Some(page) = pages.next_page().await? {
//!     for event in &page { … }
//! }
//! ```

use crate::error::StoreError;
use crate::limits::READ_PAGE_MAX;
use crate::record::RecordedEvent;
use crate::schema::StreamId;
use crate::store::EventStore;

/// Events per page unless the reader asks for fewer: the most one read
/// returns.
pub const PAGE_EVENTS_DEFAULT: usize = READ_PAGE_MAX;

/// What is paged through.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// One stream, keyed by version.
    Stream(StreamId),
    /// The whole log, keyed by position.
    Log,
}

/// Consecutive pages of a stream (by version) or of the log (by position),
/// in order, from a start up to an optional last key.
pub struct Pages<'a> {
    store: &'a dyn EventStore,
    source: Source,
    /// The version or position the next page starts at.
    next: u64,
    /// The last version or position wanted (inclusive).
    last: u64,
    size: usize,
    done: bool,
}

impl<'a> Pages<'a> {
    /// The events of `stream` from version `from_version` on.
    pub fn stream(store: &'a dyn EventStore, stream: StreamId, from_version: u64) -> Self {
        Pages::new(store, Source::Stream(stream), from_version)
    }

    /// The log's events from position `from_position` on.
    pub fn log(store: &'a dyn EventStore, from_position: u64) -> Self {
        Pages::new(store, Source::Log, from_position)
    }

    fn new(store: &'a dyn EventStore, source: Source, from: u64) -> Self {
        Pages {
            store,
            source,
            // Versions and positions start at 1; the reads treat 0 as 1.
            next: from.max(1),
            last: u64::MAX,
            size: PAGE_EVENTS_DEFAULT,
            done: false,
        }
    }

    /// Pages of at most `events` (at least 1, at most `READ_PAGE_MAX`).
    pub fn page_size(mut self, events: usize) -> Self {
        self.size = events.clamp(1, READ_PAGE_MAX);
        self
    }

    /// Stops after version (stream) or position (log) `last`, inclusive.
    pub fn until(mut self, last: u64) -> Self {
        self.last = last;
        self
    }

    /// The next non-empty page, or `None` once the end is reached. A page
    /// shorter than asked for ends the walk: the reads return full pages
    /// while there are more events, so that was the end as of this read.
    pub async fn next_page(&mut self) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        if self.done || self.next > self.last {
            return Ok(None);
        }
        let want = usize::try_from(self.last - self.next)
            .map_or(self.size, |rest| rest.saturating_add(1).min(self.size));
        let mut page = match self.source {
            Source::Stream(id) => self.store.read_stream(id, self.next, want).await?,
            Source::Log => self.store.read_all(self.next, want).await?,
        };
        let key = |e: &RecordedEvent| match self.source {
            Source::Stream(_) => e.stream_version,
            Source::Log => e.position,
        };
        self.done = page.len() < want;
        page.truncate(page.partition_point(|e| key(e) <= self.last));
        let Some(last) = page.last() else {
            self.done = true;
            return Ok(None);
        };
        self.next = key(last).saturating_add(1);
        Ok(Some(page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;
    use crate::record::{Actor, AppendRequest, ExpectedVersion, NewEvent};
    use crate::schema::EventPayload;
    use crate::sled_store::{SledOptions, SledStore};
    use std::sync::Arc;
    use uuid::Uuid;

    /// A store holding one stream of `events` read receipts (also the whole log).
    async fn store_with(events: usize) -> (tempfile::TempDir, Arc<SledStore>, StreamId) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path(), SledOptions::default()).expect("open");
        let stream = Uuid::now_v7();
        let actor = Actor {
            user_id: Uuid::from_u128(1),
            role: Role::Agent,
        };
        let mut left = events;
        while left > 0 {
            let n = left.min(crate::limits::APPEND_EVENTS_MAX);
            let events = (0..n)
                .map(|i| {
                    NewEvent::new(EventPayload::ReadReceiptRecorded {
                        user: actor.user_id,
                        position: i as u64,
                    })
                })
                .collect();
            store
                .append(AppendRequest {
                    stream_id: stream,
                    expected: ExpectedVersion::Any,
                    command_id: Uuid::now_v7(),
                    request_fingerprint: None,
                    correlation_id: Uuid::now_v7(),
                    tenant: "acme".into(),
                    actor: actor.clone(),
                    events,
                    recorded_at: chrono::Utc::now(),
                })
                .await
                .expect("append");
            left -= n;
        }
        (dir, store, stream)
    }

    /// The sizes of the pages and the keys they held, in order.
    async fn walk(mut pages: Pages<'_>, log: bool) -> (Vec<usize>, Vec<u64>) {
        let (mut sizes, mut keys) = (vec![], vec![]);
        while let Some(page) = pages.next_page().await.expect("page") {
            sizes.push(page.len());
            keys.extend(
                page.iter()
                    .map(|e| if log { e.position } else { e.stream_version }),
            );
        }
        (sizes, keys)
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn pages_cover_a_stream_and_the_log_in_order() {
        rt().block_on(async {
            let (_dir, store, stream) = store_with(25).await;
            let all: Vec<u64> = (1..=25).collect();
            for log in [false, true] {
                let pages = if log {
                    Pages::log(&*store, 1)
                } else {
                    Pages::stream(&*store, stream, 1)
                };
                assert_eq!(
                    walk(pages.page_size(10), log).await,
                    (vec![10, 10, 5], all.clone())
                );
            }
            let (sizes, keys) = walk(Pages::stream(&*store, stream, 7), false).await;
            assert_eq!((sizes, keys), (vec![19], (7..=25).collect()));
        });
    }

    #[test]
    fn an_empty_stream_or_a_start_beyond_the_end_yields_no_page() {
        rt().block_on(async {
            let (_dir, store, stream) = store_with(3).await;
            let nothing = (vec![], vec![]);
            assert_eq!(
                walk(Pages::stream(&*store, Uuid::now_v7(), 1), false).await,
                nothing
            );
            assert_eq!(
                walk(Pages::stream(&*store, stream, 4), false).await,
                nothing
            );
            assert_eq!(walk(Pages::log(&*store, 99), true).await, nothing);
            let (_dir, empty, _) = store_with(0).await;
            assert_eq!(walk(Pages::log(&*empty, 1), true).await, nothing);
        });
    }

    #[test]
    fn an_exact_multiple_of_the_page_size_ends_on_an_empty_read() {
        rt().block_on(async {
            let (_dir, store, stream) = store_with(20).await;
            let (sizes, keys) = walk(Pages::stream(&*store, stream, 1).page_size(10), false).await;
            assert_eq!(sizes, [10, 10]);
            assert_eq!(keys, (1..=20).collect::<Vec<_>>());
        });
    }

    #[test]
    fn until_stops_at_the_last_key_wanted() {
        rt().block_on(async {
            let (_dir, store, stream) = store_with(25).await;
            let (sizes, keys) = walk(Pages::log(&*store, 3).page_size(10).until(14), true).await;
            assert_eq!((sizes, keys), (vec![10, 2], (3..=14).collect()));
            let (sizes, _) = walk(Pages::stream(&*store, stream, 1).until(0), false).await;
            assert!(sizes.is_empty());
            let (sizes, _) = walk(Pages::log(&*store, 1).page_size(0).until(2), true).await;
            assert_eq!(sizes, [1, 1], "a page holds at least one event");
        });
    }
}
