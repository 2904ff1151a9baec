//! Who belongs to a tenant, with which role: what the service asks before a
//! command names a user to take work (an assignee, a technician), so that
//! `decide` gets the answer through its context and stays pure.

use std::collections::HashMap;
use std::sync::Mutex;

use event_store::{Role, UserId};

use super::error::ServiceError;
use crate::auth::UserDirectory;

/// The directory the service asks; the built-in one is [`UserDirectory`]
/// (which also holds the users outside issuers' tokens made known).
pub trait Members: Send + Sync {
    /// The role of `user` in `tenant`; `None` when `user` is not a member
    /// of `tenant` (unknown, or another tenant's: the same answer).
    fn role_in(&self, tenant: &str, user: UserId) -> Result<Option<Role>, ServiceError>;
}

impl Members for UserDirectory {
    fn role_in(&self, tenant: &str, user: UserId) -> Result<Option<Role>, ServiceError> {
        self.member(tenant, user)
            .map(|found| found.map(|u| u.role))
            .map_err(|e| ServiceError::Unavailable(format!("user directory: {e}")))
    }
}

/// Members held in memory: the service's default (nobody, so nothing can
/// be assigned until a directory is attached) and tests' directory.
#[derive(Debug, Default)]
pub struct StaticMembers {
    roles: Mutex<HashMap<(String, UserId), Role>>,
}

impl StaticMembers {
    /// Makes `user` a member of `tenant` with `role`.
    pub fn add(&self, tenant: &str, user: UserId, role: Role) {
        self.roles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((tenant.to_string(), user), role);
    }
}

impl Members for StaticMembers {
    fn role_in(&self, tenant: &str, user: UserId) -> Result<Option<Role>, ServiceError> {
        Ok(self
            .roles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(tenant.to_string(), user))
            .copied())
    }
}
