//! Typed errors of the event store.

use thiserror::Error;

/// Everything an event-store call can fail with.
#[derive(Debug, Clone, Error)]
pub enum StoreError {
    /// Optimistic concurrency: the stream was not at the expected version.
    #[error("version conflict: expected {expected}, actual {actual}")]
    Conflict {
        /// The version the caller decided on.
        expected: u64,
        /// The stream's version now.
        actual: u64,
    },
    /// The command id was first appended for another request (its stored
    /// request fingerprint differs): nothing was appended.
    #[error("command {command_id} was first used for another request")]
    CommandReused {
        /// The reused command id.
        command_id: uuid::Uuid,
    },
    /// The request is malformed (empty, too many events, too large, wrong stream kind).
    #[error("invalid append: {0}")]
    Invalid(String),
    /// The backend could not write or read (disk, I/O): nothing was appended.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The disk is below the store's free-space reserve: nothing was
    /// appended, and appends resume by themselves once space returns.
    #[error("storage full: {free_bytes} bytes free, {reserve_bytes} reserved")]
    StorageFull {
        /// Free bytes on the store's filesystem at the check.
        free_bytes: u64,
        /// The reserve appends must leave free.
        reserve_bytes: u64,
    },
    /// Stored data failed an integrity check; it is never served.
    #[error("corrupt record at position {position}: {reason}")]
    Corrupt {
        /// First position found bad.
        position: u64,
        /// What was wrong.
        reason: String,
    },
    /// A subscriber fell too far behind; resume by subscribing from `resume_from`.
    #[error("subscriber lagged; resume from position {resume_from}")]
    Lagged {
        /// The first position the subscriber has not received.
        resume_from: u64,
    },
    /// The connection to the database was lost while a commit was in
    /// flight and it could not be looked up afterwards: the append may or
    /// may not be in the log (HTTP 503 `outcome_unknown`); a retry with the
    /// same command id is safe.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The store is shutting down.
    #[error("store closed")]
    Closed,
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Unavailable(format!("database: {e}"))
    }
}
