//! Typed errors of the read side, each with the contract's HTTP status.

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
    /// The contract's snake_case error code.
    pub fn code(&self) -> &'static str {
        match self {
            ProjectionError::NotFound => "not_found",
            ProjectionError::Forbidden { .. } => "forbidden",
            ProjectionError::BadRequest { .. } => "bad_request",
            ProjectionError::NotCaughtUp { .. } | ProjectionError::Stopped => "unavailable",
            ProjectionError::Store(_) | ProjectionError::Snapshot(_) => "unavailable",
        }
    }

    /// The contract's HTTP status for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            ProjectionError::NotFound => 404,
            ProjectionError::Forbidden { .. } => 403,
            ProjectionError::BadRequest { .. } => 400,
            _ => 503,
        }
    }

    /// Details for the error body (`details` names the field for 400s).
    pub fn details(&self) -> serde_json::Value {
        match self {
            ProjectionError::BadRequest { field, .. } => serde_json::json!({ "field": field }),
            ProjectionError::Forbidden { permission } => {
                serde_json::json!({ "permission": permission })
            }
            ProjectionError::NotCaughtUp { wanted, reached } => {
                serde_json::json!({ "min_position": wanted, "position": reached })
            }
            _ => serde_json::json!({}),
        }
    }

    pub(crate) fn bad(field: &'static str, message: impl Into<String>) -> Self {
        ProjectionError::BadRequest {
            field,
            message: message.into(),
        }
    }
}
