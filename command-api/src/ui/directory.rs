//! `GET /api/v1/users`: who is who in the caller's tenant, so clients can
//! show names and initials instead of user ids. Who may list whom is
//! `event_store::access::can_list_user` (customers see staff only).

use axum::extract::State;
use axum::Json;
use event_store::{can_list_user, Role};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::User;
use crate::http::error::ApiError;
use crate::http::extract::Auth;
use crate::http::state::AppState;

/// One user as the directory shows it (never the password hash).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// User id.
    pub id: Uuid,
    /// Name (login).
    pub name: String,
    /// Role.
    pub role: Role,
}

/// The directory answer: `{"items":[{"id","name","role"}]}`.
#[derive(Debug, Serialize)]
pub struct Directory {
    /// Users in name order.
    pub items: Vec<DirectoryEntry>,
}

/// The entries of `users` that `viewer_role` may see.
pub fn visible_to(viewer_role: Role, users: Vec<User>) -> Vec<DirectoryEntry> {
    users
        .into_iter()
        .filter(|u| can_list_user(viewer_role, u.role))
        .map(|u| DirectoryEntry {
            id: u.id,
            name: u.name,
            role: u.role,
        })
        .collect()
}

/// Lists the caller's tenant's users.
pub async fn list_users(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<Directory>, ApiError> {
    let users = state.users().clone();
    let tenant = p.tenant.clone();
    let all = tokio::task::spawn_blocking(move || users.list(&tenant))
        .await
        .map_err(|_| ApiError::internal())??;
    Ok(Json(Directory {
        items: visible_to(p.role, all),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, role: Role) -> User {
        User {
            id: Uuid::now_v7(),
            tenant: "t".into(),
            name: name.into(),
            role,
            password_hash: "secret-hash".into(),
        }
    }

    #[test]
    fn customers_see_staff_only_and_nobody_sees_hashes() {
        let users = || {
            vec![
                user("alice", Role::Agent),
                user("carol", Role::Customer),
                user("zoe", Role::Customer),
            ]
        };
        let seen: Vec<String> = visible_to(Role::Customer, users())
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(seen, ["alice"]);
        let all = visible_to(Role::Agent, users());
        assert_eq!(all.len(), 3);
        let json = serde_json::to_string(&all).expect("json");
        assert!(!json.contains("secret-hash"));
    }
}
