//! A request body that must arrive whole within the body read timeout,
//! counted from the end of its headers (not per chunk: a client sending a
//! byte at a time would otherwise hold the connection for hours). Past the
//! deadline it fails with [`BodyTimeout`], which the extractors answer
//! with 408.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use thiserror::Error;
use tokio::time::{sleep_until, Instant, Sleep};

/// The body did not arrive within the body read timeout.
#[derive(Debug, Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(pub Duration);

/// `inner`, failing once its deadline has passed.
#[derive(Debug)]
pub struct DeadlineBody<B> {
    inner: B,
    timeout: Duration,
    /// When the body is due whole.
    due: Instant,
    /// The timer, made only once the body has to be waited for: most
    /// bodies arrive with their headers and never need one.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<B> DeadlineBody<B> {
    /// `inner`, due whole within `timeout` from now.
    pub fn new(inner: B, timeout: Duration) -> Self {
        DeadlineBody {
            inner,
            timeout,
            due: Instant::now() + timeout,
            deadline: None,
        }
    }
}

impl<B> http_body::Body for DeadlineBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        // What has arrived is taken first: a body that came in time is
        // never refused because its reader was late.
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let (timeout, due) = (self.timeout, self.due);
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(sleep_until(due)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
