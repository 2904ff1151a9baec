//! Typed errors of the snapshot store.

use event_store::StoreError;
use thiserror::Error;

/// What loading or saving a snapshot can fail with. A bad snapshot is never
/// an error (it falls back to replay); only the log or the side tree failing is.
#[derive(Debug, Error)]
pub enum SnapshotError {
    /// The event store or the side tree failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stream read returned events out of order (a broken backend).
    #[error("stream {stream} not contiguous: expected version {expected}, got {actual}")]
    Gap {
        /// The stream read.
        stream: uuid::Uuid,
        /// The version that should have come next.
        expected: u64,
        /// The version that came.
        actual: u64,
    },
    /// A state could not be encoded (a bug in the aggregate's serde impls).
    #[error("cannot encode snapshot: {0}")]
    Encode(String),
}
