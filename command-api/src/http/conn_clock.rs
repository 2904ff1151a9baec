//! One connection's phase and the deadline it puts on the client: the
//! header read timeout while a request's head arrives, the idle timeout
//! between requests, the WebSocket handshake timeout until an upgraded
//! socket is handed over. The server's connection task closes the
//! connection when [`ConnClock::expired`] completes; while the application
//! answers a request (and reads its body, under its own deadline:
//! `http/body_deadline.rs`) the clock does not run.
//!
//! The phase changes three times per request, so changing it must cost no
//! wake-up: it is a plain value under a lock, and the connection's timer
//! re-reads it only when it fires, sleeping again when the deadline has
//! moved on (a wake per request made keep-alive commands ~15% slower). Only a
//! change that brings the deadline before the armed one wakes the timer.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{sleep_until, Instant};

use super::timeouts::Timeouts;

/// Where a connection is between accept and close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A request's head is arriving; its first byte (or the accept) came at `since`.
    Head { since: Instant },
    /// An answer went out at `since`; no byte of a next request yet.
    Idle { since: Instant },
    /// The application has the request: the client is not waited on.
    Busy,
    /// A WebSocket upgrade request whose head began at `head_since`,
    /// until the socket is handed over.
    Upgrading { head_since: Instant },
}

/// Which timeout closed a connection (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// The request's head did not arrive in time.
    HeaderRead,
    /// No next request within the idle timeout.
    Idle,
    /// The WebSocket upgrade did not complete in time.
    WsHandshake,
}

/// The phase of one connection, shared by its socket, its service and its
/// task.
#[derive(Debug)]
pub struct ConnClock {
    phase: Mutex<Phase>,
    /// The deadline the connection's timer sleeps until.
    armed: Mutex<Option<Instant>>,
    /// Wakes the timer when a phase change brings the deadline earlier
    /// than the armed one (rare: only when a later phase has a shorter
    /// timeout), so no timeout is ever enforced late.
    earlier: tokio::sync::Notify,
    timeouts: Timeouts,
}

impl ConnClock {
    /// The clock of a connection accepted now: its first request's head is due.
    pub fn new(timeouts: Timeouts) -> Self {
        ConnClock {
            phase: Mutex::new(Phase::Head {
                since: Instant::now(),
            }),
            armed: Mutex::new(None),
            earlier: tokio::sync::Notify::new(),
            timeouts,
        }
    }

    /// Wakes the timer if `phase`'s deadline comes before the armed one.
    fn moved(&self, phase: Phase) {
        let Some((at, _)) = self.deadline(phase) else {
            return;
        };
        let armed = *self.armed.lock().unwrap_or_else(PoisonError::into_inner);
        if armed.is_some_and(|a| at < a) {
            self.earlier.notify_one();
        }
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        // A phase is one plain value: a panic elsewhere cannot leave it torn.
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: after an answer, they begin the next request's head.
    fn bytes_read(&self) {
        let mut phase = self.phase();
        if let Phase::Idle { .. } = *phase {
            *phase = Phase::Head {
                since: Instant::now(),
            };
            let now = *phase;
            drop(phase);
            self.moved(now);
        }
    }

    /// A request's head is complete and goes to the application. For an
    /// upgrade request, `false` when its handshake is already overdue
    /// (the connection is then answered 408 and closed).
    pub fn request_started(&self, upgrade: bool) -> bool {
        let now = Instant::now();
        let mut phase = self.phase();
        let head_since = match *phase {
            Phase::Head { since } | Phase::Idle { since } => since,
            Phase::Busy | Phase::Upgrading { .. } => now,
        };
        let in_time = !upgrade || now < head_since + self.timeouts.ws_handshake;
        *phase = if upgrade && in_time {
            Phase::Upgrading { head_since }
        } else {
            Phase::Busy
        };
        let now = *phase;
        drop(phase);
        self.moved(now);
        in_time
    }

    /// An answer has been written: the connection waits for the next request.
    fn response_finished(&self) {
        let idle = Phase::Idle {
            since: Instant::now(),
        };
        *self.phase() = idle;
        self.moved(idle);
    }

    fn deadline(&self, phase: Phase) -> Option<(Instant, Expired)> {
        let t = &self.timeouts;
        match phase {
            Phase::Head { since } => Some((since + t.header_read, Expired::HeaderRead)),
            Phase::Idle { since } => Some((since + t.idle, Expired::Idle)),
            Phase::Busy => None,
            Phase::Upgrading { head_since } => {
                Some((head_since + t.ws_handshake, Expired::WsHandshake))
            }
        }
    }

    /// Completes when the current phase outlasts its timeout; the caller
    /// then closes the connection. Sleeps until the current phase's
    /// deadline (or, while the application has the request, the shortest
    /// timeout) and looks again: a phase that changed meanwhile has a later
    /// deadline.
    pub async fn expired(&self) -> Expired {
        loop {
            let phase = *self.phase();
            let at = match self.deadline(phase) {
                Some((at, _)) => at,
                None => Instant::now() + self.timeouts.shortest(),
            };
            *self.armed.lock().unwrap_or_else(PoisonError::into_inner) = Some(at);
            tokio::select! {
                () = sleep_until(at) => {}
                () = self.earlier.notified() => {}
            }
            let phase = *self.phase();
            if let Some((at, which)) = self.deadline(phase) {
                if at <= Instant::now() {
                    return which;
                }
            }
        }
    }
}

/// The socket of a connection, telling its clock when bytes arrive.
#[derive(Debug)]
pub struct ClockedIo<T> {
    inner: T,
    clock: Arc<ConnClock>,
}

impl<T> ClockedIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, clock: Arc<ConnClock>) -> Self {
        ClockedIo { inner, clock }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ClockedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.bytes_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ClockedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// An answer's body that starts the idle clock once it has been written
/// (hyper drops a body when it is done with it).
#[derive(Debug)]
pub struct IdleAfter {
    inner: Body,
    /// `None` for an upgrade's answer: the handshake clock keeps running.
    clock: Option<Arc<ConnClock>>,
}

impl IdleAfter {
    /// `inner`, starting `clock`'s idle timeout when dropped.
    pub fn new(inner: Body, clock: Option<Arc<ConnClock>>) -> Self {
        IdleAfter { inner, clock }
    }
}

impl Drop for IdleAfter {
    fn drop(&mut self) {
        if let Some(clock) = &self.clock {
            clock.response_finished();
        }
    }
}

impl http_body::Body for IdleAfter {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
