//! Crash loop of the whole server under HTTP load (issue 8): `ticketlog
//! serve` runs as a child process; concurrent clients create tickets, post
//! comments and assign tickets (a two-event command), recording every 2xx;
//! the server is killed with SIGKILL at a random moment and restarted on
//! the same data directory. After every crash:
//! - `ticketlog verify` passes on the killed server's data;
//! - every acknowledged command is in the log at its answered position
//!   (stream and version), and positions are gapless from 1 to the head;
//! - no partial event: every first assignment is followed by its
//!   `open → assigned` status change in the same append;
//! - a retry with an acknowledged `Idempotency-Key` gets the first answer
//!   and appends nothing;
//! - the restarted server's ticket list agrees with the log.
//!
//! At the end the read model of the live data equals a fresh
//! `ticketlog rebuild` of a copy: the same statistics and the same tickets.
//!
//! The loop runs on both stores (issue 16): on PostgreSQL the server runs
//! with `--database-url` on a PostgreSQL of the test's own, which is also
//! restarted with `pg_ctl restart -m immediate` under the load every
//! [`PG_RESTART_EVERY`] cycles: commands answered 503 meanwhile are
//! retried with their `Idempotency-Key` until answered, and the server must
//! recover by itself before it is killed.
//!
//! Cycles: `TICKETLOG_CRASH_CYCLES` (default 20 on sled, 8 on PostgreSQL);
//! seed of the load and kill moments: `TICKETLOG_CRASH_SEED` (printed on
//! start).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_store::testing::postgres::PgServer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use support::{copy_dir, get_ok, healthy_head, login, serve, stop, ticketlog_ok, ServerChild};
use uuid::Uuid;

const CYCLES_ENV: &str = "TICKETLOG_CRASH_CYCLES";
const SEED_ENV: &str = "TICKETLOG_CRASH_SEED";
const CYCLES_DEFAULT: usize = 20;
/// Fewer on PostgreSQL: a cycle costs more there (a start opens sessions,
/// every restart of the database a recovery).
const PG_CYCLES_DEFAULT: usize = 8;
/// PostgreSQL restarts under the load in cycles 1, 1 + this, ...
const PG_RESTART_EVERY: usize = 3;
/// Acknowledgements the server must give after a database restart before
/// it is killed: it recovered by itself.
const ACKS_AFTER_PG_RESTART: usize = 10;
/// Pause before retrying a command answered 503 (the database is away).
const RETRY_PAUSE: Duration = Duration::from_millis(20);
const CLIENTS: usize = 4;
/// Most acknowledgements waited for before a kill (drawn from 1..this).
const ACKS_BEFORE_KILL_MAX: usize = 150;
/// Most extra delay before the kill, after the drawn number of acks.
const KILL_JITTER_MS_MAX: u64 = 30;
const LOAD_TIMEOUT: Duration = Duration::from_secs(20);
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(20);
const PAGE_LIMIT: usize = 500;
/// The statuses an assigned ticket walks through, one command each.
const FORWARD: [&str; 3] = ["in_progress", "resolved", "closed"];
const TENANT: &str = "crash";
const ADMIN: &str = "root";
const PASSWORD: &str = "crash-loop-password";

/// One acknowledged command.
#[derive(Debug, Clone)]
struct Ack {
    key: Uuid,
    path: String,
    body: Value,
    stream: String,
    version: u64,
    position: u64,
}

/// The whole log as the admin sees it, once the read model has folded it
/// up to `head`.
async fn all_events(
    client: &reqwest::Client,
    server: &ServerChild,
    token: &str,
    head: u64,
) -> Vec<Value> {
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    loop {
        let mut events: Vec<Value> = vec![];
        let mut after = 0u64;
        loop {
            let path = format!("/api/v1/events?after={after}&limit={PAGE_LIMIT}");
            let page = get_ok(client, server, token, &path).await;
            events.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next"].as_u64() {
                Some(n) if n > after => after = n,
                _ => break,
            }
        }
        let last = events.last().and_then(|e| e["position"].as_u64());
        if last.unwrap_or(0) >= head {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "events stop at {last:?}, head is {head}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn all_tickets(client: &reqwest::Client, server: &ServerChild, token: &str) -> Vec<Value> {
    let mut items = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/tickets?limit={PAGE_LIMIT}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = get_ok(client, server, token, &path).await;
        items.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return items,
        }
    }
}

/// Where the loop's server keeps its log, and how it is reached.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Sled,
    Postgres,
}

/// One store: a data directory, and the database when on PostgreSQL.
struct Location {
    data: PathBuf,
    url: Option<String>,
}

impl Location {
    /// `args` plus the store's flags (`--data` comes from the harness).
    fn with<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = args.to_vec();
        if let Some(url) = &self.url {
            all.extend(["--database-url", url.as_str()]);
        }
        all
    }

    fn ticketlog_ok(&self, args: &[&str]) -> String {
        ticketlog_ok(&self.with(args), &self.data)
    }

    async fn serve(&self) -> ServerChild {
        serve(&self.data, &self.with(&[])).await
    }
}

/// Copies the store of `from` (stopped) to a new one under `dir`.
async fn copy_store(from: &Location, pg: Option<&PgServer>, dir: &Path) -> Location {
    let data = dir.join("rebuilt");
    let Some((url, pg)) = from.url.as_deref().zip(pg) else {
        copy_dir(&from.data, &data);
        return Location { data, url: None };
    };
    std::fs::create_dir_all(&data).expect("data dir");
    let source = url.rsplit('/').next().expect("database name");
    let (admin, connection) = tokio_postgres::connect(&pg.url("postgres"), tokio_postgres::NoTls)
        .await
        .expect("connect");
    let connection = tokio::spawn(connection);
    admin
        .batch_execute(&format!("CREATE DATABASE rebuilt TEMPLATE {source}"))
        .await
        .expect("copy the database");
    drop(admin);
    connection.await.ok();
    Location {
        data,
        url: Some(pg.url("rebuilt")),
    }
}

/// Commands answered 503 and retried, for the summary (only the
/// PostgreSQL loop retries: on sled a 503 fails the test).
static RETRIED_503: AtomicU64 = AtomicU64::new(0);

/// How a command ended.
enum Answer {
    Acked(Ack),
    /// 503 `store_unavailable` or `outcome_unknown`: retry with the key.
    Unavailable,
    /// The server is gone.
    Gone,
}

/// Posts one command; `Some(ack)` on a 2xx, `None` when the server is
/// gone. A 503 is retried with the same key when `retry_503` (the
/// database is away), and fails the test otherwise.
async fn command(
    client: &reqwest::Client,
    addr: &str,
    token: &str,
    key: Uuid,
    path: String,
    body: Value,
    retry_503: bool,
) -> Option<Ack> {
    loop {
        match command_once(client, addr, token, key, &path, &body).await {
            Answer::Acked(ack) => return Some(ack),
            Answer::Gone => return None,
            Answer::Unavailable if retry_503 => {
                RETRIED_503.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(RETRY_PAUSE).await
            }
            Answer::Unavailable => panic!("POST {path}: 503 on a store that never went away"),
        }
    }
}

async fn command_once(
    client: &reqwest::Client,
    addr: &str,
    token: &str,
    key: Uuid,
    path: &str,
    body: &Value,
) -> Answer {
    let sent = client
        .post(format!("http://{addr}{path}"))
        .bearer_auth(token)
        .header("Idempotency-Key", key.to_string())
        .json(body)
        .send()
        .await;
    let Ok(r) = sent else { return Answer::Gone };
    let status = r.status();
    let Ok(v) = r.json::<Value>().await else {
        return Answer::Gone;
    };
    if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
        let code = v["error"]["code"].as_str().unwrap_or_default();
        assert!(
            code == "store_unavailable" || code == "outcome_unknown",
            "POST {path}: 503 {v}"
        );
        return Answer::Unavailable;
    }
    assert!(status.is_success(), "POST {path}: {status} {v}");
    let (path, body) = (path.to_string(), body.clone());
    Answer::Acked(Ack {
        key,
        path,
        body,
        stream: v["id"].as_str().expect("id").to_string(),
        version: v["version"].as_u64().expect("version"),
        position: v["position"].as_u64().expect("position"),
    })
}

/// One client: creates tickets, comments on them, assigns fresh ones to the
/// admin, until the server stops answering.
async fn client_loop(
    addr: String,
    token: String,
    admin_id: String,
    mut rng: StdRng,
    acks: Arc<Mutex<Vec<Ack>>>,
    retry_503: bool,
) {
    let client = reqwest::Client::new();
    let mut open: Vec<String> = vec![];
    let mut known: Vec<String> = vec![];
    // Assigned tickets and the status each moves to next.
    let mut moving: Vec<(String, usize)> = vec![];
    let started = Instant::now();
    while started.elapsed() < LOAD_TIMEOUT {
        let key = Uuid::new_v4();
        let roll = rng.random_range(0..10);
        let (path, body) = if known.is_empty() || roll < 3 {
            (
                "/api/v1/tickets".to_string(),
                json!({"title": format!("crash {key}"), "description": "load",
                       "priority": "medium", "kind": "incident"}),
            )
        } else if roll < 5 && !open.is_empty() {
            let t = open.swap_remove(rng.random_range(0..open.len()));
            (
                format!("/api/v1/tickets/{t}/assign"),
                json!({"assignee_id": admin_id}),
            )
        } else if roll < 7 && !moving.is_empty() {
            let i = rng.random_range(0..moving.len());
            let (t, step) = moving[i].clone();
            if step + 1 == FORWARD.len() {
                moving.swap_remove(i);
            } else {
                moving[i].1 += 1;
            }
            (
                format!("/api/v1/tickets/{t}/status"),
                json!({"status": FORWARD[step]}),
            )
        } else {
            let t = &known[rng.random_range(0..known.len())];
            (
                format!("/api/v1/tickets/{t}/comments"),
                json!({"body": format!("comment {key}")}),
            )
        };
        let Some(ack) = command(&client, &addr, &token, key, path, body, retry_503).await else {
            return;
        };
        if ack.path == "/api/v1/tickets" {
            known.push(ack.stream.clone());
            open.push(ack.stream.clone());
        } else if ack.path.ends_with("/assign") {
            moving.push((ack.stream.clone(), 0));
        }
        acks.lock().expect("acks").push(ack);
    }
    panic!("the load outlived {LOAD_TIMEOUT:?}: the server was never killed");
}

/// Waits until `acks` holds `wanted` acknowledgements.
async fn wait_for_acks(acks: &Mutex<Vec<Ack>>, wanted: usize, what: &str) {
    let deadline = Instant::now() + LOAD_TIMEOUT;
    while acks.lock().expect("acks").len() < wanted {
        assert!(Instant::now() < deadline, "no progress under load ({what})");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs the load against `server` and kills it at a random moment; when
/// `pg_restart` is given, that PostgreSQL is first restarted under the
/// load and the server must acknowledge commands again by itself.
async fn load_and_kill(
    server: ServerChild,
    token: &str,
    admin_id: &str,
    rng: &mut StdRng,
    pg_restart: Option<&Arc<PgServer>>,
) -> Vec<Ack> {
    let acks = Arc::new(Mutex::new(Vec::new()));
    let retry_503 = pg_restart.is_some();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            tokio::spawn(client_loop(
                server.addr.clone(),
                token.to_string(),
                admin_id.to_string(),
                StdRng::seed_from_u64(rng.random()),
                acks.clone(),
                retry_503,
            ))
        })
        .collect();
    let wanted = rng.random_range(1..ACKS_BEFORE_KILL_MAX);
    wait_for_acks(&acks, wanted, "before the kill").await;
    if let Some(pg) = pg_restart {
        let pg = pg.clone();
        tokio::task::spawn_blocking(move || {
            pg.pg_ctl("restart PostgreSQL", &["restart", "-m", "immediate", "-w"])
        })
        .await
        .expect("pg_ctl task")
        .expect("pg_ctl restart -m immediate");
        let restarted = acks.lock().expect("acks").len();
        wait_for_acks(
            &acks,
            restarted + ACKS_AFTER_PG_RESTART,
            "after the database restart",
        )
        .await;
    }
    // The one deliberate sleep: a random kill moment.
    tokio::time::sleep(Duration::from_millis(
        rng.random_range(0..=KILL_JITTER_MS_MAX),
    ))
    .await;
    let mut server = server;
    tokio::task::spawn_blocking(move || server.kill().expect("SIGKILL"))
        .await
        .expect("kill");
    for t in tasks {
        t.await.expect("client task");
    }
    let acks = acks.lock().expect("acks").clone();
    acks
}

/// The checks after a restart; returns the log head.
async fn check_restarted(
    client: &reqwest::Client,
    server: &ServerChild,
    token: &str,
    acked: &[Ack],
    cycle: usize,
) -> u64 {
    let head = healthy_head(client, server).await;
    let events = all_events(client, server, token, head).await;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e["position"].as_u64(),
            Some(i as u64 + 1),
            "cycle {cycle}: positions are not gapless"
        );
    }
    assert_eq!(events.len() as u64, head, "cycle {cycle}: head");
    for a in acked {
        let e = events
            .get(a.position as usize - 1)
            .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged {a:?} lost (head {head})"));
        assert_eq!(
            e["stream_id"].as_str(),
            Some(a.stream.as_str()),
            "cycle {cycle}: {a:?}"
        );
        assert_eq!(
            e["version"].as_u64(),
            Some(a.version),
            "cycle {cycle}: {a:?}"
        );
    }
    // Each stream's versions are contiguous from 1 in log order.
    let mut stream_heads: HashMap<&str, u64> = HashMap::new();
    for e in &events {
        let stream = e["stream_id"].as_str().expect("stream_id");
        let last = stream_heads.entry(stream).or_insert(0);
        assert_eq!(
            e["version"].as_u64(),
            Some(*last + 1),
            "cycle {cycle}: stream {stream} not contiguous at {e}"
        );
        *last += 1;
    }
    // No partial two-event command: a first assignment of an open ticket is
    // followed by its status change, at the next position of the stream.
    for (i, e) in events.iter().enumerate() {
        if e["kind"] == "TicketAssigned" && e["previous"].is_null() {
            let next = events.get(i + 1);
            let whole = next.is_some_and(|n| {
                n["kind"] == "TicketStatusChanged"
                    && n["stream_id"] == e["stream_id"]
                    && n["version"].as_u64() == e["version"].as_u64().map(|v| v + 1)
            });
            assert!(
                whole,
                "cycle {cycle}: partial assign at {}: {e} then {next:?}",
                i + 1
            );
        }
    }
    // The read model agrees with the log: the same tickets at the same versions.
    let mut versions: HashMap<String, u64> = HashMap::new();
    for e in &events {
        if let (Some(s), Some(v)) = (e["stream_id"].as_str(), e["version"].as_u64()) {
            if e["kind"] == "TicketCreated" || versions.contains_key(s) {
                versions.insert(s.to_string(), v);
            }
        }
    }
    let tickets = all_tickets(client, server, token).await;
    let listed: HashMap<String, u64> = tickets
        .iter()
        .map(|t| {
            (
                t["id"].as_str().expect("id").to_string(),
                t["version"].as_u64().expect("version"),
            )
        })
        .collect();
    assert_eq!(listed, versions, "cycle {cycle}: ticket list vs log");
    // A retried acknowledged command is answered with its first outcome.
    if let Some(a) = acked.last() {
        let again = command(
            client,
            &server.addr,
            token,
            a.key,
            a.path.clone(),
            a.body.clone(),
            false,
        )
        .await
        .expect("retry answered");
        assert_eq!(
            (again.stream.as_str(), again.version, again.position),
            (a.stream.as_str(), a.version, a.position),
            "cycle {cycle}: idempotent retry"
        );
        assert_eq!(
            healthy_head(client, server).await,
            head,
            "the retry appended"
        );
    }
    head
}

/// Tickets keyed by id, for comparing two servers' answers.
fn by_id(tickets: Vec<Value>) -> BTreeMap<String, Value> {
    tickets
        .into_iter()
        .map(|t| (t["id"].as_str().expect("id").to_string(), t))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commands_survive_server_sigkill_on_sled() {
    crash_loop(Backend::Sled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_commands_survive_server_sigkill_and_database_restarts_on_postgres() {
    crash_loop(Backend::Postgres).await;
}

async fn crash_loop(backend: Backend) {
    let default_cycles = match backend {
        Backend::Sled => CYCLES_DEFAULT,
        Backend::Postgres => PG_CYCLES_DEFAULT,
    };
    let cycles: usize = std::env::var(CYCLES_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cycles);
    let seed: u64 = std::env::var(SEED_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("server crash loop on {backend:?}: {cycles} cycles, {SEED_ENV}={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("dir");
    // A PostgreSQL of this test's own: it restarts it.
    let pg = (backend == Backend::Postgres)
        .then(|| Arc::new(PgServer::start().expect("start a test PostgreSQL")));
    let live = Location {
        data: dir.path().join("data"),
        url: pg
            .as_ref()
            .map(|pg| pg.fresh_database().expect("create a database")),
    };
    live.ticketlog_ok(&[
        "user",
        "add",
        "--tenant",
        TENANT,
        "--name",
        ADMIN,
        "--role",
        "admin",
        "--password",
        PASSWORD,
    ]);
    let client = reqwest::Client::new();
    let started = Instant::now();

    // The token of the first run must stay valid across restarts: the
    // generated signing secret is durable in the data directory (in the
    // database on PostgreSQL).
    let server = live.serve().await;
    healthy_head(&client, &server).await;
    let (token, admin_id) = login(&client, &server, TENANT, ADMIN, PASSWORD).await;
    let mut acked: Vec<Ack> = vec![];
    let mut server = server;
    let mut pg_restarts = 0;
    for cycle in 0..cycles {
        let pg_restart = pg.as_ref().filter(|_| cycle % PG_RESTART_EVERY == 1);
        pg_restarts += usize::from(pg_restart.is_some());
        let acks = load_and_kill(server, &token, &admin_id, &mut rng, pg_restart).await;
        assert!(!acks.is_empty(), "cycle {cycle}: nothing acknowledged");
        acked.extend(acks);
        let verified = live.ticketlog_ok(&["verify"]);
        assert!(verified.starts_with("OK"), "cycle {cycle}: {verified}");
        server = live.serve().await;
        check_restarted(&client, &server, &token, &acked, cycle).await;
    }
    assert!(
        pg.is_none() || pg_restarts > 0,
        "PostgreSQL was never restarted: run more than one cycle"
    );

    // Projections equal a fresh rebuild: stop cleanly, rebuild a copy,
    // compare statistics offline and the ticket lists of both served.
    let live_tickets = by_id(all_tickets(&client, &server, &token).await);
    stop(server).await;
    let rebuilt = copy_store(&live, pg.as_deref(), dir.path()).await;
    rebuilt.ticketlog_ok(&["rebuild"]);
    // One window end for both, and `as_of` (the time of asking) aside.
    let to = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let stats = |store: &Location| {
        let out =
            store.ticketlog_ok(&["stats", "--tenant", TENANT, "--format", "json", "--to", &to]);
        let mut v = serde_json::from_str::<Value>(&out).expect("stats json");
        v.as_object_mut().expect("object").remove("as_of");
        v
    };
    let (live_stats, rebuilt_stats) = (stats(&live), stats(&rebuilt));
    assert_eq!(
        live_stats, rebuilt_stats,
        "statistics differ from a rebuild"
    );
    assert_eq!(
        live_stats["total"]["count"].as_u64(),
        Some(live_tickets.len() as u64)
    );
    let server = rebuilt.serve().await;
    healthy_head(&client, &server).await;
    let rebuilt_tickets = by_id(all_tickets(&client, &server, &token).await);
    stop(server).await;
    assert_eq!(
        live_tickets, rebuilt_tickets,
        "tickets differ from a rebuild"
    );
    let retried = match backend {
        Backend::Sled => String::new(),
        Backend::Postgres => format!(
            ", {} database restarts, {} retries after a 503",
            pg_restarts,
            RETRIED_503.load(Ordering::Relaxed)
        ),
    };
    eprintln!(
        "server crash loop on {backend:?}: {cycles} cycles{retried}, {} acknowledged commands, \
         {} tickets, {:.1} s",
        acked.len(),
        live_tickets.len(),
        started.elapsed().as_secs_f64()
    );
}
