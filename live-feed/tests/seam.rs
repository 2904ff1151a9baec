//! The replay/live seam, made deterministic: the replay's log read is held
//! while live events arrive, so they must be buffered and released after it.

mod common;

use event_store::both_stores;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use common::{positions, Backend, Harness};
use event_store::schema::StreamId;
use event_store::{
    AppendOutcome, AppendRequest, EventStore, EventStream, PriorCommand, RecordedEvent, StoreError,
    VerifyReport,
};
use live_feed::FeedConfig;
use serde_json::json;
use tokio::sync::{Notify, Semaphore};

/// Delegates to a real store; when armed, the next `read_stream` waits for
/// a permit (and says it is waiting).
struct GatedStore {
    inner: Arc<dyn EventStore>,
    armed: AtomicBool,
    entered: Notify,
    gate: Semaphore,
}

#[async_trait]
impl EventStore for GatedStore {
    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        self.inner.append(req).await
    }
    async fn find_command(
        &self,
        command_id: uuid::Uuid,
    ) -> Result<Option<PriorCommand>, StoreError> {
        self.inner.find_command(command_id).await
    }
    async fn read_stream(
        &self,
        s: StreamId,
        v: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if self.armed.swap(false, Ordering::AcqRel) {
            self.entered.notify_one();
            let _permit = self.gate.acquire().await.map_err(|_| StoreError::Closed)?;
        }
        self.inner.read_stream(s, v, limit).await
    }
    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(from, limit).await
    }
    async fn stream_version(&self, s: StreamId) -> Result<u64, StoreError> {
        self.inner.stream_version(s).await
    }
    async fn head(&self) -> Result<u64, StoreError> {
        self.inner.head().await
    }
    fn subscribe(&self, from: u64) -> EventStream {
        self.inner.subscribe(from)
    }
    async fn verify(
        &self,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<VerifyReport, StoreError> {
        self.inner.verify(progress).await
    }
    async fn close(&self) -> Result<(), StoreError> {
        self.inner.close().await
    }
}

both_stores!(live_events_during_a_replay_arrive_after_it_once_each);
async fn live_events_during_a_replay_arrive_after_it_once_each(backend: Backend) {
    let gated: Arc<std::sync::Mutex<Option<Arc<GatedStore>>>> = Arc::default();
    let slot = gated.clone();
    let h = Harness::start_wrapped(backend, FeedConfig::default(), move |inner| {
        let g = Arc::new(GatedStore {
            inner,
            armed: AtomicBool::new(false),
            entered: Notify::new(),
            gate: Semaphore::new(0),
        });
        *slot.lock().expect("slot") = Some(g.clone());
        g
    })
    .await;
    let gate = gated.lock().expect("slot").clone().expect("gated store");

    let ticket = h.ticket(&h.customer).await;
    let room = format!("ticket:{ticket}");
    let mut before = Vec::new();
    for i in 0..3 {
        before.push(
            h.comment(ticket, &h.agent, &format!("before {i}"), false)
                .await,
        );
    }
    h.fanned_out(before[2]).await;

    gate.armed.store(true, Ordering::Release);
    let mut c = h.connect("customer").await;
    c.send(json!({"type": "subscribe", "room": room, "after": before[0]}))
        .await;
    gate.entered.notified().await; // the replay is reading the log now
    let mut during = Vec::new();
    for i in 0..3 {
        during.push(
            h.comment(ticket, &h.agent, &format!("during {i}"), i == 1)
                .await,
        );
    }
    h.fanned_out(during[2]).await;
    gate.gate.add_permits(1);

    let sub = c.next_main().await;
    assert_eq!(sub["type"], "subscribed");
    assert_eq!(sub["position"], before[2]);
    let got = c.events_until_pong().await;
    assert_eq!(
        positions(&got),
        vec![before[1], before[2], during[0], during[2]]
    );
}
