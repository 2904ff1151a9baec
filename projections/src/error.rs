//! Typed errors of the read side (command-api's `http/error.rs` maps
//! each to an answer).

use event_store::StoreError;
use thiserror::Error;

/// Everything a query or the runner can fail with.
#[derive(Debug, Error)]
pub enum ProjectionError {
    /// Unknown, or not visible to the principal (existence never leaks).
    #[error("not found")]
    NotFound,
    /// The resource is visible but the principal lacks a permission.
    #[error("permission {permission} required")]
    Forbidden {
        /// The missing permission's dotted name.
        permission: &'static str,
    },
    /// A query parameter is malformed.
    #[error("invalid {field}: {message}")]
    BadRequest {
        /// The offending parameter.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// `min_position` was not reached within the wait.
    #[error("projection at position {reached}, not yet at {wanted}")]
    NotCaughtUp {
        /// The position asked for.
        wanted: u64,
        /// The position the projection has applied.
        reached: u64,
    },
    /// The event store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A projection snapshot could not be written or read.
    #[error("projection snapshot: {0}")]
    Snapshot(String),
    /// The runner is stopped.
    #[error("projection runner stopped")]
    Stopped,
}

impl ProjectionError {
    /// A `BadRequest` for `field`.
    pub(crate) fn bad(field: &'static str, message: impl Into<String>) -> Self {
        ProjectionError::BadRequest {
            field,
            message: message.into(),
        }
    }
}
