//! The server under test: `ticketlog serve` as a child process (this same
//! executable) on 127.0.0.1:0, its users, their tokens, and its log.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use command_api::auth::users::USERS_TREE_NAME;
use command_api::auth::{NewUser, UserDirectory};
use command_api::config::store_path;
use event_store::{EventStore, KvProvider, Role, SledOptions, SledStore};
use serde_json::{json, Value};
use uuid::Uuid;

/// The bench's tenant.
pub const TENANT: &str = "soak";
/// Agents: the writers, the query clients and a quarter of the WebSocket clients.
const AGENTS: usize = 8;
/// Customers: the reporters of the tickets and most WebSocket clients.
const CUSTOMERS: usize = 16;
/// Longest wait for the server to log its address and answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for a clean exit after SIGTERM.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// Server log lines (warnings and errors) kept for the report.
const LOG_LINES_KEPT: usize = 10;
/// Token lifetime beyond the run, in seconds.
const TOKEN_TTL_MARGIN_SECS: u64 = 3600;
/// Requests per second and burst per user: far above the load, so the
/// rate limiter never answers 429 (it is not what this measures).
const RATE_LIMIT_UNBOUNDED: &str = "1000000";

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

/// Warnings and errors the server logged.
#[derive(Debug, Default)]
pub struct ServerLog {
    /// `WARN` lines.
    pub warnings: AtomicU64,
    /// `ERROR` lines.
    pub errors: AtomicU64,
    /// The first of them.
    pub first: Mutex<Vec<String>>,
}

impl ServerLog {
    fn note(&self, line: &str) {
        let counter = if line.contains("\"level\":\"ERROR\"") {
            &self.errors
        } else if line.contains("\"level\":\"WARN\"") {
            &self.warnings
        } else {
            return;
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        if first.len() < LOG_LINES_KEPT {
            first.push(line.to_string());
        }
    }
}

/// A running `ticketlog serve`.
pub struct ServerChild {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// The address it listens on.
    pub addr: String,
    /// What it logged.
    pub log: Arc<ServerLog>,
}

impl ServerChild {
    /// Starts the server on `data` and waits until it answers `/healthz`.
    pub async fn start(
        data: &Path,
        duration_s: u64,
        cache_mib: Option<u64>,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the ticketlog executable")?;
        let ttl = (duration_s + TOKEN_TTL_MARGIN_SECS).to_string();
        let mut command = Command::new(exe);
        command.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"]);
        if let Some(mib) = cache_mib {
            command.args(["--cache-mib", &mib.to_string()]);
        }
        let mut child = command
            .args(["--rate-limit-per-s", RATE_LIMIT_UNBOUNDED])
            .args(["--rate-limit-burst", RATE_LIMIT_UNBOUNDED])
            .args(["--token-ttl-secs", &ttl])
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "info,sled=warn")
            .env_remove("TICKETLOG_LISTEN")
            .env_remove("TICKETLOG_DATA")
            .env_remove("TICKETLOG_DEMO")
            .env_remove("TICKETLOG_JWT_SECRET")
            .env_remove("TICKETLOG_CACHE_MIB")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning ticketlog serve")?;
        let pid = child.id();
        let stderr = child.stderr.take().context("the server's stderr")?;
        let log = Arc::new(ServerLog::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<String, String>>();
        let thread_log = log.clone();
        // Reads the log until the process ends: the address first, then
        // warnings and errors, and drains so the server never blocks.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut head = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                thread_log.note(&line);
                if tx.is_some() {
                    let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                    match v["fields"]["addr"].as_str() {
                        Some(a) if v["fields"]["message"] == "ticketlog listening" => {
                            if let Some(tx) = tx.take() {
                                let _ = tx.send(Ok(a.to_string()));
                            }
                        }
                        _ => {
                            head.push_str(&line);
                            head.push('\n');
                        }
                    }
                }
            }
            if let Some(tx) = tx.take() {
                let _ = tx.send(Err(head));
            }
        });
        let addr = match tokio::time::timeout(START_TIMEOUT, rx).await {
            Ok(Ok(Ok(a))) => a,
            Ok(Ok(Err(log))) => bail!("serve exited before listening:\n{log}"),
            Ok(Err(_)) => bail!("serve's log reader stopped"),
            Err(_) => {
                let _ = child.kill();
                bail!("serve did not listen within {START_TIMEOUT:?}")
            }
        };
        let server = ServerChild {
            child,
            pid,
            addr,
            log,
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    async fn wait_healthy(&self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(r) = http
                .get(format!("http://{}/healthz", self.addr))
                .send()
                .await
            {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("the server was not healthy within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, and a clean exit within [`SHUTDOWN_TIMEOUT`] (else SIGKILL
    /// and an error).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.exited() {
            bail!("the server had already exited: {status}");
        }
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .context("running kill -TERM")?;
        if !sent.success() {
            bail!("kill -TERM {} failed", self.pid);
        }
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        loop {
            if let Some(status) = self.exited() {
                if status.success() {
                    return Ok(());
                }
                bail!("serve exited with {status} on SIGTERM");
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("serve did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        // Never leave a server behind (an early error, a panic).
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
