//! Crash safety: a child process appends under load and prints every
//! acknowledged position; the parent kills it with SIGKILL at random moments.
//! After each restart every acknowledged event is present, positions are
//! gapless, `verify` passes, the stream index agrees with the log and a
//! retried command is answered with its first outcome. The log grows past
//! the index lag, so kills also land while index chunks are written.
//!
//! The child is this test binary re-invoked on the `crash_child` test with
//! `CRASH_CHILD_DIR` set.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use event_store::{EventStore, ExpectedVersion, SledOptions, SledStore};
use rand::Rng;
use uuid::Uuid;

const CHILD_DIR_ENV: &str = "CRASH_CHILD_DIR";
const CYCLES: usize = 24;
const CHILD_WRITERS: usize = 16;
/// A child left alone stops by itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

/// The child's body; a no-op in a normal test run.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let store = SledStore::open(&dir, SledOptions::default()).expect("child opens the store");
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let mut tasks = Vec::new();
        for w in 0..CHILD_WRITERS {
            let store = store.clone();
            let out = out.clone();
            tasks.push(tokio::spawn(async move {
                let stream = Uuid::now_v7();
                let started = Instant::now();
                let mut version = 0;
                while started.elapsed() < CHILD_LIFETIME {
                    let payload = if version == 0 {
                        created(w as u64)
                    } else {
                        comment("under load")
                    };
                    // Multi-event appends now and then, to crash inside larger batches too.
                    let payloads = if version % 5 == 3 {
                        vec![payload, comment("second")]
                    } else {
                        vec![payload]
                    };
                    let req = request(stream, ExpectedVersion::Exact(version), payloads);
                    let command = req.command_id;
                    let outcome = store.append(req).await.expect("append");
                    version = outcome.version;
                    let mut out = out.lock().expect("stdout");
                    writeln!(
                        out,
                        "ACK {} {} {}",
                        outcome.first_position, outcome.position, command
                    )
                    .expect("print");
                    out.flush().expect("flush");
                }
            }));
        }
        for t in tasks {
            t.await.expect("writer");
        }
    });
}

#[derive(Debug, Clone, Copy)]
struct Ack {
    first: u64,
    last: u64,
    command: Uuid,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut parts = line.strip_prefix("ACK ")?.split(' ');
    Some(Ack {
        first: parts.next()?.parse().ok()?,
        last: parts.next()?.parse().ok()?,
        command: parts.next()?.parse().ok()?,
    })
}

/// Runs a child until it has acknowledged something, then kills it at a random moment.
fn run_and_kill(dir: &std::path::Path, rng: &mut impl Rng) -> Vec<Ack> {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let acks = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let acks = acks.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(ack) = parse_ack(&line) {
                    acks.lock().expect("acks").push(ack);
                }
            }
        })
    };
    let wanted = rng.random_range(1..800);
    let deadline = Instant::now() + Duration::from_secs(20);
    while acks.lock().expect("acks").len() < wanted && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_micros(rng.random_range(0..3_000)));
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    reader.join().expect("reader");
    let acks = acks.lock().expect("acks").clone();
    assert!(
        !acks.is_empty(),
        "the child acknowledged nothing before the deadline"
    );
    acks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill() {
    let dir = tempfile::tempdir().expect("dir");
    let mut rng = rand::rng();
    let mut acked: Vec<Ack> = Vec::new();
    let started = Instant::now();
    for cycle in 0..CYCLES {
        acked.extend(run_and_kill(dir.path(), &mut rng));

        let store = SledStore::open(dir.path(), SledOptions::default())
            .unwrap_or_else(|e| panic!("cycle {cycle}: reopen after SIGKILL failed: {e}"));
        let report = store.verify(&|_, _| {}).await.expect("verify runs");
        assert!(report.ok(), "cycle {cycle}: {report:?}");
        let all = read_everything(store.as_ref()).await;
        assert_gapless(&all);
        for ack in &acked {
            assert!(
                ack.last as usize <= all.len(),
                "cycle {cycle}: acknowledged {ack:?} lost"
            );
            for p in ack.first..=ack.last {
                let e = &all[p as usize - 1];
                assert_eq!(
                    e.command_id, ack.command,
                    "cycle {cycle}: position {p} holds another command"
                );
            }
        }
        assert_streams_match_the_log(store.as_ref()).await;
        if let Some(ack) = acked.last() {
            let stream = all[ack.first as usize - 1].stream_id;
            let retry = event_store::AppendRequest {
                command_id: ack.command,
                request_fingerprint: None,
                ..request(stream, ExpectedVersion::Any, vec![comment("retry")])
            };
            let again = store.append(retry).await.expect("retry after SIGKILL");
            assert!(again.duplicate, "cycle {cycle}: {again:?}");
            assert_eq!(
                (again.first_position, again.position),
                (ack.first, ack.last)
            );
        }
        close(store).await;
    }
    let max = acked.iter().map(|a| a.last).max().unwrap_or(0);
    eprintln!(
        "{CYCLES} SIGKILL cycles, {} acknowledged appends up to position {max}, in {:?}",
        acked.len(),
        started.elapsed()
    );
}
