//! `ticketlog serve` as a child process on 127.0.0.1:0, for the benchmarks
//! that measure the server apart from their own load (`bench soak`, `bench
//! fanout`: this same executable) and for the binary's tests that kill it,
//! fill its disk or read its log (`CARGO_BIN_EXE_ticketlog`): its address
//! read from its JSON log, its warnings and errors counted, `/proc/<pid>`
//! for its resources.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use command_api::procfs::{self, Pid};
use serde_json::Value;

/// Longest wait for the server to log its address and answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for a clean exit after SIGTERM.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// Server log lines (warnings and errors) kept for the report.
const LOG_LINES_KEPT: usize = 10;
/// Requests per second and burst per user: far above any bench's load, so
/// the rate limiter never answers 429 (it is not what they measure).
const RATE_LIMIT_UNBOUNDED: &str = "1000000";
/// Environment variable of `serve`'s metrics token: the harness gives each
/// server a fresh one, so that it can read `/metrics` (issue 15).
const METRICS_TOKEN_ENV: &str = "TICKETLOG_METRICS_TOKEN";
/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const CLOCK_TICKS_PER_S: f64 = 100.0;

/// Variables of the caller's environment that would override the flags
/// the harness gives (or seed data it does not expect).
const ENV_REMOVED: [&str; 7] = [
    "TICKETLOG_LISTEN",
    "TICKETLOG_METRICS_LISTEN",
    "TICKETLOG_DATA",
    "TICKETLOG_DEMO",
    "TICKETLOG_JWT_SECRET",
    "TICKETLOG_CACHE_MIB",
    "TICKETLOG_DISK_RESERVE_MIB",
];

/// How to start `serve`, besides its data directory.
#[derive(Debug, Default, Clone, Copy)]
pub struct Launch<'a> {
    /// The `ticketlog` executable (`None`: this process's own, as under
    /// `ticketlog bench`).
    pub exe: Option<&'a Path>,
    /// Flags after `serve` (the harness gives `--listen`, `--log-format`,
    /// `--data` and unbounded rate limits).
    pub args: &'a [&'a str],
    /// Environment variables set for it (`RUST_LOG` replaces the harness's).
    pub env: &'a [(&'a str, &'a str)],
    /// Keep every line of its log ([`ServerLog::text`]), not only the
    /// counts and first warnings and errors.
    pub keep_log: bool,
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
    /// Every line, when [`Launch::keep_log`] asked for it.
    all: Option<Mutex<String>>,
}

impl ServerLog {
    /// Every line logged so far (empty unless [`Launch::keep_log`]).
    pub fn text(&self) -> String {
        self.all.as_ref().map_or_else(String::new, |all| {
            all.lock().unwrap_or_else(|p| p.into_inner()).clone()
        })
    }

    fn note(&self, line: &str) {
        if let Some(all) = &self.all {
            let mut all = all.lock().unwrap_or_else(|p| p.into_inner());
            all.push_str(line);
            all.push('\n');
        }
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

    /// Warnings and errors together.
    pub fn problems(&self) -> u64 {
        self.warnings.load(Ordering::Relaxed) + self.errors.load(Ordering::Relaxed)
    }
}

/// A running `ticketlog serve`; killed on drop if still running.
pub struct ServerChild {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// The address it listens on.
    pub addr: String,
    /// The bearer token that reads its `/metrics` (unless the launch's
    /// environment gave another).
    pub metrics_token: String,
    /// What it logged.
    pub log: Arc<ServerLog>,
    /// The thread reading its log (joined after a clean stop, so that the
    /// log is whole).
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ServerChild {
    /// Starts `serve` (this same executable) on `data` with `extra` flags
    /// and `env`, without rate limits, and waits until it answers `/healthz`.
    pub async fn start(
        data: &Path,
        extra: &[String],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let args: Vec<&str> = extra.iter().map(String::as_str).collect();
        let launch = Launch {
            args: &args,
            env,
            ..Launch::default()
        };
        Self::launch(data, launch).await
    }

    /// Starts `serve` on `data` as `launch` says, without rate limits, and
    /// waits until it answers `/healthz`.
    pub async fn launch(data: &Path, launch: Launch<'_>) -> anyhow::Result<Self> {
        let exe = match launch.exe {
            Some(exe) => exe.to_path_buf(),
            None => std::env::current_exe().context("locating the ticketlog executable")?,
        };
        let metrics_token = uuid::Uuid::new_v4().simple().to_string();
        let mut command = Command::new(exe);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--rate-limit-per-s", RATE_LIMIT_UNBOUNDED])
            .args(["--rate-limit-burst", RATE_LIMIT_UNBOUNDED])
            .args(launch.args)
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "info,sled=warn");
        for name in ENV_REMOVED {
            command.env_remove(name);
        }
        command.env(METRICS_TOKEN_ENV, &metrics_token);
        command
            .envs(launch.env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().context("spawning ticketlog serve")?;
        let pid = child.id();
        let stderr = child.stderr.take().context("the server's stderr")?;
        let log = Arc::new(ServerLog {
            all: launch.keep_log.then(Mutex::default),
            ..ServerLog::default()
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<String, String>>();
        let thread_log = log.clone();
        // Reads the log until the process ends (so the server never blocks
        // on a full pipe): its address first, then warnings and errors.
        let reader = std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut head = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                thread_log.note(&line);
                if tx.is_none() {
                    continue;
                }
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
            if let Some(tx) = tx.take() {
                let _ = tx.send(Err(head));
            }
        });
        // From here on, an early return kills the process (Drop).
        let mut server = ServerChild {
            child,
            pid,
            addr: String::new(),
            metrics_token,
            log,
            reader: Some(reader),
        };
        server.addr = match tokio::time::timeout(START_TIMEOUT, rx).await {
            Ok(Ok(Ok(a))) => a,
            Ok(Ok(Err(log))) => bail!("serve exited before listening:\n{log}"),
            Ok(Err(_)) => bail!("serve's log reader stopped"),
            Err(_) => bail!("serve did not listen within {START_TIMEOUT:?}"),
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    async fn wait_healthy(&self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let r = http
                .get(format!("http://{}/healthz", self.addr))
                .send()
                .await;
            if r.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the server was not healthy within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The URL of `path` (`/healthz`, `/api/v1/...`) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `GET /metrics` on this server, with its metrics token.
    pub fn metrics_request(&self, http: &reqwest::Client) -> reqwest::RequestBuilder {
        http.get(self.url("/metrics"))
            .bearer_auth(&self.metrics_token)
    }

    /// SIGKILL (std's `Child::kill` on Unix), and reap: a crash.
    pub fn kill(&mut self) -> std::io::Result<()> {
        self.child.kill()?;
        self.child.wait().map(drop)
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Resident set size of the server now, bytes (0 if unreadable).
    pub fn rss_bytes(&self) -> u64 {
        procfs::rss_bytes(Pid::Of(self.pid)).unwrap_or(0)
    }

    /// The RSS once two readings `step` apart differ by less than the
    /// share `still` of the first, or after `timeout`.
    pub async fn settled_rss_bytes(&self, step: Duration, still: f64, timeout: Duration) -> u64 {
        let started = Instant::now();
        let mut last = self.rss_bytes();
        loop {
            tokio::time::sleep(step).await;
            let now = self.rss_bytes();
            let moved = now.abs_diff(last) as f64 / (last.max(1) as f64);
            if moved < still || started.elapsed() > timeout {
                return now;
            }
            last = now;
        }
    }

    /// CPU time the server has used so far (user + system), seconds.
    pub fn cpu_s(&self) -> f64 {
        cpu_s(&format!("/proc/{}/stat", self.pid))
    }

    /// Open descriptors of the server now.
    pub fn fds(&self) -> u64 {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, |d| d.count() as u64)
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
                    if let Some(reader) = self.reader.take() {
                        // The pipe is closed: the reader ends at once.
                        let _ = tokio::task::spawn_blocking(move || reader.join()).await;
                    }
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
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// User + system CPU time of the process whose `stat` file is `path`,
/// seconds (0 if unreadable).
pub fn cpu_s(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces), from field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let field = |n: usize| {
        rest.split_whitespace()
            .nth(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field(14) + field(15)) as f64 / CLOCK_TICKS_PER_S
}
