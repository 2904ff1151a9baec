//! The stream and command index across its two homes: the in-memory tail and
//! the coalesced index keys written once `INDEX_LAG_EVENTS` pile up. Reads,
//! idempotency and conflicts must not care where an append is indexed, while
//! chunks move, and after a restart.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use event_store::limits::INDEX_LAG_EVENTS;
use event_store::sled_store::{keys, verify_dir, LOG_TREE};
use event_store::{EventStore, ExpectedVersion, SledOptions, SledStore, StoreError};
use uuid::Uuid;

const STREAMS: usize = 24;
const EVENTS_PER_APPEND_MAX: usize = 7;

/// Writes well past the index lag over `STREAMS` streams, `Exact` and `Any`
/// appends mixed; returns the first request of each stream.
async fn fill(
    store: &Arc<SledStore>,
) -> Vec<(event_store::AppendRequest, event_store::AppendOutcome)> {
    let streams: Vec<Uuid> = (0..STREAMS).map(|_| Uuid::now_v7()).collect();
    let mut firsts = Vec::new();
    for (i, s) in streams.iter().enumerate() {
        let req = request(*s, ExpectedVersion::NoStream, vec![created(i as u64)]);
        let outcome = store.append(req.clone()).await.expect("create");
        firsts.push((req, outcome));
    }
    let target = store.head().await.expect("head") + INDEX_LAG_EVENTS * 3 / 2;
    let mut tasks = Vec::new();
    for (w, s) in streams.iter().copied().enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut version = 1;
            let mut i = w;
            while store.head().await.expect("head") < target {
                let n = 1 + i % EVENTS_PER_APPEND_MAX;
                let events = (0..n).map(|_| comment("indexed")).collect();
                let expected = if i % 3 == 0 {
                    ExpectedVersion::Any
                } else {
                    ExpectedVersion::Exact(version)
                };
                let outcome = store
                    .append(request(s, expected, events))
                    .await
                    .expect("single writer per stream never conflicts");
                version = outcome.version;
                i += STREAMS;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    firsts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_and_commands_are_found_wherever_they_are_indexed() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SledStore::open(dir.path(), SledOptions::default()).expect("open");

    // A reader checks stream reads stay gapless while chunks move to disk.
    let stop = Arc::new(AtomicBool::new(false));
    let watched = Uuid::now_v7();
    store
        .append(request(
            watched,
            ExpectedVersion::NoStream,
            vec![created(99)],
        ))
        .await
        .expect("watched");
    let reader = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seen = 0;
            while !stop.load(Ordering::Relaxed) {
                store
                    .append(request(watched, ExpectedVersion::Any, vec![comment("w")]))
                    .await
                    .expect("watched append");
                let version = store.stream_version(watched).await.expect("version");
                assert!(version > seen, "versions only grow");
                seen = version;
                let from = version.saturating_sub(5).max(1);
                let page = store
                    .read_stream(watched, from, 100)
                    .await
                    .expect("read while chunks move");
                let versions: Vec<u64> = page.iter().map(|e| e.stream_version).collect();
                assert_eq!(versions, (from..=version).collect::<Vec<_>>());
            }
        })
    };
    let firsts = fill(&store).await;
    stop.store(true, Ordering::Relaxed);
    reader.await.expect("reader");
    assert_streams_match_the_log(store.as_ref()).await;

    // The first commands are in index keys by now; retries are answered from
    // there, whatever version they expect (a retry may re-read the stream
    // first, as the ticket-number allocation does).
    let (first, original) = firsts[0].clone();
    let version = store.stream_version(first.stream_id).await.expect("v");
    let again = store.append(first.clone()).await.expect("retry");
    assert!(again.duplicate);
    assert_eq!(
        event_store::AppendOutcome {
            duplicate: false,
            ..again
        },
        original
    );
    let moved = event_store::AppendRequest {
        expected: ExpectedVersion::Exact(version),
        ..first.clone()
    };
    let again = store
        .append(moved.clone())
        .await
        .expect("retry at a later version");
    assert!(again.duplicate && again.position == original.position);
    // The last append is never in a chunk yet: after a restart it is found
    // in the tail rebuilt from the log.
    let tail = request(
        firsts[2].0.stream_id,
        ExpectedVersion::Any,
        vec![comment("t")],
    );
    let tail_outcome = store.append(tail.clone()).await.expect("tail");
    let head = store.head().await.expect("head");
    assert_eq!(tail_outcome.position, head);
    close(store).await;

    {
        let db = open_raw(dir.path());
        let log = db.open_tree(LOG_TREE).expect("log");
        let indexed = log.get(keys::indexed_key()).expect("get").expect("indexed");
        let indexed = keys::parse_u64(&indexed).expect("u64");
        assert!(
            indexed >= INDEX_LAG_EVENTS / 2,
            "chunks were written ({indexed})"
        );
        assert!(indexed < head, "and a tail is left to rebuild on open");
    }

    let store = SledStore::open(dir.path(), SledOptions::default()).expect("reopen");
    assert_streams_match_the_log(store.as_ref()).await;
    for (req, original) in &firsts {
        let again = store.append(req.clone()).await.expect("retry after reopen");
        assert!(again.duplicate, "{again:?}");
        assert_eq!((again.version, again.position), (1, original.position));
    }
    let again = store.append(tail).await.expect("tail retry after reopen");
    assert!(again.duplicate);
    assert_eq!(again.position, tail_outcome.position);
    let again = store.append(moved).await.expect("moved retry after reopen");
    assert!(again.duplicate && again.position == original.position);
    // The last append of a stream (in the rebuilt tail) is a duplicate too,
    // and the stream's head continues from it.
    let s = firsts[1].0.stream_id;
    let version = store.stream_version(s).await.expect("v");
    let next = request(s, ExpectedVersion::Exact(version), vec![comment("after")]);
    let outcome = store.append(next.clone()).await.expect("continues");
    assert_eq!(outcome.version, version + 1);
    assert!(store.append(next).await.expect("dup").duplicate);
    match store
        .append(request(
            s,
            ExpectedVersion::Exact(version),
            vec![comment("late")],
        ))
        .await
    {
        Err(StoreError::Conflict { expected, actual }) => {
            assert_eq!((expected, actual), (version, version + 1))
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let report = store.verify(&|_, _| {}).await.expect("verify");
    assert!(report.ok(), "{report:?}");
    close(store).await;
}

/// A chunk is written in several small batches; a crash before the last one
/// leaves runs beyond the indexed-through position. The store indexes those
/// appends again (possibly grouped differently) and reads skip the repeats.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_left_by_an_interrupted_chunk_are_harmless() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SledStore::open(dir.path(), SledOptions::default()).expect("open");
    let firsts = fill(&store).await;
    close(store).await;
    {
        // As if the batch moving the indexed-through position never landed.
        let db = open_raw(dir.path());
        let log = db.open_tree(LOG_TREE).expect("log");
        assert!(log.remove(keys::indexed_key()).expect("remove").is_some());
        db.flush().expect("flush");
    }
    let store = SledStore::open(dir.path(), SledOptions::default()).expect("reopen");
    assert_streams_match_the_log(store.as_ref()).await;
    for (req, original) in &firsts {
        let again = store.append(req.clone()).await.expect("retry");
        assert!(again.duplicate && again.position == original.position);
    }
    // Index everything again on top of the stale runs, then check it all.
    fill(&store).await;
    assert_streams_match_the_log(store.as_ref()).await;
    let report = store.verify(&|_, _| {}).await.expect("verify");
    assert!(report.ok(), "{report:?}");
    close(store).await;
    let store = SledStore::open(dir.path(), SledOptions::default()).expect("reopen again");
    assert_streams_match_the_log(store.as_ref()).await;
    close(store).await;
}

/// `verify` proves the command index too: idempotent retries depend on it.
/// A copy without its command buckets, and one whose entry points one
/// position off, are both reported at the first record they misplace.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_checks_the_command_index() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SledStore::open(dir.path(), SledOptions::default()).expect("open");
    fill(&store).await;
    close(store).await;
    assert!(verify_dir(dir.path(), &|_, _| {}).expect("verify").ok());

    let scratch = tempfile::tempdir().expect("scratch");
    let copy = |name: &str, alter: &dyn Fn(&sled::Tree)| {
        let path = scratch.path().join(name);
        copy_dir(dir.path(), &path);
        let db = open_raw(&path);
        let log = db.open_tree(LOG_TREE).expect("log");
        alter(&log);
        db.flush().expect("flush");
        path
    };
    let buckets = |log: &sled::Tree| -> Vec<(sled::IVec, sled::IVec)> {
        log.scan_prefix(keys::commands_prefix())
            .map(|kv| kv.expect("scan"))
            .collect()
    };

    let without = copy("without", &|log| {
        for (key, _) in buckets(log) {
            log.remove(key).expect("remove");
        }
    });
    let report = verify_dir(&without, &|_, _| {}).expect("verify runs");
    let (at, why) = report.failure.expect("missing buckets detected");
    assert!(why.contains("command index"), "{why}");
    assert_eq!(at, 1, "the first indexed record");

    // Bucket entries are 56 bytes; bytes 40..48 hold the first position.
    let shifted = copy("shifted", &|log| {
        let (key, value) = buckets(log).into_iter().next().expect("a bucket");
        let mut value = value.to_vec();
        let first = u64::from_be_bytes(value[40..48].try_into().expect("8 bytes"));
        value[40..48].copy_from_slice(&(first + 1).to_be_bytes());
        log.insert(key, value).expect("insert");
    });
    let report = verify_dir(&shifted, &|_, _| {}).expect("verify runs");
    let (_, why) = report.failure.expect("shifted entry detected");
    assert!(why.contains("command index"), "{why}");
}
