//! Administrative changes recorded in the log like everything else: one
//! stream per user (`StreamKind::User`), read by `audit.read` holders of
//! the tenant. Only facts, actors, ids and roles: never a password, a hash
//! or a secret.

use chrono::Utc;
use event_store::{
    Actor, AppendRequest, EventPayload, EventStore, ExpectedVersion, NewEvent, StreamId,
    StreamKind, UserId,
};
use uuid::Uuid;

use super::error::ServiceError;
use super::execute::CommandService;
use super::numbers::SERVICE_NAMESPACE;

/// The administrative stream of `user` in `tenant`.
pub fn user_stream(tenant: &str, user: UserId) -> StreamId {
    Uuid::new_v5(
        &SERVICE_NAMESPACE,
        format!("ticketlog/user/{tenant}/{user}").as_bytes(),
    )
}

/// Appends one user change by `actor` to the user's stream. Only payloads
/// of [`StreamKind::User`] are accepted; the user is the payload's.
pub async fn record_user_change(
    store: &dyn EventStore,
    tenant: &str,
    actor: Actor,
    change: EventPayload,
) -> Result<u64, ServiceError> {
    let user = match &change {
        EventPayload::UserCreated { user, .. }
        | EventPayload::UserRoleChanged { user, .. }
        | EventPayload::UserPasswordChanged { user, .. }
        | EventPayload::UserTokensRevoked { user, .. } => *user,
        other => {
            return Err(ServiceError::Rejected(format!(
                "{} is not a user change",
                other.kind()
            )))
        }
    };
    debug_assert_eq!(change.stream_kind(), StreamKind::User);
    let command_id = Uuid::now_v7();
    let outcome = store
        .append(AppendRequest {
            stream_id: user_stream(tenant, user),
            // One writer per fact; the order of two admins' changes is the log's.
            expected: ExpectedVersion::Any,
            events: vec![NewEvent::new(change)],
            command_id,
            request_fingerprint: None,
            correlation_id: command_id,
            tenant: tenant.to_string(),
            actor,
            recorded_at: Utc::now(),
        })
        .await?;
    Ok(outcome.position)
}

impl CommandService {
    /// [`record_user_change`] on this service's store.
    pub async fn record_user_change(
        &self,
        tenant: &str,
        actor: Actor,
        change: EventPayload,
    ) -> Result<u64, ServiceError> {
        record_user_change(self.store().as_ref(), tenant, actor, change).await
    }
}
