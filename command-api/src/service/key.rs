//! What makes a command idempotent: its id, and the request it answers.

use event_store::Hash;
use uuid::Uuid;

/// A command's idempotency key: its command id and, for a request sent
/// with an `Idempotency-Key`, the fingerprint of that request
/// (`crate::request::Request::fingerprint`). A retry with the same id and
/// fingerprint answers as the first attempt did; the same id with another
/// fingerprint is refused ([`super::ServiceError::IdempotencyKeyReused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandKey {
    /// The command id (stored in every record the command appends).
    pub id: Uuid,
    /// What the id is bound to; `None` binds nothing (fresh ids, the
    /// service's own follow-ups).
    pub fingerprint: Option<Hash>,
}

impl From<Uuid> for CommandKey {
    /// An id bound to no request.
    fn from(id: Uuid) -> Self {
        CommandKey {
            id,
            fingerprint: None,
        }
    }
}
