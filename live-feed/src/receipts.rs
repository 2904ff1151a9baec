//! Read receipts are checked and persisted by the write side (in the
//! reader's own stream, coalesced); the feed rate-limits them, calls it and
//! broadcasts the result to those who may see the event read.

use async_trait::async_trait;
use event_store::schema::TicketId;
use event_store::{Principal, Visibility};
use thiserror::Error;

/// Why a read receipt was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReceiptError {
    /// The principal may not record receipts on this ticket.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The receipt was invalid (e.g. a position beyond the log).
    #[error("invalid read receipt: {0}")]
    Invalid(String),
    /// The store could not record it; nothing was appended.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Records that `principal` read `ticket` up to `position` (the write
/// side checks that the position is an event of the ticket the reader may
/// see, after its last receipt, and stores `ConversationRead` in the
/// reader's stream, at most once per interval).
#[async_trait]
pub trait ReadReceipts: Send + Sync + 'static {
    /// Accepts the receipt (stored now or when its interval ends) and
    /// answers the visibility of the event read: who may hear of it.
    async fn record(
        &self,
        principal: &Principal,
        ticket: TicketId,
        position: u64,
    ) -> Result<Visibility, ReceiptError>;
}

/// The default until the write side is wired in: every receipt is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReadReceipts;

#[async_trait]
impl ReadReceipts for NoReadReceipts {
    async fn record(&self, _: &Principal, _: TicketId, _: u64) -> Result<Visibility, ReceiptError> {
        Err(ReceiptError::Unavailable(
            "read receipts are not configured".into(),
        ))
    }
}
