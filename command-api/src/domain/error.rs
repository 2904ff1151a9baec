//! Why a command was refused, mapped onto the contract's statuses.

use thiserror::Error;

/// A refused command. Each variant has one HTTP status (see [`DomainError::status`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// Malformed or invalid input (400); `field` names the offending field.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The field, as named in the API body.
        field: String,
        /// What is wrong, for a person.
        message: String,
    },
    /// The principal sees the ticket but lacks the permission (403).
    #[error("forbidden: {message}")]
    Forbidden {
        /// What is missing, for a person.
        message: String,
    },
    /// The ticket (or dispatch) does not exist or is not visible (404).
    #[error("not found")]
    NotFound,
    /// The workflow does not allow this move (409).
    #[error("invalid transition from {from} to {to}")]
    InvalidTransition {
        /// The current status or stage.
        from: String,
        /// The requested status or stage.
        to: String,
    },
    /// The command contradicts the current state (409), e.g. a second
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

    /// The contract's HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            DomainError::Invalid { .. } => 400,
            DomainError::Forbidden { .. } => 403,
            DomainError::NotFound => 404,
            DomainError::InvalidTransition { .. } | DomainError::Conflict { .. } => 409,
        }
    }

    /// The contract's snake_case error code.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::Invalid { .. } => "invalid",
            DomainError::Forbidden { .. } => "forbidden",
            DomainError::NotFound => "not_found",
            DomainError::InvalidTransition { .. } => "invalid_transition",
            DomainError::Conflict { .. } => "conflict",
        }
    }
}
