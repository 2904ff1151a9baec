//! The built-in user directory: the default token issuer. Users live in the
//! `users` side tree of the store; passwords are argon2 hashes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use event_store::{KvTree, Principal, Role};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::claims::validate_tenant;
use super::error::AuthError;
use super::password::{hash_password, validate_new_password, verify_password};

/// Name of the side tree holding users.
pub const USERS_TREE_NAME: &str = "users";
/// Longest user name accepted.
pub const USER_NAME_CHARS_MAX: usize = 64;
/// Most users `list` returns.
pub const USER_LIST_MAX: usize = 10_000;
/// Outside issuers' principals remembered as recorded (tenant, id, role),
/// so a token's later requests skip the directory; cleared when full.
pub const OUTSIDE_USERS_REMEMBERED_MAX: usize = 10_000;

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// UUID v7; the `sub` of their tokens.
    pub id: Uuid,
    /// The tenant.
    pub tenant: String,
    /// Login and display name, unique within the tenant.
    pub name: String,
    /// The role.
    pub role: Role,
    /// argon2 PHC string.
    pub password_hash: String,
}

/// What it takes to create a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The tenant.
    pub tenant: String,
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Plain password (hashed before storing; never logged).
    pub password: String,
}

/// The directory over its side tree.
pub struct UserDirectory {
    tree: Arc<dyn KvTree>,
    /// Serialises check-then-insert of names within this process.
    write_lock: Mutex<()>,
    /// Verified against when a user is missing, so a miss costs as much as a hit.
    dummy_hash: OnceLock<String>,
    /// Outside principals already recorded as they are (see [`UserDirectory::record_outside`]).
    outside_recorded: Mutex<HashSet<(String, Uuid, Role)>>,
}

fn name_key(tenant: &str, name: &str) -> Vec<u8> {
    format!("name/{tenant}/{name}").into_bytes()
}

fn id_key(id: Uuid) -> Vec<u8> {
    format!("id/{id}").into_bytes()
}

/// Tenant-scoped id key of a user an outside issuer made known: the same
/// id may be a user of two tenants there, which `id/{id}` cannot hold.
fn member_key(tenant: &str, id: Uuid) -> Vec<u8> {
    format!("member/{tenant}/{id}").into_bytes()
}

fn validate_name(name: &str) -> Result<(), AuthError> {
    let ok = !name.trim().is_empty()
        && name.chars().count() <= USER_NAME_CHARS_MAX
        && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(AuthError::InvalidField {
            field: "name",
            reason: format!("1..{USER_NAME_CHARS_MAX} printable characters"),
        })
    }
}

impl UserDirectory {
    /// A directory stored in `tree`.
    pub fn new(tree: Arc<dyn KvTree>) -> Self {
        UserDirectory {
            tree,
            write_lock: Mutex::new(()),
            dummy_hash: OnceLock::new(),
            outside_recorded: Mutex::new(HashSet::new()),
        }
    }

    /// Creates a user with a fresh v7 id. Fails if the name is taken in the tenant.
    pub fn add(&self, new: NewUser) -> Result<User, AuthError> {
        validate_tenant(&new.tenant)?;
        validate_name(&new.name)?;
        let password_hash = hash_password(&new.password)?;
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.find(&new.tenant, &new.name)?.is_some() {
            return Err(AuthError::UserExists {
                tenant: new.tenant,
                name: new.name,
            });
        }
        let user = User {
            id: Uuid::now_v7(),
            tenant: new.tenant,
            name: new.name,
            role: new.role,
            password_hash,
        };
        let value = serde_json::to_vec(&user).map_err(|e| AuthError::Hashing(e.to_string()))?;
        self.tree.apply(vec![
            (name_key(&user.tenant, &user.name), Some(value)),
            (id_key(user.id), Some(name_key(&user.tenant, &user.name))),
        ])?;
        self.tree.flush()?;
        Ok(user)
    }

    /// The existing user of that name, or a new one (for idempotent seeding).
    pub fn ensure(&self, new: NewUser) -> Result<User, AuthError> {
        if let Some(user) = self.find(&new.tenant, &new.name)? {
            return Ok(user);
        }
        match self.add(new.clone()) {
            Err(AuthError::UserExists { .. }) => self
                .find(&new.tenant, &new.name)?
                .ok_or(AuthError::InvalidCredentials),
            other => other,
        }
    }

    /// The user called `name` in `tenant`.
    pub fn find(&self, tenant: &str, name: &str) -> Result<Option<User>, AuthError> {
        match self.tree.get(&name_key(tenant, name))? {
            None => Ok(None),
            Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        }
    }

    /// The user with id `id`.
    pub fn get(&self, id: Uuid) -> Result<Option<User>, AuthError> {
        match self.tree.get(&id_key(id))? {
            None => Ok(None),
            Some(key) => match self.tree.get(&key)? {
                None => Ok(None),
                Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            },
        }
    }

    /// The user `id` if they are a member of `tenant`: a built-in user of
    /// that tenant, or one an outside issuer's token made known there.
    /// Another tenant's user is `None`, exactly as an unknown id.
    pub fn member(&self, tenant: &str, id: Uuid) -> Result<Option<User>, AuthError> {
        if let Some(name_key) = self.tree.get(&member_key(tenant, id))? {
            let user: Option<User> = match self.tree.get(&name_key)? {
                None => None,
                Some(bytes) => serde_json::from_slice(&bytes).ok(),
            };
            return Ok(user.filter(|u| u.id == id && u.tenant == tenant));
        }
        Ok(self.get(id)?.filter(|u| u.tenant == tenant))
    }

    /// Makes the principal of an outside issuer's verified token a member
    /// of its tenant, the first time it is seen there, and follows the
    /// issuer's later changes of its role: the issuer is the authority on
    /// its users, and this directory is what assignments are checked
    /// against. Recorded under the token's `name` when that is a valid name
    /// free in the tenant, else under the user id; without a password (so
    /// no password login). A built-in user with the same id is left alone.
    /// Not flushed: a record lost in a crash is made again by the next use.
    pub fn record_outside(&self, p: &Principal) -> Result<(), AuthError> {
        let seen = (p.tenant.clone(), p.user_id, p.role);
        if self.outside_recorded().contains(&seen) {
            return Ok(());
        }
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let user = match self.member(&p.tenant, p.user_id)? {
            Some(u) if !u.password_hash.is_empty() || u.role == p.role => None,
            Some(u) => Some(User { role: p.role, ..u }),
            None => {
                let named =
                    validate_name(&p.name).is_ok() && self.find(&p.tenant, &p.name)?.is_none();
                let name = if named {
                    p.name.clone()
                } else {
                    p.user_id.to_string()
                };
                if self.find(&p.tenant, &name)?.is_some() {
                    // A built-in user is called by this id: never overwrite it.
                    return Ok(());
                }
                Some(User {
                    id: p.user_id,
                    tenant: p.tenant.clone(),
                    name,
                    role: p.role,
                    password_hash: String::new(),
                })
            }
        };
        if let Some(user) = user {
            let value = serde_json::to_vec(&user).map_err(|e| AuthError::Hashing(e.to_string()))?;
            let name_key = name_key(&user.tenant, &user.name);
            self.tree.apply(vec![
                (member_key(&user.tenant, user.id), Some(name_key.clone())),
                (name_key, Some(value)),
            ])?;
        }
        let mut recorded = self.outside_recorded();
        if recorded.len() >= OUTSIDE_USERS_REMEMBERED_MAX {
            recorded.clear();
        }
        recorded.insert(seen);
        Ok(())
    }

    fn outside_recorded(&self) -> std::sync::MutexGuard<'_, HashSet<(String, Uuid, Role)>> {
        self.outside_recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Users of a tenant, in name order.
    pub fn list(&self, tenant: &str) -> Result<Vec<User>, AuthError> {
        let prefix = format!("name/{tenant}/").into_bytes();
        Ok(self
            .tree
            .scan_prefix(&prefix, USER_LIST_MAX)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect())
    }

    /// The user if the password matches. Slow on purpose (argon2): call it
    /// off the async executor. A missing user costs one verification too.
    pub fn authenticate(
        &self,
        tenant: &str,
        name: &str,
        password: &str,
    ) -> Result<User, AuthError> {
        let found = if validate_tenant(tenant).is_ok() && validate_name(name).is_ok() {
            self.find(tenant, name)?
        } else {
            None
        };
        match found {
            Some(user) if verify_password(password, &user.password_hash) => Ok(user),
            Some(_) => Err(AuthError::InvalidCredentials),
            None => {
                let dummy = self.dummy_hash();
                let _ = verify_password(password, dummy);
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    /// Replaces the password of user `id` (a new password must pass
    /// [`validate_new_password`]). Slow (argon2): call it off the executor.
    /// Revoking the user's earlier tokens is the caller's next step.
    pub fn set_password(&self, id: Uuid, password: &str) -> Result<User, AuthError> {
        validate_new_password(password)?;
        let password_hash = hash_password(password)?;
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut user = self.get(id)?.ok_or(AuthError::UnknownUser)?;
        user.password_hash = password_hash;
        let value = serde_json::to_vec(&user).map_err(|e| AuthError::Hashing(e.to_string()))?;
        self.tree
            .apply(vec![(name_key(&user.tenant, &user.name), Some(value))])?;
        self.tree.flush()?;
        Ok(user)
    }

    /// Gives user `id` the role `role`; returns the user as before. Tokens
    /// carry the role, so revoking the earlier ones is the caller's next step.
    pub fn set_role(&self, id: Uuid, role: Role) -> Result<User, AuthError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let before = self.get(id)?.ok_or(AuthError::UnknownUser)?;
        let user = User {
            role,
            ..before.clone()
        };
        let value = serde_json::to_vec(&user).map_err(|e| AuthError::Hashing(e.to_string()))?;
        self.tree
            .apply(vec![(name_key(&user.tenant, &user.name), Some(value))])?;
        self.tree.flush()?;
        Ok(before)
    }

    /// Whether `password` is user `id`'s (false for an unknown user, at the
    /// cost of one verification too). Slow (argon2): call it off the executor.
    pub fn check_password(&self, id: Uuid, password: &str) -> Result<bool, AuthError> {
        match self.get(id)? {
            Some(user) => Ok(verify_password(password, &user.password_hash)),
            None => {
                let _ = verify_password(password, self.dummy_hash());
                Ok(false)
            }
        }
    }

    fn dummy_hash(&self) -> &str {
        self.dummy_hash.get_or_init(|| {
            let mut random = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut random);
            let password: String = random.iter().map(|b| format!("{b:02x}")).collect();
            hash_password(&password).unwrap_or_default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_store::testing::MemoryTree;

    fn directory() -> UserDirectory {
        UserDirectory::new(Arc::new(MemoryTree::default()))
    }

    fn alice() -> NewUser {
        NewUser {
            tenant: "demo".into(),
            name: "alice".into(),
            role: Role::Agent,
            password: "demo".into(),
        }
    }

    #[test]
    fn add_find_authenticate() {
        let dir = directory();
        let user = dir.add(alice()).expect("add");
        assert_eq!(user.id.get_version_num(), 7);
        assert_eq!(dir.find("demo", "alice").expect("find"), Some(user.clone()));
        assert_eq!(dir.get(user.id).expect("get"), Some(user.clone()));
        assert_eq!(
            dir.authenticate("demo", "alice", "demo").expect("auth"),
            user
        );
        assert!(matches!(
            dir.authenticate("demo", "alice", "nope"),
            Err(AuthError::InvalidCredentials)
        ));
        assert!(matches!(
            dir.authenticate("demo", "mallory", "demo"),
            Err(AuthError::InvalidCredentials)
        ));
        assert!(matches!(
            dir.authenticate("other", "alice", "demo"),
            Err(AuthError::InvalidCredentials)
        ));
        assert!(matches!(
            dir.authenticate("BAD TENANT", "alice", "demo"),
            Err(AuthError::InvalidCredentials)
        ));
    }

    #[test]
    fn names_are_unique_per_tenant_and_ensure_is_idempotent() {
        let dir = directory();
        let first = dir.ensure(alice()).expect("ensure");
        assert_eq!(dir.ensure(alice()).expect("again").id, first.id);
        assert!(matches!(
            dir.add(alice()),
            Err(AuthError::UserExists { .. })
        ));
        let other = dir
            .add(NewUser {
                tenant: "acme".into(),
                ..alice()
            })
            .expect("other tenant");
        assert_ne!(other.id, first.id);
        assert_eq!(dir.list("demo").expect("list").len(), 1);
    }

    #[test]
    fn set_password_replaces_the_hash() {
        let dir = directory();
        let user = dir.add(alice()).expect("add");
        assert!(matches!(
            dir.set_password(user.id, "short"),
            Err(AuthError::InvalidField { field: "new", .. })
        ));
        dir.set_password(user.id, "a much longer one").expect("set");
        assert!(dir
            .check_password(user.id, "a much longer one")
            .expect("check"));
        assert!(!dir.check_password(user.id, "demo").expect("check"));
        assert!(dir.authenticate("demo", "alice", "demo").is_err());
        assert!(matches!(
            dir.set_password(Uuid::now_v7(), "a much longer one"),
            Err(AuthError::UnknownUser)
        ));
        let before = dir.set_role(user.id, Role::Auditor).expect("role");
        assert_eq!(before.role, Role::Agent);
        assert_eq!(
            dir.get(user.id).expect("get").map(|u| u.role),
            Some(Role::Auditor)
        );
    }

    #[test]
    fn rejects_bad_fields() {
        let dir = directory();
        for bad in [
            NewUser {
                tenant: "".into(),
                ..alice()
            },
            NewUser {
                tenant: "Demo".into(),
                ..alice()
            },
            NewUser {
                name: " ".into(),
                ..alice()
            },
            NewUser {
                name: "a\nb".into(),
                ..alice()
            },
            NewUser {
                password: "".into(),
                ..alice()
            },
        ] {
            assert!(matches!(dir.add(bad), Err(AuthError::InvalidField { .. })));
        }
    }

    fn outside(id: Uuid, tenant: &str, role: Role, name: &str) -> Principal {
        Principal {
            user_id: id,
            tenant: tenant.into(),
            role,
            name: name.into(),
        }
    }

    #[test]
    fn members_are_per_tenant_and_outside_users_become_known_on_first_use() {
        let dir = directory();
        let alice = dir.add(alice()).expect("add");
        assert_eq!(
            dir.member("demo", alice.id).expect("member"),
            Some(alice.clone())
        );
        assert_eq!(dir.member("acme", alice.id).expect("member"), None);
        assert_eq!(dir.member("demo", Uuid::now_v7()).expect("member"), None);

        // One outside id in two tenants, one named like a built-in user.
        let id = Uuid::now_v7();
        dir.record_outside(&outside(id, "demo", Role::Technician, "alice"))
            .expect("record");
        dir.record_outside(&outside(id, "acme", Role::Agent, "tess"))
            .expect("record");
        let in_demo = dir.member("demo", id).expect("member").expect("known");
        assert_eq!(
            (in_demo.role, in_demo.name.as_str()),
            (Role::Technician, &*id.to_string())
        );
        let in_acme = dir.member("acme", id).expect("member").expect("known");
        assert_eq!((in_acme.role, in_acme.name.as_str()), (Role::Agent, "tess"));
        assert_eq!(
            dir.find("demo", "alice").expect("find"),
            Some(alice.clone())
        );
        assert!(matches!(
            dir.authenticate("acme", "tess", ""),
            Err(AuthError::InvalidCredentials)
        ));

        // The issuer's change of role is followed; a built-in user is not
        // changed by a token naming its id.
        dir.record_outside(&outside(id, "acme", Role::Customer, "tess"))
            .expect("record");
        let changed = dir.member("acme", id).expect("member").expect("known");
        assert_eq!(changed.role, Role::Customer);
        dir.record_outside(&outside(alice.id, "demo", Role::Admin, "alice"))
            .expect("record");
        assert_eq!(dir.member("demo", alice.id).expect("member"), Some(alice));
    }
}
