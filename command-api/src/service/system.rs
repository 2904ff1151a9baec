//! The service's own actor and the ids of the commands it issues itself
//! (automatic dispatches, re-dispatches, timeouts). Every such id derives
//! from the command or dispatch that caused it, so a retry or a second
//! timer tick issues the same command again and the log dedupes it.

use event_store::{Principal, Role};
use uuid::Uuid;

use super::numbers::SERVICE_NAMESPACE;

/// The user id recorded as the actor of the service's own commands.
pub const SYSTEM_USER_ID: Uuid = Uuid::from_u128(0x5c1b_6a4e_8f0d_4b7e_9a3c_5157_e3a0_0001);

/// Display name of the system actor.
pub const SYSTEM_NAME: &str = "system";

/// The principal the service acts as in `tenant`: an admin, so it may
/// dispatch on any ticket of the tenant and of that tenant only.
pub fn system_principal(tenant: &str) -> Principal {
    Principal {
        user_id: SYSTEM_USER_ID,
        tenant: tenant.to_string(),
        role: Role::Admin,
        name: SYSTEM_NAME.into(),
    }
}

/// What a derived command does, so two follow-ups of one cause differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUpKind {
    /// Dispatch of a new critical incident.
    AutoDispatch,
    /// Dispatch to the next nearest after a decline or timeout.
    Redispatch,
    /// Timeout of an unanswered request.
    Expire,
}

impl FollowUpKind {
    fn as_str(self) -> &'static str {
        match self {
            FollowUpKind::AutoDispatch => "auto-dispatch",
            FollowUpKind::Redispatch => "redispatch",
            FollowUpKind::Expire => "expire",
        }
    }
}

/// The command id (uuid v5) of the `kind` follow-up of `cause` (a command
/// id, or a dispatch id for timeouts).
pub fn derived_command(kind: FollowUpKind, cause: Uuid) -> Uuid {
    Uuid::new_v5(
        &SERVICE_NAMESPACE,
        format!("ticketlog/{}/{cause}", kind.as_str()).as_bytes(),
    )
}
