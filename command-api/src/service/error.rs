//! Why executing a command failed (`http/error.rs` maps each reason to an answer).

use event_store::StoreError;
use thiserror::Error;

use crate::domain::DomainError;

/// A failed command. Nothing was appended in any case.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ServiceError {
    /// The write model refused the command.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The stream was not at the expected version (`If-Match`, or a
    /// race that retries could not resolve).
    #[error("version conflict: expected {expected}, actual {actual}")]
    VersionConflict {
        /// The version the client expected (or the command decided on).
        expected: u64,
        /// The stream's version.
        actual: u64,
    },
    /// The stream kept changing under a command of a principal who is shown
    /// no versions (`Principal::sees_versions`): a conflict without them.
    #[error("the ticket kept changing; try again")]
    Contended,
    /// The idempotency key was first used for another request (method,
    /// route, path or body differ): nothing was appended.
    #[error("idempotency key reused for another request")]
    IdempotencyKeyReused,
    /// The store refused the events as malformed or too large.
    #[error("rejected by the store: {0}")]
    Rejected(String),
    /// The disk is below the store's reserve; appends resume once space returns.
    #[error("storage full: {0}")]
    StorageFull(String),
    /// The store could not be reached or written.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { expected, actual } => {
                ServiceError::VersionConflict { expected, actual }
            }
            StoreError::Invalid(m) => ServiceError::Rejected(m),
            StoreError::CommandReused { .. } => ServiceError::IdempotencyKeyReused,
            full @ StoreError::StorageFull { .. } => ServiceError::StorageFull(full.to_string()),
            other => ServiceError::Unavailable(other.to_string()),
        }
    }
}

impl From<snapshots::SnapshotError> for ServiceError {
    fn from(e: snapshots::SnapshotError) -> Self {
        match e {
            snapshots::SnapshotError::Store(s) => s.into(),
            other => ServiceError::Unavailable(other.to_string()),
        }
    }
}
