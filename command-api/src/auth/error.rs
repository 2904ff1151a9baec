//! Typed errors of authentication and the user directory.

use event_store::StoreError;
use thiserror::Error;

/// Everything authentication can fail with.
#[derive(Debug, Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header (or an empty one).
    #[error("missing bearer token")]
    MissingToken,
    /// The token failed verification; the reason is for logs, never for the client.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// Wrong tenant, username or password (deliberately not saying which).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The token's user is not in the built-in directory (an outside
    /// issuer's user has no password here).
    #[error("not a user of the built-in directory")]
    UnknownUser,
    /// A password change named the wrong current password.
    #[error("the current password does not match")]
    WrongCurrentPassword,
    /// This server only verifies tokens (outside issuer); it cannot sign.
    #[error("this server does not issue tokens; they come from the configured identity provider")]
    IssuingDisabled,
    /// The key material could not be read or used.
    #[error("key error: {0}")]
    Key(String),
    /// A user with that name already exists in the tenant.
    #[error("user {name:?} already exists in tenant {tenant:?}")]
    UserExists {
        /// The tenant.
        tenant: String,
        /// The user name.
        name: String,
    },
    /// A field of a user or a login request is not acceptable.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Hashing failed (should not happen with valid parameters).
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// The directory's storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
