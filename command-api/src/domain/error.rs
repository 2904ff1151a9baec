//! Why a command was refused (`http/error.rs` maps each reason to an answer).

use thiserror::Error;

/// A refused command.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// Malformed or invalid input; `field` names the offending field.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The field, as named in the API body.
        field: String,
        /// What is wrong, for a person.
        message: String,
    },
    /// The principal sees the ticket but lacks the permission.
    #[error("forbidden: {message}")]
    Forbidden {
        /// What is missing, for a person.
        message: String,
    },
    /// The ticket (or dispatch) does not exist or is not visible.
    #[error("not found")]
    NotFound,
    /// The workflow does not allow this move.
    #[error("invalid transition from {from} to {to}")]
    InvalidTransition {
        /// The current status or stage.
        from: String,
        /// The requested status or stage.
        to: String,
    },
    /// The command contradicts the current state, e.g. a second
    /// active dispatch or creating a ticket that exists.
    #[error("conflict: {message}")]
    Conflict {
        /// What contradicts, for a person.
        message: String,
    },
}

impl DomainError {
    /// An `Invalid` error for `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// A `Forbidden` error.
    pub fn forbidden(message: impl Into<String>) -> Self {
        DomainError::Forbidden {
            message: message.into(),
        }
    }

    /// A `Conflict` error.
    pub fn conflict(message: impl Into<String>) -> Self {
        DomainError::Conflict {
            message: message.into(),
        }
    }
}
