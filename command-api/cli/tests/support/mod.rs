//! What the binary's tests share: `ticketlog serve` as a child process
//! (the one harness, `ticketlog_bench::serve_child`, started on this
//! package's binary), `ticketlog` commands run to completion, and logins.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
pub use ticketlog_bench::serve_child::{Launch, ServerChild};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ticketlog");
/// How long a started server may take to answer `/healthz` again.
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two health polls while waiting for a condition.
const HEALTH_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Starts the binary's `serve` on 127.0.0.1:0 over `data` with `extra`
/// flags (rate limits off) and waits until it answers `/healthz`.
pub async fn serve(data: &Path, extra: &[&str]) -> ServerChild {
    serve_with(
        data,
        Launch {
            args: extra,
            ..Launch::default()
        },
    )
    .await
}

/// Like [`serve`], with the rest of `launch` (environment, whole log).
pub async fn serve_with(data: &Path, launch: Launch<'_>) -> ServerChild {
    let launch = Launch {
        exe: Some(Path::new(BIN)),
        ..launch
    };
    match ServerChild::launch(data, launch).await {
        Ok(server) => server,
        Err(e) => panic!("ticketlog serve: {e:#}"),
    }
}

/// SIGTERM, and a clean exit.
pub async fn stop(mut server: ServerChild) {
    if let Err(e) = server.stop().await {
        panic!("{e:#}");
    }
}

/// The gauge on `/metrics` that carries the log head (`/healthz` answers
/// liveness only and never shows it).
const HEAD_GAUGE: &str = "ticketlog_log_head_position ";

/// Waits until `/healthz` answers and `/metrics` shows the log head (the
/// gauge is left out while the store cannot be read); returns that head.
pub async fn healthy_head(client: &reqwest::Client, server: &ServerChild) -> u64 {
    let deadline = Instant::now() + HEALTHY_TIMEOUT;
    loop {
        if let Some(head) = head_if_healthy(client, server).await {
            return head;
        }
        assert!(Instant::now() < deadline, "server not healthy in time");
        tokio::time::sleep(HEALTH_POLL_INTERVAL).await;
    }
}

/// One try of [`healthy_head`]: `None` while either answer is missing.
async fn head_if_healthy(client: &reqwest::Client, server: &ServerChild) -> Option<u64> {
    let live = client.get(server.url("/healthz")).send().await.ok()?;
    if !live.status().is_success() {
        return None;
    }
    let metrics = server.metrics_request(client).send().await.ok()?;
    if !metrics.status().is_success() {
        return None;
    }
    let text = metrics.text().await.ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(HEAD_GAUGE))
        .map(|n| n.trim().parse().expect("head gauge is a number"))
}

/// Copies the directory `from` (a data directory) to `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
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
    add_user(data, tenant, name, "admin", password);
}

/// Adds `name` with `role` and `password` to `tenant` in `data` (server stopped).
pub fn add_user(data: &Path, tenant: &str, name: &str, role: &str, password: &str) {
    ticketlog_ok(
        &[
            "user",
            "add",
            "--tenant",
            tenant,
            "--name",
            name,
            "--role",
            role,
            "--password",
            password,
        ],
        data,
    );
}

/// Logs in through `/api/v1/auth/token`; returns (token, user id).
pub async fn login(
    client: &reqwest::Client,
    server: &ServerChild,
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

/// GETs `path` with `token`: asserts a 200 and returns the JSON body.
pub async fn get_ok(
    client: &reqwest::Client,
    server: &ServerChild,
    token: &str,
    path: &str,
) -> Value {
    let r = client
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    let status = r.status();
    let v: Value = r.json().await.expect("a JSON answer");
    assert_eq!(status.as_u16(), 200, "GET {path}: {v}");
    v
}
