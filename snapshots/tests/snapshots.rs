//! Snapshot + tail equals full replay; every bad snapshot falls back to replay.

mod support;

use std::sync::Arc;

use event_store::{EventPayload, EventStore, KvTree, Priority, RecordedEvent};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use snapshots::{Aggregate, Blob, Loaded, SnapshotConfig, SnapshotError, SnapshotStore};
use support::{append_all, shared_kv, MemoryStore, MemoryTree};
use uuid::Uuid;

/// An order-sensitive fold, so a skipped, repeated or reordered event shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Tally {
    titles: Vec<String>,
    comments: u64,
    priority: Option<Priority>,
    mix: u64,
    last_version: u64,
}

impl Aggregate for Tally {
    const NAME: &'static str = "tally";
    const SNAPSHOT_VERSION: u16 = 1;

    fn evolve(mut self, event: &RecordedEvent) -> Self {
        match &event.payload {
            EventPayload::TicketEdited {
                title, priority, ..
            } => {
                if let Some(t) = title {
                    self.titles.push(t.clone());
                }
                if priority.is_some() {
                    self.priority = *priority;
                }
            }
            EventPayload::CommentPosted { body, .. } => self.comments += body.len() as u64,
            _ => {}
        }
        self.mix = self
            .mix
            .wrapping_mul(31)
            .wrapping_add(event.stream_version ^ event.position);
        self.last_version = event.stream_version;
        self
    }
}

/// Same name, newer snapshot schema: old snapshots must be ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct TallyV2(Tally);

impl Aggregate for TallyV2 {
    const NAME: &'static str = "tally";
    const SNAPSHOT_VERSION: u16 = 2;

    fn evolve(self, event: &RecordedEvent) -> Self {
        TallyV2(self.0.evolve(event))
    }
}

fn payload(kind: u8, text: &str) -> EventPayload {
    match kind % 3 {
        0 => EventPayload::TicketEdited {
            title: Some(text.to_string()),
            description: None,
            priority: None,
            tags: None,
        },
        1 => EventPayload::TicketEdited {
            title: None,
            description: None,
            priority: Some(if text.len() & 1 == 0 {
                Priority::High
            } else {
                Priority::Low
            }),
            tags: None,
        },
        _ => EventPayload::CommentPosted {
            comment_id: Uuid::nil(),
            body: text.to_string(),
            internal: false,
        },
    }
}

fn payloads(n: usize) -> Vec<EventPayload> {
    (0..n).map(|i| payload(i as u8, &format!("e{i}"))).collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

fn snaps(kv: &Arc<MemoryTree>, every_events: u64) -> SnapshotStore {
    SnapshotStore::new(kv.clone(), SnapshotConfig { every_events })
}

async fn full_replay(store: &MemoryStore, stream: Uuid) -> Loaded<Tally> {
    snaps(&shared_kv(), 0)
        .load(store, stream)
        .await
        .expect("replay")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Loads interleaved with appends (as a command handler does) write
    /// snapshots along the way; every load equals a full replay.
    #[test]
    fn snapshot_plus_tail_equals_full_replay(
        batches in prop::collection::vec(
            prop::collection::vec((any::<u8>(), "[a-z]{0,8}"), 0..12), 1..20),
        every_events in 1u64..10,
    ) {
        rt().block_on(async {
            let store = MemoryStore::default();
            let kv = shared_kv();
            let snapshots = snaps(&kv, every_events);
            let stream = Uuid::new_v4();
            let mut total = 0u64;
            for batch in &batches {
                let ps: Vec<EventPayload> = batch.iter().map(|(k, t)| payload(*k, t)).collect();
                append_all(&store, stream, &ps).await;
                total += ps.len() as u64;
                let loaded: Loaded<Tally> = snapshots.load(&store, stream).await.expect("load");
                let replayed = full_replay(&store, stream).await;
                prop_assert_eq!(&loaded.state, &replayed.state);
                prop_assert_eq!(loaded.version, total);
                prop_assert_eq!(loaded.last_hash, replayed.last_hash);
                // The tail after a snapshot is always shorter than the period.
                let reloaded: Loaded<Tally> = snapshots.load(&store, stream).await.expect("reload");
                prop_assert_eq!(&reloaded.state, &replayed.state);
                prop_assert!(reloaded.replayed < every_events || total < every_events);
            }
            Ok(())
        })?;
    }
}

/// Writes a snapshot at `n` events and returns (store, kv, snapshots, stream).
async fn setup(n: usize, every_events: u64) -> (MemoryStore, Arc<MemoryTree>, SnapshotStore, Uuid) {
    let store = MemoryStore::default();
    let kv = shared_kv();
    let snapshots = snaps(&kv, every_events);
    let stream = Uuid::new_v4();
    append_all(&store, stream, &payloads(n)).await;
    let first: Loaded<Tally> = snapshots.load(&store, stream).await.expect("load");
    assert_eq!(first.snapshot_version, None);
    assert_eq!(kv.len(), 1, "snapshot written");
    (store, kv, snapshots, stream)
}

fn only_value(kv: &MemoryTree) -> (Vec<u8>, Vec<u8>) {
    kv.entries().into_iter().next().expect("one snapshot")
}

#[test]
fn valid_snapshot_is_used_and_only_the_tail_is_read() {
    rt().block_on(async {
        let (store, _kv, snapshots, stream) = setup(100, 10).await;
        append_all(&store, stream, &payloads(3)).await;
        let before = store.events_read();
        let loaded: Loaded<Tally> = snapshots.load(&store, stream).await.expect("load");
        assert_eq!(loaded.snapshot_version, Some(100));
        assert_eq!(loaded.replayed, 3);
        assert_eq!(loaded.version, 103);
        // The snapshot's own event (hash check) plus the tail.
        assert_eq!(store.events_read() - before, 4);
        assert_eq!(loaded.state, full_replay(&store, stream).await.state);
    });
}

#[test]
fn missing_snapshot_falls_back_to_full_replay() {
    rt().block_on(async {
        let (store, kv, snapshots, stream) = setup(50, 10).await;
        kv.clear().expect("clear");
        let loaded: Loaded<Tally> = snapshots.load(&store, stream).await.expect("load");
        assert_eq!(loaded.snapshot_version, None);
        assert_eq!(loaded.replayed, 50);
        assert_eq!(loaded.state, full_replay(&store, stream).await.state);
        assert_ne!(loaded.state, Tally::default());
    });
}

#[test]
fn corrupt_snapshot_falls_back_to_full_replay_and_is_replaced() {
    rt().block_on(async {
        let (store, kv, snapshots, stream) = setup(50, 10).await;
        let (key, value) = only_value(&kv);
        for i in 0..value.len() {
            let mut bad = value.clone();
            bad[i] ^= 0x20;
            kv.apply(vec![(key.clone(), Some(bad))]).expect("tamper");
            let loaded: Loaded<Tally> = snapshots.load(&store, stream).await.expect("load");
            assert_eq!(loaded.snapshot_version, None, "byte {i}");
            assert_eq!(loaded.state, full_replay(&store, stream).await.state);
            // The replay wrote a good snapshot again.
            let again: Loaded<Tally> = snapshots.load(&store, stream).await.expect("load");
            assert_eq!(again.snapshot_version, Some(50));
        }
        kv.apply(vec![(key.clone(), Some(value[..value.len() / 2].to_vec()))])
            .expect("truncate");
        let loaded: Loaded<Tally> = snapshots.load(&store, stream).await.expect("load");
        assert_eq!(loaded.snapshot_version, None);
        assert_eq!(loaded.state, full_replay(&store, stream).await.state);
    });
}

#[test]
fn undecodable_body_with_valid_checksum_falls_back() {
    rt().block_on(async {
        let (store, kv, snapshots, stream) = setup(20, 10).await;
        let (key, _) = only_value(&kv);
        let envelope = snapshots::envelope::Envelope {
            schema_version: Tally::SNAPSHOT_VERSION,
            version: 20,
            last_hash: full_replay(&store, stream).await.last_hash,
            body: vec![0xff; 7],
        };
        kv.apply(vec![(key, Some(envelope.encode()))])
            .expect("write");
        let loaded: Loaded<Tally> = snapshots.load(&store, stream).await.expect("load");
        assert_eq!(loaded.snapshot_version, None);
        assert_eq!(loaded.state, full_replay(&store, stream).await.state);
    });
}

#[test]
fn outdated_snapshot_schema_falls_back() {
    rt().block_on(async {
        let (store, _kv, snapshots, stream) = setup(30, 10).await;
        let loaded: Loaded<TallyV2> = snapshots.load(&store, stream).await.expect("load");
        assert_eq!(loaded.snapshot_version, None);
        assert_eq!(loaded.replayed, 30);
        assert_eq!(loaded.state.0, full_replay(&store, stream).await.state);
        // And the new version's snapshot is used from then on.
        let again: Loaded<TallyV2> = snapshots.load(&store, stream).await.expect("load");
        assert_eq!(again.snapshot_version, Some(30));
    });
}

#[test]
fn snapshot_that_does_not_match_the_log_falls_back() {
    rt().block_on(async {
        // A snapshot of another log (same stream id, different events).
        let (_other_store, kv, snapshots, stream) = setup(30, 10).await;
        let store = MemoryStore::default();
        append_all(&store, stream, &payloads(40)).await;
        let loaded: Loaded<Tally> = snapshots.load(&store, stream).await.expect("load");
        assert_eq!(loaded.snapshot_version, None);
        assert_eq!(loaded.state, full_replay(&store, stream).await.state);
        // A snapshot ahead of the log (the log is shorter than its version).
        let short = MemoryStore::default();
        append_all(&short, stream, &payloads(5)).await;
        kv.clear().expect("clear");
        snapshots
            .save(stream, 40, loaded.last_hash, &loaded.state)
            .expect("save");
        let loaded: Loaded<Tally> = snapshots.load(&short, stream).await.expect("load");
        assert_eq!(loaded.snapshot_version, None);
        assert_eq!(loaded.version, 5);
        assert_eq!(loaded.state, full_replay(&short, stream).await.state);
    });
}

#[test]
fn catch_up_from_a_cached_state_folds_only_new_events_and_snapshots_when_due() {
    rt().block_on(async {
        let store = MemoryStore::default();
        let kv = shared_kv();
        let snapshots = snaps(&kv, 10);
        let stream = Uuid::new_v4();
        append_all(&store, stream, &payloads(4)).await;
        let mut cached: Loaded<Tally> = snapshots.load(&store, stream).await.expect("load");
        assert!(kv.is_empty(), "not due yet");
        for round in 1..=5u64 {
            append_all(&store, stream, &payloads(3)).await;
            let before = store.events_read();
            cached = snapshots
                .catch_up(&store, stream, cached)
                .await
                .expect("catch up");
            assert_eq!(store.events_read() - before, 3);
            assert_eq!(cached.replayed, 3);
            assert_eq!(cached.version, 4 + 3 * round);
            assert_eq!(cached.state, full_replay(&store, stream).await.state);
        }
        // 19 events folded in total: a snapshot written at version 10, 9 pending since.
        assert_eq!(cached.pending, 9);
        let fresh: Loaded<Tally> = snapshots.load(&store, stream).await.expect("load");
        assert_eq!(fresh.snapshot_version, Some(10));
        assert_eq!(fresh.state, cached.state);
    });
}

#[test]
fn catch_up_of_a_current_state_reads_no_events_and_a_tail_in_one_page() {
    rt().block_on(async {
        let store = MemoryStore::default();
        let snapshots = snaps(&shared_kv(), 0);
        let stream = Uuid::new_v4();
        append_all(&store, stream, &payloads(4)).await;
        let cached: Loaded<Tally> = snapshots.load(&store, stream).await.expect("load");
        let before = store.stream_reads();
        let same = snapshots
            .catch_up(&store, stream, cached.clone())
            .await
            .expect("catch up");
        assert_eq!(store.stream_reads(), before, "current: nothing read");
        assert_eq!(same.state, cached.state);
        assert_eq!(same.version, 4);
        assert_eq!(same.replayed, 0);
        append_all(&store, stream, &payloads(2)).await;
        let before = store.stream_reads();
        let caught = snapshots
            .catch_up(&store, stream, cached)
            .await
            .expect("catch up");
        assert_eq!(
            store.stream_reads() - before,
            1,
            "a short page ends the tail"
        );
        assert_eq!(caught.version, 6);
        assert_eq!(caught.state, full_replay(&store, stream).await.state);
    });
}

#[test]
fn advance_folds_appended_records_like_a_load_and_snapshots_when_due() {
    rt().block_on(async {
        let store = MemoryStore::default();
        let kv = shared_kv();
        let snapshots = snaps(&kv, 5);
        let stream = Uuid::new_v4();
        append_all(&store, stream, &payloads(3)).await;
        let cached: Loaded<Tally> = snapshots.load(&store, stream).await.expect("load");
        append_all(&store, stream, &payloads(3)).await;
        let tail = store.read_stream(stream, 4, 10).await.expect("tail");
        let advanced = snapshots
            .advance(stream, cached.clone(), &tail)
            .expect("advance");
        assert_eq!(advanced.version, 6);
        assert_eq!(advanced.pending, 0, "6 events folded: snapshot written");
        assert_eq!(advanced.state, full_replay(&store, stream).await.state);
        let fresh: Loaded<Tally> = snapshots.load(&store, stream).await.expect("load");
        assert_eq!(fresh.snapshot_version, Some(6));
        // Records that are not the next ones are refused, not folded.
        let gap = snapshots.advance(stream, cached, &tail[1..]);
        assert!(matches!(gap, Err(SnapshotError::Gap { .. })), "{gap:?}");
    });
}

#[test]
fn missing_stream_is_the_default_state_at_version_zero() {
    rt().block_on(async {
        let store = MemoryStore::default();
        let loaded: Loaded<Tally> = snaps(&shared_kv(), 1)
            .load(&store, Uuid::new_v4())
            .await
            .expect("load");
        assert_eq!(loaded.version, 0);
        assert_eq!(loaded.state, Tally::default());
    });
}

#[test]
fn long_streams_are_read_in_pages() {
    rt().block_on(async {
        let store = MemoryStore::default();
        let stream = Uuid::new_v4();
        append_all(&store, stream, &payloads(2_345)).await;
        let loaded: Loaded<Tally> = snaps(&shared_kv(), 100)
            .load(&store, stream)
            .await
            .expect("load");
        assert_eq!(loaded.version, 2_345);
        assert_eq!(loaded.state.last_version, 2_345);
    });
}

#[test]
fn blobs_round_trip_and_corruption_reads_as_missing() {
    let kv = shared_kv();
    let snapshots = snaps(&kv, 10);
    assert_eq!(snapshots.load_blob("proj").expect("load"), None);
    snapshots
        .save_blob("proj", 77, b"state bytes")
        .expect("save");
    snapshots.save_blob("proj2", 5, b"other").expect("save");
    assert_eq!(
        snapshots.load_blob("proj").expect("load"),
        Some(Blob {
            position: 77,
            bytes: b"state bytes".to_vec()
        })
    );
    let key = kv
        .entries()
        .into_iter()
        .map(|(k, _)| k)
        .find(|k| k.ends_with(b"proj"))
        .expect("blob key");
    let mut bad = kv.get(&key).expect("get").expect("present");
    let last = bad.len() - 1;
    bad[last] ^= 1;
    kv.apply(vec![(key, Some(bad))]).expect("tamper");
    assert_eq!(snapshots.load_blob("proj").expect("load"), None);
    assert_eq!(
        snapshots
            .load_blob("proj2")
            .expect("load")
            .map(|b| b.position),
        Some(5)
    );
    snapshots.delete_blob("proj2").expect("delete");
    assert_eq!(snapshots.load_blob("proj2").expect("load"), None);
}
