//! The server under test (a `serve` child, so that its memory is its own)
//! and its users' tokens.

use std::path::Path;

use chrono::Utc;
use command_api::auth::JwtAuth;
use command_api::config::JWT_SECRET_ENV;
use event_store::{Principal, Role};
use uuid::Uuid;

pub use crate::serve_child::{cpu_s, ServerChild};

/// The bench's tenant.
const TENANT: &str = "fanout";
/// Agents: the writers, and a share of the WebSocket clients.
const AGENTS: usize = 8;
/// Customers: each reports an equal share of the tickets.
const CUSTOMERS: usize = 25;
/// Token lifetime, seconds: longer than any run.
const TOKEN_TTL_SECS: u64 = 86_400;

/// Bearer tokens of the bench's users.
#[derive(Debug)]
pub struct Cast {
    /// Agents' tokens.
    pub agents: Vec<String>,
    /// Customers' tokens.
    pub customers: Vec<String>,
}

impl Cast {
    /// Signs the users' tokens with the server's secret. A valid token is a
    /// principal by its claims alone (CONTRACT.md), so no password is
    /// hashed: argon2's 19 MiB per hash would otherwise sit in the server's
    /// allocator and blur the RSS measured before and after connecting.
    pub fn mint(secret: &str) -> anyhow::Result<Self> {
        let jwt = JwtAuth::hs256(secret.as_bytes(), TOKEN_TTL_SECS)?;
        let token = |name: String, role: Role| -> anyhow::Result<String> {
            let principal = Principal {
                user_id: Uuid::now_v7(),
                tenant: TENANT.into(),
                role,
                name,
            };
            Ok(jwt.issue(&principal, Utc::now())?.token)
        };
        Ok(Cast {
            agents: (0..AGENTS)
                .map(|i| token(format!("agent-{i}"), Role::Agent))
                .collect::<anyhow::Result<_>>()?,
            customers: (0..CUSTOMERS)
                .map(|i| token(format!("customer-{i}"), Role::Customer))
                .collect::<anyhow::Result<_>>()?,
        })
    }
}

/// Starts the server on `data`, signing tokens with `secret`.
pub async fn start(data: &Path, secret: &str) -> anyhow::Result<ServerChild> {
    ServerChild::start(data, &[], &[(JWT_SECRET_ENV, secret)]).await
}
