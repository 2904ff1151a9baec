//! The server under test: `ticketlog serve` as a child process (this same
//! executable) on 127.0.0.1:0, its users, their tokens, and its log.

use std::path::Path;

use anyhow::{bail, Context};
use command_api::auth::users::USERS_TREE_NAME;
use command_api::auth::{NewUser, UserDirectory};
use command_api::config::store_path;
use event_store::{EventStore, KvProvider, Role, SledOptions, SledStore};
use serde_json::{json, Value};
use uuid::Uuid;

pub use crate::serve_child::ServerChild;

/// The bench's tenant.
pub const TENANT: &str = "soak";
/// Agents: the writers, the query clients and a quarter of the WebSocket clients.
const AGENTS: usize = 8;
/// Customers: the reporters of the tickets and most WebSocket clients.
const CUSTOMERS: usize = 16;
/// Token lifetime beyond the run, in seconds.
const TOKEN_TTL_MARGIN_SECS: u64 = 3600;

/// One logged-in user.
#[derive(Debug, Clone)]
pub struct Member {
    /// User id.
    pub id: Uuid,
    /// Bearer token.
    pub token: String,
}

/// Every bench user, logged in.
#[derive(Debug)]
pub struct Cast {
    /// Agents.
    pub agents: Vec<Member>,
    /// Customers.
    pub customers: Vec<Member>,
}

/// Names and roles of the bench's users.
fn user_names() -> Vec<(String, Role)> {
    (0..AGENTS)
        .map(|i| (format!("agent-{i}"), Role::Agent))
        .chain((0..CUSTOMERS).map(|i| (format!("customer-{i}"), Role::Customer)))
        .collect()
}

/// Adds the bench's users to the (new) data directory, server stopped.
pub async fn seed_users(data: &Path, password: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let store = SledStore::open(store_path(data), SledOptions::default())
        .with_context(|| format!("opening the store in {}", data.display()))?;
    let directory = UserDirectory::new(store.tree(USERS_TREE_NAME)?);
    let added: anyhow::Result<()> = user_names().into_iter().try_for_each(|(name, role)| {
        directory.add(NewUser {
            tenant: TENANT.into(),
            name,
            role,
            password: password.to_string(),
        })?;
        Ok(())
    });
    store.close().await?;
    added
}

/// Logs every user in through `/api/v1/auth/token`.
pub async fn login_all(base: &str, password: &str) -> anyhow::Result<Cast> {
    let http = reqwest::Client::new();
    let mut agents = vec![];
    let mut customers = vec![];
    for (name, role) in user_names() {
        let r = http
            .post(format!("{base}/api/v1/auth/token"))
            .json(&json!({"tenant": TENANT, "username": name, "password": password}))
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if !status.is_success() {
            bail!("login of {name}: {status} {v}");
        }
        let member = Member {
            id: v["user"]["id"]
                .as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
                .context("user id in the token answer")?,
            token: v["token"].as_str().context("token")?.to_string(),
        };
        match role {
            Role::Agent => agents.push(member),
            _ => customers.push(member),
        }
    }
    Ok(Cast { agents, customers })
}

/// Starts the server on `data` with tokens valid for the run and `cache_mib`
/// of sled page cache (serve's default when `None`).
pub async fn start(
    data: &Path,
    duration_s: u64,
    cache_mib: Option<u64>,
) -> anyhow::Result<ServerChild> {
    let mut extra = vec![
        "--token-ttl-secs".to_string(),
        (duration_s + TOKEN_TTL_MARGIN_SECS).to_string(),
    ];
    if let Some(mib) = cache_mib {
        extra.extend(["--cache-mib".to_string(), mib.to_string()]);
    }
    ServerChild::start(data, &extra, &[]).await
}
