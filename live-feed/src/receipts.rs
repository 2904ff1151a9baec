//! Read receipts are persisted through a command of the write side; the
//! feed only calls it and broadcasts the result.

use async_trait::async_trait;
use event_store::schema::TicketId;
use event_store::Principal;
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

/// Records that `principal` read `ticket` up to `position` (a command on
/// the write side, appending `ReadReceiptRecorded`).
#[async_trait]
pub trait ReadReceipts: Send + Sync + 'static {
    /// Persists the receipt; returns once it is durable.
    async fn record(
        &self,
        principal: &Principal,
        ticket: TicketId,
        position: u64,
    ) -> Result<(), ReceiptError>;
}

/// The default until the write side is wired in: every receipt is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReadReceipts;

#[async_trait]
impl ReadReceipts for NoReadReceipts {
    async fn record(&self, _: &Principal, _: TicketId, _: u64) -> Result<(), ReceiptError> {
        Err(ReceiptError::Unavailable(
            "read receipts are not configured".into(),
        ))
    }
}
