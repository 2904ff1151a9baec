//! `ticketlog serve` as a child process, for tests that must kill it, fill
//! its disk or otherwise treat it as the separate program it is in
//! production. The listening address is read from its JSON log.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ticketlog");
/// How long a server may take to listen (and to answer `/healthz`).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Rate-limit flags that keep the per-user limiter out of load tests.
pub const NO_RATE_LIMIT: [&str; 4] = [
    "--rate-limit-per-s",
    "1000000",
    "--rate-limit-burst",
    "1000000",
];

/// A running `ticketlog serve`.
pub struct ServeChild {
    child: Child,
    /// `host:port` it listens on.
    pub addr: String,
}

impl ServeChild {
    /// Starts `serve` on 127.0.0.1:0 over `data` with `extra` flags and
    /// waits until it listens. Its log is drained so it never blocks on
    /// the pipe; the lines before "listening" are shown if it dies first.
    pub fn start(data: &Path, extra: &[&str]) -> ServeChild {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(extra)
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "info,sled=warn")
            .env_remove("TICKETLOG_LISTEN")
            .env_remove("TICKETLOG_DATA")
            .env_remove("TICKETLOG_JWT_SECRET")
            .env_remove("TICKETLOG_DISK_RESERVE_MIB")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ticketlog serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel::<Result<String, String>>();
        std::thread::spawn(move || {
            let mut head = String::new();
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sent {
                    continue;
                }
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["fields"]["message"] == "ticketlog listening" {
                        if let Some(a) = v["fields"]["addr"].as_str() {
                            let _ = tx.send(Ok(a.to_string()));
                            sent = true;
                            continue;
                        }
                    }
                }
                head.push_str(&line);
                head.push('\n');
            }
            if !sent {
                let _ = tx.send(Err(head));
            }
        });
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(a)) => a,
            Ok(Err(log)) => panic!("serve exited before listening: {log}"),
            Err(e) => panic!("serve did not listen within {START_TIMEOUT:?}: {e}"),
        };
        ServeChild { child, addr }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// SIGKILL (std's `Child::kill` on Unix) and reap.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "serve exited with {status} on SIGTERM");
    }

    /// Waits until `/healthz` answers; returns the log head it reports.
    pub async fn healthy_head(&self, client: &reqwest::Client) -> u64 {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(r) = client.get(self.url("/healthz")).send().await {
                if r.status().is_success() {
                    let v: Value = r.json().await.expect("healthz body");
                    return v["head"].as_u64().expect("head");
                }
            }
            assert!(Instant::now() < deadline, "server not healthy in time");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Runs `ticketlog <args> --data <data>` to completion.
pub fn ticketlog(args: &[&str], data: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("TICKETLOG_DATA")
        .env_remove("TICKETLOG_TENANT")
        .output()
        .expect("run ticketlog")
}

/// Like [`ticketlog`], asserting success; returns stdout.
pub fn ticketlog_ok(args: &[&str], data: &Path) -> String {
    let out = ticketlog(args, data);
    assert!(
        out.status.success(),
        "ticketlog {args:?} exited {:?}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Adds an admin `name` with `password` to `tenant` in `data` (server stopped).
pub fn add_admin(data: &Path, tenant: &str, name: &str, password: &str) {
    ticketlog_ok(
        &[
            "user",
            "add",
            "--tenant",
            tenant,
            "--name",
            name,
            "--role",
            "admin",
            "--password",
            password,
        ],
        data,
    );
}

/// Logs in through `/api/v1/auth/token`; returns (token, user id).
pub async fn login(
    client: &reqwest::Client,
    server: &ServeChild,
    tenant: &str,
    name: &str,
    password: &str,
) -> (String, String) {
    let r = client
        .post(server.url("/api/v1/auth/token"))
        .json(&json!({"tenant": tenant, "username": name, "password": password}))
        .send()
        .await
        .expect("login");
    assert!(r.status().is_success(), "login: {}", r.status());
    let v: Value = r.json().await.expect("login body");
    (
        v["token"].as_str().expect("token").to_string(),
        v["user"]["id"].as_str().expect("user id").to_string(),
    )
}
