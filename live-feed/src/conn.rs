//! One connection as the hub sees it: who it is, its bounded outbound
//! queue, and a way to ask it to close without ever waiting on it.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use event_store::Principal;
use tokio::sync::{mpsc, Notify};

use crate::limits::CLOSE_TOO_SLOW;
use crate::stats::FeedStats;

/// Identifies a connection within one process.
pub type ConnId = u64;

/// The shared half of a connection: cheap to clone into rooms.
#[derive(Debug)]
pub struct ConnHandle {
    /// Process-unique id.
    pub id: ConnId,
    /// Who is connected.
    pub principal: Principal,
    outbound: mpsc::Sender<Utf8Bytes>,
    close_code: AtomicU16,
    closing: Notify,
    stats: Arc<FeedStats>,
}

impl ConnHandle {
    /// A handle and the receiving end of its outbound queue.
    pub fn new(
        id: ConnId,
        principal: Principal,
        queue_frames: usize,
        stats: Arc<FeedStats>,
    ) -> (Arc<ConnHandle>, mpsc::Receiver<Utf8Bytes>) {
        let (tx, rx) = mpsc::channel(queue_frames.max(1));
        let handle = ConnHandle {
            id,
            principal,
            outbound: tx,
            close_code: AtomicU16::new(0),
            closing: Notify::new(),
            stats,
        };
        (Arc::new(handle), rx)
    }

    /// Queues a frame without waiting. A full queue means the client cannot
    /// keep up: it is closed with 4008 (and resumes with `after`).
    pub fn offer(&self, frame: Utf8Bytes) -> bool {
        if self.is_closing() {
            return false;
        }
        match self.outbound.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close_slow();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues a frame, waiting for room (for the connection's own replay,
    /// which may only slow itself). False once the connection is closing.
    pub async fn send(&self, frame: Utf8Bytes) -> bool {
        !self.is_closing() && self.outbound.send(frame).await.is_ok()
    }

    /// Closes the connection with 4008 because it cannot keep up.
    pub fn close_slow(&self) {
        if self.close(CLOSE_TOO_SLOW) {
            self.stats.slow_closed();
        }
    }

    /// Asks the connection to close with `code`; the first code wins.
    /// Returns whether this call set it.
    pub fn close(&self, code: u16) -> bool {
        let first = self
            .close_code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if first {
            self.closing.notify_one();
        }
        first
    }

    /// Whether a close was requested.
    pub fn is_closing(&self) -> bool {
        self.close_code.load(Ordering::Acquire) != 0
    }

    /// Waits until a close is requested; returns its code.
    pub async fn closed(&self) -> u16 {
        loop {
            let code = self.close_code.load(Ordering::Acquire);
            if code != 0 {
                return code;
            }
            self.closing.notified().await;
        }
    }
}
