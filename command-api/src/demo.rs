//! `serve --demo`: the `demo` tenant with one user per role (password
//! `demo`) and a few tickets with history. The story is data
//! (`command-api/src/demo/seed.json`: command requests shaped as the API's
//! bodies, mapped to commands as the API maps them); this is its loader.
//! Idempotent: a restart finds the users by name and the tickets by their
//! recorded plan, and appends nothing new.

use std::collections::HashMap;
use std::net::SocketAddr;

use event_store::{Principal, Role};
use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;
use uuid::Uuid;

use crate::auth::{AuthError, NewUser, User};
use crate::http::{ApiError, AppState};
use crate::request::{command_key, Request};
use crate::service::CommandOutcome;

/// The demo's story, as data.
const SEED_JSON: &str = include_str!("demo/seed.json");

/// Prefix of a body string naming a demo user (`"@bob"` = bob's id).
const USER_REF_PREFIX: char = '@';

/// Namespace of the demo's idempotency keys: each step has a fixed key, so
/// a restart replays the script and the store appends nothing new.
const DEMO_NAMESPACE: Uuid = Uuid::from_u128(0x9d3a_04c1_6e2b_4f7a_8c55_1b0e_d4f3_a2c9);

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
    /// A demo command was refused.
    #[error("demo step {step} failed: {} {}", .error.code, .error.message)]
    Command {
        /// The step's key.
        step: String,
        /// The API error it got.
        error: ApiError,
    },
    /// Hashing ran on a blocking thread that failed.
    #[error("seeding task failed: {0}")]
    Task(String),
    /// `seed.json` does not describe a story this loader can run.
    #[error("demo seed step {step}: {message}")]
    Seed {
        /// The step's key (or `seed.json`).
        step: String,
        /// What is wrong with it.
        message: String,
    },
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
             Console: http://{addr}/app/login\n\
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
    let tickets = seed_tickets(state, &users).await?;
    Ok(DemoSummary { users, tickets })
}

fn principal(users: &[User], name: &str) -> Principal {
    let user = users.iter().find(|u| u.name == name);
    Principal {
        user_id: user.map_or(Uuid::nil(), |u| u.id),
        tenant: DEMO_TENANT.into(),
        role: user.map_or(Role::Customer, |u| u.role),
        name: name.into(),
    }
}

/// How far back the demo's story starts, so its statistics (resolution and
/// first-response times, SLA breaches, weeks) show real durations.
const DEMO_HISTORY_DAYS: i64 = 5;
/// Least and most minutes between two scripted steps.
const DEMO_STEP_MINUTES_MIN: i64 = 7;
const DEMO_STEP_MINUTES_SPREAD: i64 = 170;

/// `seed.json`.
#[derive(Debug, Deserialize)]
struct Seed {
    /// The steps, in story order.
    steps: Vec<Step>,
}

/// One step of the story: a command request sent by a demo user.
#[derive(Debug, Deserialize)]
struct Step {
    /// The step's key: its idempotency key and its name for `on`.
    step: String,
    /// The demo user who sends it.
    by: String,
    /// The earlier step whose ticket or dispatch the path names.
    #[serde(default)]
    on: Option<String>,
    /// The request (`command` and `body`), user names not yet resolved.
    #[serde(flatten)]
    request: Value,
}

/// Replaces every `"@name"` string in `body` by that demo user's id.
fn resolve_users(body: &mut Value, users: &[User]) -> Result<(), String> {
    match body {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix(USER_REF_PREFIX) {
                let user = users
                    .iter()
                    .find(|u| u.name == name)
                    .ok_or_else(|| format!("no demo user {name}"))?;
                *s = user.id.to_string();
            }
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(|v| resolve_users(v, users)),
        Value::Object(map) => map.values_mut().try_for_each(|v| resolve_users(v, users)),
        _ => Ok(()),
    }
}

/// Runs the story's steps with their fixed idempotency keys, at the
/// story's clock: each step happens some minutes after the previous one.
async fn seed_tickets(state: &AppState, users: &[User]) -> Result<usize, DemoError> {
    let seed: Seed = serde_json::from_str(SEED_JSON).map_err(|e| DemoError::Seed {
        step: "seed.json".into(),
        message: e.to_string(),
    })?;
    let start = chrono::Utc::now() - chrono::Duration::days(DEMO_HISTORY_DAYS);
    let mut elapsed_minutes = 0;
    // What each step created (its ticket or dispatch), for later steps' `on`.
    let mut created: HashMap<String, Uuid> = HashMap::new();
    let mut tickets = 0;
    for Step {
        step,
        by,
        on,
        mut request,
    } in seed.steps
    {
        let bad = |message: String| DemoError::Seed {
            step: step.clone(),
            message,
        };
        resolve_users(&mut request, users).map_err(bad)?;
        let request: Request = serde_json::from_value(request).map_err(|e| bad(e.to_string()))?;
        let on = match &on {
            Some(name) => Some(
                *created
                    .get(name)
                    .ok_or_else(|| bad(format!("no earlier step {name}")))?,
            ),
            None => None,
        };
        let principal = principal(users, &by);
        let key = Uuid::new_v5(&DEMO_NAMESPACE, step.as_bytes());
        let command = command_key(&principal, Some(key), &request, on);
        let action = request
            .into_action(on, Uuid::now_v7())
            .ok_or_else(|| bad("the command needs `on`".into()))?;
        // A fixed, step-dependent gap keeps the story the same on every seed.
        elapsed_minutes += DEMO_STEP_MINUTES_MIN
            + step.bytes().map(i64::from).sum::<i64>() % DEMO_STEP_MINUTES_SPREAD;
        let at = start + chrono::Duration::minutes(elapsed_minutes);
        let outcome: CommandOutcome = state
            .service()
            .execute_at(&principal, action, command, None, at)
            .await
            .map_err(|error| DemoError::Command {
                step: step.clone(),
                error: ApiError::from(error),
            })?;
        let made = &outcome.created;
        if let Some(ticket) = made.ticket {
            tickets += 1;
            created.insert(step, ticket.id);
        } else if let Some(id) = made.dispatch_id.or(made.comment_id) {
            created.insert(step, id);
        }
    }
    Ok(tickets)
}
