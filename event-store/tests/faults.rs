//! Storage faults (issue 8): the store behind a fault-injecting layer.
//!
//! For each step of a group commit (write, flush, sync) and each span (the
//! Nth operation once, or from the Nth on until cleared), concurrent
//! writers keep appending while the fault fires; a client whose append fails
//! retries it with the same command id, as the HTTP API's idempotency key
//! lets it. Then:
//! - every append that got an answer got it once and is in the log at the
//!   answered position; nothing without an answer is in the log;
//! - no partial append: each append's events are contiguous and complete;
//! - a live subscriber saw exactly the log, in order;
//! - after the fault clears the store accepts appends without a restart,
//!   and a reopened store holds the same log and passes `verify`.
//!
//! The disk-full cases run on a real, small tmpfs when the test may mount
//! one (root), else they say so and use the fault plan's free-space override.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{close, comment, created, read_everything, request};
use event_store::{
    EventStore, ExpectedVersion, FaultPoint, FaultSpan, RecordedEvent, SledOptions, SledStore,
    StorageFaults, StoreError,
};
use futures::StreamExt;
use uuid::Uuid;

const WRITERS: usize = 6;
const APPENDS_PER_WRITER: usize = 40;
/// Events per append: a partial append would show as a short run.
const EVENTS_PER_APPEND: usize = 3;
/// Pause before a client retries a failed append.
const RETRY_BACKOFF: Duration = Duration::from_millis(1);
const WAIT: Duration = Duration::from_secs(30);

/// The answer an append finally got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Acked {
    stream: Uuid,
    position: u64,
    version: u64,
}

/// What the writers observed.
#[derive(Default)]
struct Observed {
    acked: HashMap<Uuid, Acked>,
    failures: usize,
}

fn open(dir: &Path, faults: &Arc<StorageFaults>) -> Arc<SledStore> {
    let options = SledOptions {
        faults: Some(faults.clone()),
        ..SledOptions::default()
    };
    SledStore::open(dir, options).expect("open store")
}

/// One writer: its own stream, appends of `EVENTS_PER_APPEND` comments,
/// each retried with the same command id until it is answered.
async fn write(store: Arc<SledStore>, observed: Arc<Mutex<Observed>>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let stream = Uuid::now_v7();
    let mut version = 0;
    for i in 0..APPENDS_PER_WRITER {
        let payloads = if version == 0 {
            let mut p = vec![created(1)];
            p.extend((1..EVENTS_PER_APPEND).map(|k| comment(&format!("{i}.{k}"))));
            p
        } else {
            (0..EVENTS_PER_APPEND)
                .map(|k| comment(&format!("{i}.{k}")))
                .collect()
        };
        let req = request(stream, ExpectedVersion::Exact(version), payloads);
        let outcome = loop {
            match store.append(req.clone()).await {
                Ok(outcome) => break outcome,
                Err(StoreError::Unavailable(_)) => {
                    observed.lock().expect("observed").failures += 1;
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "the store never recovered"
                    );
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                Err(e) => panic!("unexpected error: {e}"),
            }
        };
        assert!(
            !outcome.duplicate,
            "a failed append left no trace to be a duplicate of"
        );
        version = outcome.version;
        let prior = observed.lock().expect("observed").acked.insert(
            req.command_id,
            Acked {
                stream,
                position: outcome.position,
                version: outcome.version,
            },
        );
        assert!(prior.is_none(), "one answer per command");
    }
}

/// Checks the log against what the writers were told.
fn check_log(log: &[RecordedEvent], acked: &HashMap<Uuid, Acked>) {
    common::assert_gapless(log);
    let mut by_command: HashMap<Uuid, Vec<&RecordedEvent>> = HashMap::new();
    for e in log {
        by_command.entry(e.command_id).or_default().push(e);
    }
    assert_eq!(
        by_command.len(),
        acked.len(),
        "the log holds exactly the answered appends"
    );
    for (command, events) in by_command {
        let ack = acked
            .get(&command)
            .unwrap_or_else(|| panic!("command {command} is in the log but was never answered"));
        assert_eq!(events.len(), EVENTS_PER_APPEND, "no partial append");
        let last = events.last().expect("non-empty");
        assert_eq!(
            (last.stream_id, last.position, last.stream_version),
            (ack.stream, ack.position, ack.version),
            "the append is where its answer said"
        );
        for pair in events.windows(2) {
            assert_eq!(
                pair[0].position + 1,
                pair[1].position,
                "an append is contiguous"
            );
        }
    }
}

/// Runs the writers while `arm` fires faults, then checks everything.
async fn run_scenario(point: FaultPoint, span: FaultSpan) {
    let dir = tempfile::tempdir().expect("dir");
    let faults = StorageFaults::new();
    let store = open(dir.path(), &faults);
    let mut live = store.subscribe(1);
    let observed = Arc::new(Mutex::new(Observed::default()));

    // Arm before the writers start: the 5th operation at `point` fails.
    faults.fail(point, 5, span);
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| tokio::spawn(write(store.clone(), observed.clone())))
        .collect();
    if span == FaultSpan::Forever {
        // Let it fail for a while, then let the disk come back.
        let failing = common::eventually(WAIT, || {
            observed.lock().expect("observed").failures >= 3 * WRITERS
        })
        .await;
        assert!(failing, "the armed fault fired");
        faults.clear();
    }
    for w in writers {
        w.await.expect("writer");
    }

    let (acked, failures) = {
        let o = observed.lock().expect("observed");
        (o.acked.clone(), o.failures)
    };
    assert!(failures >= 1, "{point:?}/{span:?}: the fault fired");
    assert_eq!(acked.len(), WRITERS * APPENDS_PER_WRITER);
    let log = read_everything(store.as_ref()).await;
    check_log(&log, &acked);
    assert_eq!(store.head().await.expect("head"), log.len() as u64);

    // The live subscriber saw exactly the log: nothing undone ever reached it.
    let mut seen = Vec::with_capacity(log.len());
    while seen.len() < log.len() {
        let next = tokio::time::timeout(WAIT, live.next())
            .await
            .expect("subscriber keeps up")
            .expect("subscription open")
            .expect("no error");
        seen.push(next.position);
        assert_eq!(
            next.command_id,
            log[seen.len() - 1].command_id,
            "subscriber and log agree at position {}",
            next.position
        );
    }

    drop(live);
    close(store).await;
    let reopened = open(dir.path(), &StorageFaults::new());
    let again = read_everything(reopened.as_ref()).await;
    assert_eq!(
        again
            .iter()
            .map(|e| (e.position, e.command_id))
            .collect::<Vec<_>>(),
        log.iter()
            .map(|e| (e.position, e.command_id))
            .collect::<Vec<_>>(),
        "the reopened log is the acknowledged log"
    );
    let report = reopened.verify(&|_, _| {}).await.expect("verify");
    assert!(report.ok(), "{report:?}");
    close(reopened).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_write_once() {
    run_scenario(FaultPoint::Write, FaultSpan::Once).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_write_forever_then_cleared() {
    run_scenario(FaultPoint::Write, FaultSpan::Forever).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_flush_once() {
    run_scenario(FaultPoint::Flush, FaultSpan::Once).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_flush_forever_then_cleared() {
    run_scenario(FaultPoint::Flush, FaultSpan::Forever).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sync_once() {
    run_scenario(FaultPoint::Sync, FaultSpan::Once).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sync_forever_then_cleared() {
    run_scenario(FaultPoint::Sync, FaultSpan::Forever).await;
}

/// A tmpfs of `size_mib` mounted on a fresh directory, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` when this process may not mount (not root, or no tmpfs).
    fn mount(size_mib: u64) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("dir");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(SmallDisk { dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the filesystem of `dir` until fewer than `leave_bytes` are free.
fn fill(dir: &Path, leave_bytes: u64) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0xA5u8; 256 * 1024];
    loop {
        let free = fs2::available_space(dir).expect("statvfs");
        if free < leave_bytes {
            break;
        }
        let n = ((free - leave_bytes) as usize + 1).min(chunk.len());
        file.write_all(&chunk[..n]).expect("filler write");
        file.sync_data().expect("filler sync");
    }
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_refuses_appends_and_recovers_when_space_returns() {
    const RESERVE_BYTES: u64 = 8 * 1024 * 1024;
    const DISK_MIB: u64 = 64;
    let disk = SmallDisk::mount(DISK_MIB);
    if disk.is_none() {
        eprintln!("cannot mount a tmpfs here (needs root): using the free-space override");
    }
    let faults = StorageFaults::new();
    let holder = tempfile::tempdir().expect("dir");
    let dir = disk
        .as_ref()
        .map_or_else(|| holder.path().to_path_buf(), SmallDisk::path)
        .join("store");
    let options = SledOptions {
        faults: Some(faults.clone()),
        disk_reserve_bytes: RESERVE_BYTES,
        cache_capacity_bytes: 8 * 1024 * 1024,
        ..SledOptions::default()
    };
    let store = SledStore::open(&dir, options.clone()).expect("open");
    let stream = Uuid::now_v7();
    let mut acked = HashMap::new();
    let first = request(stream, ExpectedVersion::NoStream, vec![created(1)]);
    let outcome = store.append(first.clone()).await.expect("first append");
    acked.insert(first.command_id, (outcome.position, outcome.version));

    // Leave just under the reserve free: the next append is refused.
    let filler = match &disk {
        Some(d) => Some(fill(&d.path(), RESERVE_BYTES - 1)),
        None => {
            faults.set_free_bytes(Some(RESERVE_BYTES - 1));
            None
        }
    };
    let big = "x".repeat(16 * 1024);
    let refused = request(stream, ExpectedVersion::Exact(1), vec![comment(&big)]);
    for _ in 0..3 {
        match store.append(refused.clone()).await {
            Err(StoreError::StorageFull {
                free_bytes,
                reserve_bytes,
            }) => {
                assert!(free_bytes < reserve_bytes, "{free_bytes} < {reserve_bytes}");
            }
            other => panic!("expected StorageFull, got {other:?}"),
        }
    }
    assert_eq!(store.head().await.expect("head"), 1, "nothing was appended");

    // Space returns: the same append goes through, no restart needed.
    match filler {
        Some(path) => std::fs::remove_file(path).expect("free the space"),
        None => faults.set_free_bytes(None),
    }
    let outcome = store.append(refused.clone()).await.expect("space is back");
    assert!(!outcome.duplicate);
    acked.insert(refused.command_id, (outcome.position, outcome.version));
    assert_eq!((outcome.position, outcome.version), (2, 2));

    close(store).await;
    let reopened = SledStore::open(&dir, options).expect("reopen");
    let log = read_everything(reopened.as_ref()).await;
    let found: HashMap<Uuid, (u64, u64)> = log
        .iter()
        .map(|e| (e.command_id, (e.position, e.stream_version)))
        .collect();
    assert_eq!(found, acked, "the log is exactly the acknowledged appends");
    assert!(reopened.verify(&|_, _| {}).await.expect("verify").ok());
    close(reopened).await;
}
