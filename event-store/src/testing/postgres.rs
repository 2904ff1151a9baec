//! A throwaway PostgreSQL server for tests: `initdb` into a temporary
//! directory, started on a free loopback port with `fsync` on, as the
//! `postgres` OS user when the tests run as root, stopped and deleted at
//! the end. Tests never depend on a server they did not start.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// How long `pg_ctl -w start` may take before the start is given up.
const START_WAIT_SECS: u64 = 60;
/// Ports tried before a start is given up (a free port can be taken
/// between finding it and the server binding it).
const START_ATTEMPTS_MAX: u32 = 3;
/// Connections the test server accepts (several stores per test, each
/// with a pool, a writer and a listener).
const TEST_CONNECTIONS_MAX: u32 = 300;
/// How often the watchdog checks that the test process still lives.
const WATCHDOG_POLL_SECS: u64 = 1;
/// The OS user PostgreSQL refuses to run as root for.
const PG_OS_USER: &str = "postgres";

/// A PostgreSQL server owned by the test process.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres_user: bool,
    /// Stops the server and deletes its directory if this process dies
    /// without dropping it (a panic that aborts, SIGKILL, a shared server).
    watchdog: Mutex<Option<Child>>,
}

/// Why a test server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PgServerError {
    /// No `initdb` on PATH nor under `/usr/lib/postgresql/*/bin`.
    #[error("PostgreSQL binaries not found (install Debian's `postgresql` package)")]
    NotInstalled,
    /// A step failed.
    #[error("{step}: {reason}")]
    Step {
        /// What was being done.
        step: &'static str,
        /// What went wrong (with the server log's tail when there is one).
        reason: String,
    },
}

fn step(step: &'static str) -> impl Fn(std::io::Error) -> PgServerError {
    move |e| PgServerError::Step {
        step,
        reason: e.to_string(),
    }
}

/// The directory holding `initdb` and `pg_ctl`: PATH first, then the
/// newest `/usr/lib/postgresql/*/bin`.
pub fn pg_bin_dir() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                // A directory of symlinks (/usr/local/bin) leads to the
                // real one, which also holds createdb and postgres.
                let real = std::fs::canonicalize(dir.join("initdb")).ok()?;
                return real.parent().map(Path::to_path_buf);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn free_port() -> Result<u16, PgServerError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(step("find a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(step("find a free port"))?
        .port())
}

impl PgServer {
    /// Initialises and starts a new server (about a second).
    pub fn start() -> Result<PgServer, PgServerError> {
        let bin = pg_bin_dir().ok_or(PgServerError::NotInstalled)?;
        let as_postgres_user = rustix::process::geteuid().is_root();
        let dir = tempfile::Builder::new()
            .prefix("ticketlog-pg-")
            .tempdir()
            .map_err(step("create the server directory"))?;
        if as_postgres_user {
            let status = Command::new("chown")
                .arg(format!("{PG_OS_USER}:"))
                .arg(dir.path())
                .status()
                .map_err(step("chown the server directory"))?;
            if !status.success() {
                return Err(PgServerError::Step {
                    step: "chown the server directory",
                    reason: status.to_string(),
                });
            }
        }
        let mut server = PgServer {
            dir,
            bin,
            port: 0,
            as_postgres_user,
            watchdog: Mutex::new(None),
        };
        // The cluster's own files need no sync: it lives as long as this
        // process. The server itself runs with fsync on.
        server.run(
            "initdb",
            "initdb",
            &[
                "-D",
                &server.data().display().to_string(),
                "-U",
                PG_OS_USER,
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )?;
        let mut last = None;
        for _ in 0..START_ATTEMPTS_MAX {
            server.port = free_port()?;
            server.write_conf()?;
            match server.pg_ctl(
                "start the server",
                &[
                    "start",
                    "-w",
                    "-t",
                    &START_WAIT_SECS.to_string(),
                    "-l",
                    &server.log().display().to_string(),
                ],
            ) {
                Ok(()) => {
                    server.start_watchdog()?;
                    return Ok(server);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(PgServerError::NotInstalled))
    }

    /// One server shared by every test of this process (each test takes
    /// its own database); the watchdog stops and deletes it when the
    /// process exits.
    pub fn shared() -> Result<Arc<PgServer>, PgServerError> {
        static SHARED: OnceLock<Mutex<Option<Arc<PgServer>>>> = OnceLock::new();
        let slot = SHARED.get_or_init(|| Mutex::new(None));
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(server) = slot.as_ref() {
            return Ok(server.clone());
        }
        let server = Arc::new(PgServer::start()?);
        *slot = Some(server.clone());
        Ok(server)
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` (the `postgres` superuser, trust auth).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{PG_OS_USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, PgServerError> {
        let out = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                PG_OS_USER,
                name,
            ])
            .output()
            .map_err(step("createdb"))?;
        if !out.status.success() {
            return Err(PgServerError::Step {
                step: "createdb",
                reason: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(self.url(name))
    }

    /// A fresh database with a unique name, returning its URL.
    pub fn fresh_database(&self) -> Result<String, PgServerError> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.create_database(&format!("t{}_{n}", std::process::id()))
    }

    /// Runs `pg_ctl ARGS` against this server's data directory (a test
    /// restarts it with `restart -m immediate`, for example). A `start` or
    /// `restart` logs to the server's log file: `pg_ctl` does not remember
    /// `-l`, and a server writing to our pipes would keep this call waiting
    /// for their end as long as it runs.
    pub fn pg_ctl(&self, what: &'static str, args: &[&str]) -> Result<(), PgServerError> {
        let data = self.data().display().to_string();
        let log = self.log().display().to_string();
        let mut full = vec!["-D", data.as_str()];
        full.extend_from_slice(args);
        let starts = matches!(args.first(), Some(&"start") | Some(&"restart"));
        if starts && !args.contains(&"-l") {
            full.extend(["-l", log.as_str()]);
        }
        self.run(what, "pg_ctl", &full)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn write_conf(&self) -> Result<(), PgServerError> {
        let conf = format!(
            "\n# ticketlog test server\nport = {port}\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{dir}'\nfsync = on\nsynchronous_commit = on\n\
             max_connections = {TEST_CONNECTIONS_MAX}\n",
            port = self.port,
            dir = self.dir.path().display(),
        );
        let path = self.data().join("postgresql.auto.conf");
        std::fs::write(path, conf).map_err(step("write postgresql.auto.conf"))
    }

    /// The command for a PostgreSQL binary, as the `postgres` user when root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_OS_USER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, what: &'static str, program: &str, args: &[&str]) -> Result<(), PgServerError> {
        let out = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(step(what))?;
        if out.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let tail: String = log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
        Err(PgServerError::Step {
            step: what,
            reason: format!(
                "{}{}\n{tail}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }

    /// A shell that waits for this process to end, then stops the server
    /// and deletes its directory.
    fn start_watchdog(&self) -> Result<(), PgServerError> {
        let stop = format!(
            "{runuser}'{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
            runuser = if self.as_postgres_user {
                format!("runuser -u {PG_OS_USER} -- ")
            } else {
                String::new()
            },
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.data().display(),
            dir = self.dir.path().display(),
        );
        let script = format!(
            "trap '' INT; while kill -0 {pid} 2>/dev/null; do sleep {WATCHDOG_POLL_SECS}; done; {stop}",
            pid = std::process::id()
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(step("start the watchdog"))?;
        *self.watchdog.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        Ok(())
    }

    /// Path of the server's directory (data, log, socket).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self
            .watchdog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        if let Err(e) = self.pg_ctl("stop the server", &["stop", "-m", "fast", "-w"]) {
            eprintln!("test PostgreSQL did not stop cleanly: {e}");
        }
    }
}

/// The records stored in the log of the database at `url`, in position
/// order, as bytes (for tests that compare a log with another store's).
pub async fn stored_records(url: &str) -> Vec<crate::codec::RawRecord> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let rows = client
        .query("SELECT position, record FROM events ORDER BY position", &[])
        .await
        .expect("events");
    rows.iter()
        .map(|r| crate::codec::RawRecord {
            position: r.get::<_, i64>(0) as u64,
            bytes: r.get(1),
        })
        .collect()
}
