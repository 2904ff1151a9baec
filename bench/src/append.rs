//! `ticketlog bench append`: durable append throughput and latency of the
//! sled store (or, with `--database-url`, the PostgreSQL one) at 1, 16 and
//! 64 concurrent writers, against raw sled inserts flushed every 100
//! inserts, and replay speed against a raw sled scan (sled only).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chrono::Utc;
use hdrhistogram::Histogram;
use serde::Serialize;
use uuid::Uuid;

use event_store::access::Role;
use event_store::codec;
use event_store::error::StoreError;
use event_store::paging::Pages;
use event_store::record::{
    Actor, AppendRequest, ExpectedVersion, NewEvent, RecordedEvent, Visibility, HASH_BYTES,
};
use event_store::schema::{EventPayload, Priority, TicketKind, SCHEMA_VERSION};
use event_store::sled_store::{keys, page, SledOptions, SledStore};
use event_store::store::EventStore;
use event_store::{PgOptions, PgStore};

/// Raw sled inserts between two flushes in the baseline.
pub const BASELINE_INSERTS_PER_FLUSH: u64 = 100;
/// Slowest acknowledgement the latency histogram can hold, in microseconds.
const LATENCY_MAX_MICROS: u64 = 60_000_000;

/// How much work the benchmark does; `Default` is the real run, tests use tiny ones.
#[derive(Debug, Clone)]
pub struct AppendBenchOptions {
    /// Events appended with one writer.
    pub w1_events: u64,
    /// Events appended with 16 concurrent writers.
    pub w16_events: u64,
    /// Events appended with 64 concurrent writers.
    pub w64_events: u64,
    /// Raw sled inserts in the baseline.
    pub baseline_events: u64,
    /// Times the whole log is replayed (and raw-scanned) for the replay figures.
    pub replay_passes: u32,
    /// The PostgreSQL store to measure instead of a temporary sled one
    /// (its log keeps the appended events).
    pub database_url: Option<String>,
}

impl Default for AppendBenchOptions {
    fn default() -> Self {
        AppendBenchOptions {
            w1_events: 3_000,
            w16_events: 30_000,
            w64_events: 100_000,
            baseline_events: 100_000,
            replay_passes: 5,
            database_url: None,
        }
    }
}

/// One writer-count run.
#[derive(Debug, Clone, Serialize)]
pub struct WriterRun {
    /// Concurrent writers.
    pub writers: usize,
    /// Events appended.
    pub events: u64,
    /// Durable (acknowledged) events per second.
    pub events_per_s: f64,
    /// Median acknowledgement latency in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile acknowledgement latency in milliseconds.
    pub p99_ms: f64,
}

/// The benchmark's figures (the `--json` object).
#[derive(Debug, Clone, Serialize)]
pub struct AppendBenchReport {
    /// The store measured: `sled` or `postgres`.
    pub store: &'static str,
    /// Durable events/s with one writer.
    pub w1_events_per_s: f64,
    /// Median ack latency with one writer, ms.
    pub w1_p50_ms: f64,
    /// p99 ack latency with one writer, ms.
    pub w1_p99_ms: f64,
    /// Durable events/s with 16 writers.
    pub w16_events_per_s: f64,
    /// Median ack latency with 16 writers, ms.
    pub w16_p50_ms: f64,
    /// p99 ack latency with 16 writers, ms.
    pub w16_p99_ms: f64,
    /// Durable events/s with 64 writers.
    pub w64_events_per_s: f64,
    /// Median ack latency with 64 writers, ms.
    pub w64_p50_ms: f64,
    /// p99 ack latency with 64 writers, ms.
    pub w64_p99_ms: f64,
    /// Raw sled inserts/s with a flush every 100 inserts.
    pub sled_baseline_events_per_s: f64,
    /// `w64_events_per_s / sled_baseline_events_per_s`.
    pub ratio_w64: f64,
    /// Events/s of reading the whole log through `read_all` and decoding it.
    pub replay_events_per_s: f64,
    /// Records/s of a raw sled scan of the same log's pages, splitting the
    /// records apart without decoding them (`null` on PostgreSQL).
    pub raw_scan_events_per_s: Option<f64>,
    /// Events in the log replayed.
    pub replay_log_events: u64,
    /// Size of one encoded benchmark record, bytes.
    pub record_bytes: usize,
    /// CPU cores available.
    pub cores: usize,
    /// Every writer run, in order.
    pub runs: Vec<WriterRun>,
}

/// Runs the benchmark in a temporary directory. Blocking: it runs its own
/// tokio runtime on a thread of its own, so it may be called from anywhere.
pub fn run_append_bench(opts: AppendBenchOptions) -> Result<AppendBenchReport, StoreError> {
    std::thread::Builder::new()
        .name("bench-append".into())
        .spawn(move || {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(cores)
                .enable_all()
                .build()
                .map_err(|e| StoreError::Unavailable(format!("cannot start a runtime: {e}")))?;
            rt.block_on(bench(opts, cores))
        })
        .map_err(|e| StoreError::Unavailable(format!("cannot start the bench thread: {e}")))?
        .join()
        .map_err(|_| StoreError::Unavailable("the benchmark panicked".into()))?
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A UUID v7 for the load generator, without a syscall: the millisecond
/// clock, then a randomly seeded process-wide counter. (`Uuid::now_v7` asks
/// the kernel for randomness per id; with four ids per request that was about
/// a quarter of the clients' CPU, on the same two cores the writer needs.)
fn bench_id() -> Uuid {
    static SEED: OnceLock<u128> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| Uuid::new_v4().as_u128());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let random = (seed ^ u128::from(n)).to_be_bytes();
    let mut tail = [0u8; 10];
    tail.copy_from_slice(&random[6..]);
    uuid::Builder::from_unix_timestamp_millis(millis, &tail).into_uuid()
}

/// A comment of realistic size, the most common event.
fn comment() -> EventPayload {
    EventPayload::CommentPosted {
        comment_id: bench_id(),
        body: "Checked the switch in room 2.14: port 7 was flapping, replaced the patch cable."
            .into(),
        internal: false,
    }
}

fn ticket() -> EventPayload {
    EventPayload::TicketCreated {
        number: 1,
        title: "Printer on floor 2 jams".into(),
        description: "Paper jams on every second page since this morning.".into(),
        priority: Priority::Medium,
        kind: TicketKind::Incident,
        reporter: bench_id(),
        location: None,
        tags: vec!["printer".into()],
        device: None,
    }
}

fn request(stream: Uuid, version: u64, actor: &Actor) -> AppendRequest {
    let payload = if version == 0 { ticket() } else { comment() };
    let visibility = if payload.is_internal() {
        Visibility::Internal
    } else {
        Visibility::Public
    };
    AppendRequest {
        stream_id: stream,
        expected: ExpectedVersion::Exact(version),
        events: vec![NewEvent {
            event_id: bench_id(),
            payload,
            visibility,
        }],
        command_id: bench_id(),
        request_fingerprint: None,
        correlation_id: bench_id(),
        tenant: "bench".into(),
        actor: actor.clone(),
        recorded_at: Utc::now(),
    }
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

async fn writers_run(
    store: &Arc<dyn EventStore>,
    writers: usize,
    events: u64,
) -> Result<WriterRun, StoreError> {
    let per_writer = (events / writers as u64).max(1);
    let actor = Actor {
        user_id: Uuid::now_v7(),
        role: Role::Agent,
    };
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(writers);
    for _ in 0..writers {
        let store = store.clone();
        let actor = actor.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_max(LATENCY_MAX_MICROS, 3).map_err(io)?;
            let stream = bench_id();
            for version in 0..per_writer {
                let req = request(stream, version, &actor);
                let t = Instant::now();
                store.append(req).await?;
                let micros = t.elapsed().as_micros().min(LATENCY_MAX_MICROS as u128) as u64;
                hist.saturating_record(micros.max(1));
            }
            Ok::<_, StoreError>(hist)
        }));
    }
    let mut hist = Histogram::<u64>::new_with_max(LATENCY_MAX_MICROS, 3).map_err(io)?;
    for t in tasks {
        let h = t.await.map_err(io)??;
        hist.add(h).map_err(io)?;
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let total = per_writer * writers as u64;
    Ok(WriterRun {
        writers,
        events: total,
        events_per_s: total as f64 / secs,
        p50_ms: ms(&hist, 0.5),
        p99_ms: ms(&hist, 0.99),
    })
}

/// Raw sled: insert `events` values of `value_bytes` bytes, flushing every 100.
fn sled_baseline(dir: &std::path::Path, events: u64, value: &[u8]) -> Result<f64, StoreError> {
    let db = sled::Config::new().path(dir).open()?;
    let tree = db.open_tree("baseline")?;
    let started = Instant::now();
    for i in 0..events {
        tree.insert(keys::page_key(i + 1), value)?;
        if (i + 1) % BASELINE_INSERTS_PER_FLUSH == 0 {
            db.flush()?;
        }
    }
    db.flush()?;
    Ok(events as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

async fn replay(store: &dyn EventStore, passes: u32) -> Result<(f64, u64), StoreError> {
    let mut events = 0u64;
    let started = Instant::now();
    for _ in 0..passes {
        let mut pages = Pages::log(store, 1);
        while let Some(page) = pages.next_page().await? {
            events += page.len() as u64;
        }
    }
    let head = store.head().await?;
    Ok((
        events as f64 / started.elapsed().as_secs_f64().max(1e-9),
        head,
    ))
}

fn raw_scan(store: &SledStore, passes: u32) -> Result<f64, StoreError> {
    let mut records = 0u64;
    let mut bytes = 0usize;
    let started = Instant::now();
    for _ in 0..passes {
        for item in store.log_tree().scan_prefix(keys::page_prefix()) {
            let (_, v) = item?;
            for frame in page::frames(&v) {
                bytes += frame.map_err(io)?.len();
                records += 1;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    std::hint::black_box(bytes);
    Ok(records as f64 / secs)
}

/// A representative encoded record (for the baseline's value size).
fn sample_record() -> Result<Vec<u8>, StoreError> {
    let rec = RecordedEvent {
        position: 1,
        stream_id: Uuid::now_v7(),
        stream_version: 2,
        event_id: Uuid::now_v7(),
        command_id: Uuid::now_v7(),
        request_fingerprint: None,
        correlation_id: Uuid::now_v7(),
        tenant: "bench".into(),
        actor: Actor {
            user_id: Uuid::now_v7(),
            role: Role::Agent,
        },
        recorded_at: Utc::now(),
        schema_version: SCHEMA_VERSION,
        visibility: Visibility::Public,
        payload: comment(),
        prev_hash: [0; HASH_BYTES],
        hash: [0; HASH_BYTES],
    };
    Ok(codec::encode(&rec)?.0)
}

async fn bench(opts: AppendBenchOptions, cores: usize) -> Result<AppendBenchReport, StoreError> {
    let dir = tempfile::tempdir().map_err(io)?;
    let value = sample_record()?;
    let baseline = {
        let path = dir.path().join("baseline");
        let events = opts.baseline_events;
        let value = value.clone();
        tokio::task::spawn_blocking(move || sled_baseline(&path, events, &value))
            .await
            .map_err(io)??
    };
    let (store, sled, kind): (Arc<dyn EventStore>, _, _) = match &opts.database_url {
        Some(url) => (
            PgStore::open(url, PgOptions::default()).await?,
            None,
            "postgres",
        ),
        None => {
            let sled = SledStore::open(dir.path().join("store"), SledOptions::default())?;
            (sled.clone(), Some(sled), "sled")
        }
    };
    let mut runs = Vec::new();
    for (writers, events) in [
        (1, opts.w1_events),
        (16, opts.w16_events),
        (64, opts.w64_events),
    ] {
        runs.push(writers_run(&store, writers, events).await?);
    }
    let (replay_events_per_s, replay_log_events) =
        replay(store.as_ref(), opts.replay_passes.max(1)).await?;
    let raw_scan_events_per_s = match &sled {
        Some(sled) => Some(raw_scan(sled, opts.replay_passes.max(1))?),
        None => None,
    };
    store.close().await?;
    drop((store, sled));
    let w = |i: usize| runs.get(i).cloned().ok_or_else(|| io("missing run"));
    let (w1, w16, w64) = (w(0)?, w(1)?, w(2)?);
    Ok(AppendBenchReport {
        store: kind,
        w1_events_per_s: w1.events_per_s,
        w1_p50_ms: w1.p50_ms,
        w1_p99_ms: w1.p99_ms,
        w16_events_per_s: w16.events_per_s,
        w16_p50_ms: w16.p50_ms,
        w16_p99_ms: w16.p99_ms,
        w64_events_per_s: w64.events_per_s,
        w64_p50_ms: w64.p50_ms,
        w64_p99_ms: w64.p99_ms,
        sled_baseline_events_per_s: baseline,
        ratio_w64: w64.events_per_s / baseline.max(1e-9),
        replay_events_per_s,
        raw_scan_events_per_s,
        replay_log_events,
        record_bytes: value.len(),
        cores,
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_ids_are_distinct_time_ordered_v7() {
        let a = bench_id();
        let b = bench_id();
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 7);
        assert!(a.as_bytes()[..6] <= b.as_bytes()[..6]);
    }

    #[test]
    fn tiny_bench_reports_every_figure() {
        let report = run_append_bench(AppendBenchOptions {
            w1_events: 10,
            w16_events: 32,
            w64_events: 128,
            baseline_events: 200,
            replay_passes: 1,
            database_url: None,
        })
        .expect("bench runs");
        assert_eq!(report.replay_log_events, 10 + 32 + 128);
        assert!(report.w64_events_per_s > 0.0 && report.sled_baseline_events_per_s > 0.0);
        assert!(report.replay_events_per_s > 0.0);
        assert!(report.raw_scan_events_per_s.is_some_and(|r| r > 0.0));
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["store"], "sled");
        for field in [
            "w1_events_per_s",
            "w16_events_per_s",
            "w64_events_per_s",
            "w64_p50_ms",
            "w64_p99_ms",
            "sled_baseline_events_per_s",
            "ratio_w64",
            "replay_events_per_s",
            "raw_scan_events_per_s",
            "cores",
        ] {
            assert!(json.get(field).is_some(), "{field} missing");
        }
    }

    #[test]
    fn tiny_bench_runs_on_postgres() {
        let server =
            event_store::testing::postgres::PgServer::shared().expect("start the test PostgreSQL");
        let url = server.fresh_database().expect("create a database");
        let report = run_append_bench(AppendBenchOptions {
            w1_events: 5,
            w16_events: 16,
            w64_events: 64,
            baseline_events: 100,
            replay_passes: 1,
            database_url: Some(url),
        })
        .expect("bench runs");
        assert_eq!(report.store, "postgres");
        assert_eq!(report.replay_log_events, 5 + 16 + 64);
        assert!(report.w64_events_per_s > 0.0 && report.replay_events_per_s > 0.0);
        assert!(report.raw_scan_events_per_s.is_none());
    }
}
