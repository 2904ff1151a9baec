//! What only the PostgreSQL store must show: several writers on one
//! database keep positions gapless and in commit order, readers tailing
//! the log never skip a late commit, a writer that dies or hangs while
//! holding the log head releases it, and a COMMIT whose connection drops
//! is resolved by looking its command ids up (never a wrong answer).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use event_store::pg_store::session::{connect, session_config};
use event_store::{AppendOutcome, EventStore, ExpectedVersion, PgOptions, PgStore};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

const WRITERS_PER_STORE: usize = 4;
const APPENDS_PER_WRITER: usize = 40;
/// Longest a test waits for something that should happen at once.
const WAIT: Duration = Duration::from_secs(20);

/// Appends to a new stream of its own, recording each acknowledgement.
async fn write(store: Arc<PgStore>, n: usize) -> Vec<(Uuid, AppendOutcome)> {
    let stream = Uuid::now_v7();
    let mut acks = Vec::new();
    for i in 0..n {
        let payload = if i == 0 { created(1) } else { comment("x") };
        let req = request(
            stream,
            ExpectedVersion::Exact(2 * i as u64),
            vec![payload, comment("y")],
        );
        let command = req.command_id;
        acks.push((command, store.append(req).await.expect("append")));
    }
    acks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_database_never_gap_or_duplicate_and_keep_every_ack() {
    let fx = Backend::Postgres.fresh().await;
    let url = fx.url.clone().expect("url");
    let a = PgStore::open(&url, PgOptions::default()).await.expect("a");
    let b = PgStore::open(&url, PgOptions::default()).await.expect("b");
    // A subscriber on b sees a's events too (through NOTIFY), in order.
    let mut sub = b.subscribe(1);
    let mut tasks = Vec::new();
    for store in [&a, &b] {
        for _ in 0..WRITERS_PER_STORE {
            tasks.push(tokio::spawn(write(store.clone(), APPENDS_PER_WRITER)));
        }
    }
    let mut acks = HashMap::new();
    for t in tasks {
        acks.extend(t.await.expect("writer"));
    }
    let all = read_everything(a.as_ref()).await;
    assert_gapless(&all);
    let total = 2 * WRITERS_PER_STORE * APPENDS_PER_WRITER * 2;
    assert_eq!(all.len(), total);
    for (command, ack) in &acks {
        for position in ack.first_position..=ack.position {
            let rec = &all[position as usize - 1];
            assert_eq!(rec.command_id, *command, "acknowledged at {position}");
        }
    }
    for expected in 1..=total as u64 {
        let e = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("subscriber not stuck")
            .expect("item")
            .expect("event");
        assert_eq!(e.position, expected);
    }
    assert!(b.verify(&|_, _| {}).await.expect("verify").ok());
    a.close().await.expect("close a");
    b.close().await.expect("close b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_tailing_the_log_never_skips_a_late_commit() {
    let fx = Backend::Postgres.fresh().await;
    let url = fx.url.clone().expect("url");
    let writers: Vec<Arc<PgStore>> = futures::future::join_all((0..3).map(|_| async {
        PgStore::open(&url, PgOptions::default())
            .await
            .expect("open")
    }))
    .await;
    let reader = fx.store.clone();
    let tail = tokio::spawn(async move {
        // Reads `position > seen` as fast as it can: every page must
        // start right after what it saw (read_all refuses gaps).
        let mut seen = 0u64;
        let target = (3 * APPENDS_PER_WRITER * 2) as u64;
        while seen < target {
            let page = reader.read_all(seen + 1, 100).await.expect("read");
            for e in page {
                assert_eq!(e.position, seen + 1, "skipped an event");
                seen = e.position;
            }
            tokio::task::yield_now().await;
        }
        seen
    });
    let tasks: Vec<_> = writers
        .iter()
        .map(|w| tokio::spawn(write(w.clone(), APPENDS_PER_WRITER)))
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
    let seen = tokio::time::timeout(WAIT, tail)
        .await
        .expect("tail done")
        .expect("tail");
    assert_eq!(seen, fx.store.head().await.expect("head"));
}

/// A session holding the log head, as a writer in mid-transaction does.
async fn hold_the_head(url: &str) -> (tokio_postgres::Client, i32) {
    let holder = connect(&session_config(url).expect("config"))
        .await
        .expect("connect");
    holder.batch_execute("BEGIN").await.expect("begin");
    holder
        .query_one("SELECT position FROM log_head FOR UPDATE", &[])
        .await
        .expect("lock the head");
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);
    (holder, pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_while_holding_the_head_releases_it() {
    let fx = Backend::Postgres.fresh().await;
    let url = fx.url.clone().expect("url");
    let ticket = create_ticket(fx.store.as_ref(), 1).await;
    let (holder, pid) = hold_the_head(&url).await;
    let store = fx.store.clone();
    let blocked = tokio::spawn(async move {
        store
            .append(request(
                ticket,
                ExpectedVersion::Exact(1),
                vec![comment("after")],
            ))
            .await
    });
    // The append waits on the head while the holder lives: wait until the
    // database shows another session blocked on the holder's lock.
    let killer = connect(&session_config(&url).expect("config"))
        .await
        .expect("connect");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let waiting: i64 = killer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                &[&pid],
            )
            .await
            .expect("blocked sessions")
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(!blocked.is_finished(), "the append went past a held head");
        assert!(
            std::time::Instant::now() < deadline,
            "the append never waited on the head"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!blocked.is_finished(), "the append went past a held head");
    killer
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .expect("terminate");
    let outcome = tokio::time::timeout(WAIT, blocked)
        .await
        .expect("the head was released")
        .expect("task")
        .expect("append");
    assert_eq!((outcome.position, outcome.version), (2, 2));
    assert!(
        holder.batch_execute("SELECT 1").await.is_err(),
        "holder is gone"
    );
    assert!(fx.store.verify(&|_, _| {}).await.expect("verify").ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_writer_holding_the_head_is_ended_by_the_idle_timeout() {
    let fx = Backend::Postgres.fresh().await;
    let url = fx.url.clone().expect("url");
    // Holds the head and stays idle in its transaction, like a stopped
    // process: the session settings every store session carries end it.
    let (holder, _pid) = hold_the_head(&url).await;
    let started = std::time::Instant::now();
    let ticket = Uuid::now_v7();
    let outcome = tokio::time::timeout(
        WAIT,
        fx.store
            .append(request(ticket, ExpectedVersion::NoStream, vec![created(1)])),
    )
    .await
    .expect("the head was released")
    .expect("append");
    assert_eq!(outcome.position, 1);
    let waited = started.elapsed();
    let timeout = Duration::from_millis(event_store::limits::PG_IDLE_IN_TRANSACTION_TIMEOUT_MILLIS);
    assert!(
        waited + Duration::from_millis(500) >= timeout,
        "waited {waited:?}"
    );
    assert!(
        holder.batch_execute("SELECT 1").await.is_err(),
        "holder was ended"
    );
}

/// A rough figure, not a gate: `cargo test -p event-store --test postgres
/// -- --ignored --nocapture append_throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn append_throughput() {
    const TASKS: usize = 64;
    const APPENDS: usize = 50;
    let fx = Backend::Postgres.fresh().await;
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = fx.store.clone();
            tokio::spawn(async move {
                let stream = Uuid::now_v7();
                for i in 0..APPENDS {
                    let payload = if i == 0 { created(1) } else { comment("x") };
                    let req = request(stream, ExpectedVersion::Exact(i as u64), vec![payload]);
                    store.append(req).await.expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} durable appends from {TASKS} tasks in {secs:.2} s: {:.0}/s",
        TASKS * APPENDS,
        (TASKS * APPENDS) as f64 / secs
    );
}

/// What the proxy does with the writer's next COMMIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Forwards it, then drops the connection before the answer comes
    /// back: the transaction commits, the writer never hears it.
    AfterForwarding = 1,
    /// Drops the connection instead of forwarding it: the transaction
    /// rolls back.
    InsteadOfForwarding = 2,
}

/// A TCP proxy in front of the test PostgreSQL that cuts the writer's
/// session at one COMMIT when armed (the writer's session is the one that
/// prepares `INSERT INTO events`; the side trees commit too).
struct CommitCutter {
    port: u16,
    /// 0, or the `Cut` to do at the next COMMIT of a writer's session.
    armed: Arc<AtomicU8>,
    /// COMMITs cut so far.
    cuts: Arc<AtomicUsize>,
    /// While true, new sessions are closed at once (the database is
    /// unreachable).
    refusing: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// Bytes a relay reads at once.
const RELAY_BUFFER_BYTES: usize = 64 * 1024;

impl CommitCutter {
    async fn start(upstream_port: u16) -> CommitCutter {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let armed = Arc::new(AtomicU8::new(0));
        let cuts = Arc::new(AtomicUsize::new(0));
        let refusing = Arc::new(AtomicBool::new(false));
        let (a, c, r) = (armed.clone(), cuts.clone(), refusing.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !r.load(Ordering::SeqCst) {
                    tokio::spawn(relay(client, upstream_port, a.clone(), c.clone()));
                }
            }
        });
        CommitCutter {
            port,
            armed,
            cuts,
            refusing,
            task,
        }
    }

    /// Closes new sessions at once (`true`) or relays them again.
    fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }

    /// `url` with the proxy's port instead of the server's.
    fn url(&self, url: &str, server_port: u16) -> String {
        url.replace(&format!(":{server_port}/"), &format!(":{}/", self.port))
    }

    fn arm(&self, cut: Cut) {
        self.armed.store(cut as u8, Ordering::SeqCst);
    }

    fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for CommitCutter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Relays one session both ways, cutting it at a COMMIT when armed.
async fn relay(
    client: TcpStream,
    upstream_port: u16,
    armed: Arc<AtomicU8>,
    cuts: Arc<AtomicUsize>,
) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let cut = tokio::sync::Notify::new();
    let upstream = async {
        let mut writer = false;
        let mut buf = vec![0u8; RELAY_BUFFER_BYTES];
        loop {
            let n = match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            writer |= contains(chunk, b"INSERT INTO events");
            if writer && contains(chunk, b"COMMIT") {
                let how = armed.swap(0, Ordering::SeqCst);
                if how != 0 {
                    // The client side closes first: nothing the server
                    // answers from here on reaches the writer.
                    cut.notify_one();
                    cuts.fetch_add(1, Ordering::SeqCst);
                    if how == Cut::AfterForwarding as u8 {
                        let _ = to_server.write_all(chunk).await;
                    }
                    break;
                }
            }
            if to_server.write_all(chunk).await.is_err() {
                break;
            }
        }
        // The server reads the end of the session after what was sent:
        // it commits a forwarded COMMIT, and rolls an open transaction back.
        let _ = to_server.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; RELAY_BUFFER_BYTES];
        loop {
            tokio::select! {
                biased;
                _ = cut.notified() => break,
                read = from_server.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => if to_client.write_all(&buf[..n]).await.is_err() { break },
                },
            }
        }
        let _ = to_client.shutdown().await;
        // Whatever the server still says goes nowhere; its close ends this.
        while matches!(from_server.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    futures::join!(upstream, downstream);
}

/// Appends concurrently through a proxy that cuts the writer's first
/// COMMIT as `cut` says; every answer must be right: an outcome is in the
/// log at its positions under its command id, an error is absent from it.
/// A retry of every command with its id then gives the first outcome
/// (appending nothing) or, for the refused ones, appends them once.
async fn commit_cut(cut: Cut) {
    const APPENDS: usize = 8;
    let fx = Backend::Postgres.fresh().await;
    let server = fx.server.clone().expect("server");
    let cutter = CommitCutter::start(server.port()).await;
    let url = cutter.url(fx.url.as_deref().expect("url"), server.port());
    let store = PgStore::open(&url, PgOptions::default())
        .await
        .expect("open through the proxy");
    let tickets: Vec<Uuid> =
        futures::future::join_all((1..=APPENDS as u64).map(|n| create_ticket(store.as_ref(), n)))
            .await;
    let before = store.head().await.expect("head");
    cutter.arm(cut);
    let requests: Vec<_> = tickets
        .iter()
        .map(|t| {
            request(
                *t,
                ExpectedVersion::Exact(1),
                vec![comment("cut"), comment("cut 2")],
            )
        })
        .collect();
    let answers = futures::future::join_all(requests.iter().map(|r| store.append(r.clone()))).await;
    assert_eq!(cutter.cuts(), 1, "the proxy cut a COMMIT");

    let log = read_everything(fx.store.as_ref()).await;
    assert_gapless(&log);
    let mut refused = 0;
    for (req, answer) in requests.iter().zip(&answers) {
        let in_log: Vec<u64> = log
            .iter()
            .filter(|e| e.command_id == req.command_id)
            .map(|e| e.position)
            .collect();
        match answer {
            Ok(o) => {
                assert!(!o.duplicate);
                assert_eq!(o.version, 3, "{o:?}");
                assert_eq!(in_log, [o.first_position, o.position], "answered {o:?}");
            }
            Err(e) => {
                assert!(
                    matches!(e, event_store::StoreError::Unavailable(_)),
                    "a cut whose outcome was looked up is no outcome_unknown: {e}"
                );
                assert!(
                    in_log.is_empty(),
                    "refused ({e}) but in the log at {in_log:?}"
                );
                refused += 1;
            }
        }
    }
    match cut {
        Cut::AfterForwarding => assert_eq!(refused, 0, "a committed batch was refused"),
        Cut::InsteadOfForwarding => assert!(refused > 0, "the cut batch was answered as appended"),
    }
    assert_eq!(
        store.head().await.expect("head"),
        before + 2 * (APPENDS - refused) as u64
    );

    // Retries with the same command ids: the first answer, or (refused)
    // appended now, once.
    let head = store.head().await.expect("head");
    let mut next = head;
    for (req, answer) in requests.iter().zip(&answers) {
        let again = store.append(req.clone()).await.expect("retry");
        match answer {
            Ok(o) => assert_eq!(
                again,
                AppendOutcome {
                    duplicate: true,
                    ..*o
                }
            ),
            Err(_) => {
                assert!(!again.duplicate);
                assert_eq!((again.first_position, again.position), (next + 1, next + 2));
                next += 2;
            }
        }
        let twice = store.append(req.clone()).await.expect("second retry");
        assert_eq!(twice.position, again.position);
        assert!(twice.duplicate);
    }
    let log = read_everything(fx.store.as_ref()).await;
    assert_gapless(&log);
    assert_eq!(log.len() as u64, before + 2 * APPENDS as u64);
    assert!(store.verify(&|_, _| {}).await.expect("verify").ok());
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_was_lost_is_looked_up_and_answered_as_appended() {
    commit_cut(Cut::AfterForwarding).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_lost_before_the_database_is_answered_as_not_appended() {
    commit_cut(Cut::InsteadOfForwarding).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_commit_that_cannot_be_looked_up_is_outcome_unknown_and_a_retry_is_safe() {
    let fx = Backend::Postgres.fresh().await;
    let server = fx.server.clone().expect("server");
    let cutter = CommitCutter::start(server.port()).await;
    let url = cutter.url(fx.url.as_deref().expect("url"), server.port());
    let store = PgStore::open(&url, PgOptions::default())
        .await
        .expect("open through the proxy");
    let ticket = create_ticket(store.as_ref(), 1).await;
    let req = request(ticket, ExpectedVersion::Exact(1), vec![comment("unknown")]);
    // The COMMIT reaches the database, and then the database cannot be
    // reached until the writer has given up looking the command up.
    cutter.arm(Cut::AfterForwarding);
    cutter.refuse(true);
    let started = std::time::Instant::now();
    let answer = store.append(req.clone()).await;
    assert_eq!(cutter.cuts(), 1, "the proxy cut a COMMIT");
    assert!(
        matches!(answer, Err(event_store::StoreError::OutcomeUnknown(_))),
        "{answer:?}"
    );
    let lookup_wait = Duration::from_millis(event_store::limits::PG_OUTCOME_LOOKUP_WAIT_MILLIS);
    assert!(
        started.elapsed() >= lookup_wait,
        "gave up after {:?}",
        started.elapsed()
    );
    cutter.refuse(false);
    // It was appended; the retry with the same id says so, once.
    let again = store.append(req.clone()).await.expect("retry");
    assert!(again.duplicate, "{again:?}");
    assert_eq!((again.position, again.version), (2, 2));
    let log = read_everything(fx.store.as_ref()).await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].command_id, req.command_id);
    store.close().await.expect("close");
}
