//! Subscriptions, for every backend: catch up from the log in pages, then
//! follow the store's live broadcast, with no gap and no duplicate at the
//! seam.
//!
//! The broadcast receiver is taken BEFORE the log is read, so every event
//! durable after the last page read is still in the receiver; events already
//! yielded are skipped by position, and a gap sends the subscriber back to
//! the log. Lag while catching up is harmless (the log has everything), so
//! the receiver is renewed; lag after live delivery began means the consumer
//! is too slow, and it ends the stream with `Lagged`.

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::error::StoreError;
use crate::record::RecordedEvent;
use crate::store::EventStream;

/// What a subscription follows: a log read in pages and a broadcast of
/// its durable records in position order.
#[async_trait]
pub(crate) trait LiveLog: Send + Sync + 'static {
    /// Durable records from position `from` on (one page, possibly empty).
    async fn read_page(&self, from: u64) -> Result<Vec<RecordedEvent>, StoreError>;

    /// A receiver of records made durable from now on; `None` once closed.
    fn live_receiver(&self) -> Option<broadcast::Receiver<Arc<RecordedEvent>>>;
}

struct Subscription<L> {
    shared: Arc<L>,
    /// Next position to yield.
    next: u64,
    rx: Option<broadcast::Receiver<Arc<RecordedEvent>>>,
    buffer: VecDeque<Arc<RecordedEvent>>,
    live: bool,
    /// Whether a live event was delivered since the last catch-up.
    delivered_live: bool,
    finished: bool,
}

/// A subscription to `shared` from `from_position`.
pub(crate) fn subscribe<L: LiveLog>(shared: Arc<L>, from_position: u64) -> EventStream {
    let rx = shared.live_receiver();
    let sub = Subscription {
        shared,
        next: from_position.max(1),
        rx,
        buffer: VecDeque::new(),
        live: false,
        delivered_live: false,
        finished: false,
    };
    Box::pin(futures::stream::unfold(sub, |mut sub| async move {
        let item = sub.next_item().await?;
        Some((item, sub))
    }))
}

impl<L: LiveLog> Subscription<L> {
    fn end(&mut self, e: StoreError) -> Option<Result<Arc<RecordedEvent>, StoreError>> {
        self.finished = true;
        Some(Err(e))
    }

    async fn next_item(&mut self) -> Option<Result<Arc<RecordedEvent>, StoreError>> {
        loop {
            if self.finished {
                return None;
            }
            if let Some(ev) = self.buffer.pop_front() {
                self.next = ev.position + 1;
                return Some(Ok(ev));
            }
            if !self.live {
                match self.shared.read_page(self.next).await {
                    Err(e) => return self.end(e),
                    Ok(page) if page.is_empty() => {
                        self.live = true;
                        self.delivered_live = false;
                    }
                    Ok(page) => {
                        self.buffer.extend(page.into_iter().map(Arc::new));
                        // Let other tasks run between pages of a long catch-up.
                        tokio::task::yield_now().await;
                    }
                }
                continue;
            }
            let Some(rx) = self.rx.as_mut() else {
                return self.end(StoreError::Closed);
            };
            match rx.recv().await {
                Ok(ev) if ev.position < self.next => {}
                Ok(ev) if ev.position == self.next => {
                    self.next += 1;
                    self.delivered_live = true;
                    return Some(Ok(ev));
                }
                // A gap: the events in between are durable, read them.
                Ok(_) => self.live = false,
                Err(RecvError::Lagged(_)) if !self.delivered_live => {
                    // The lag built up while catching up: renew the receiver
                    // first, then catch up again from the log.
                    self.rx = Some(rx.resubscribe());
                    self.live = false;
                }
                Err(RecvError::Lagged(_)) => {
                    return self.end(StoreError::Lagged {
                        resume_from: self.next,
                    })
                }
                Err(RecvError::Closed) => return self.end(StoreError::Closed),
            }
        }
    }
}
