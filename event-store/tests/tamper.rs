//! Tamper detection on copies of a real store: every kind of alteration is
//! found by `verify` at the right position, and `open` refuses to serve it.
//! Records live in pages (several records per sled value), so alterations
//! are made to records inside pages as well as to whole pages.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use event_store::sled_store::{keys, page, verify_dir, LOG_TREE};
use event_store::{EventStore, ExpectedVersion, SledOptions, SledStore, StoreError};
use uuid::Uuid;

const RECORDS: u64 = 60;
/// Where the codec puts the checksum, the hash and the body (see codec.rs).
const CRC_AT: usize = 1;
const HASH_AT: usize = 5;
const BODY_AT: usize = 39;

/// Events per append after the three creations, cycling; each append is its
/// own group commit (they are awaited one by one), so its events share one
/// page: 1..=3 are single-record pages, then 4..=7, 8, 9..=13, 14..=15,
/// 16..=18, 19..=22, 23, 24..=28, ... and the last page is 59..=60.
const EVENTS_PER_APPEND: [u64; 5] = [4, 1, 5, 2, 3];

/// A closed store with RECORDS events over three streams.
async fn original() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    let store = SledStore::open(dir.path(), SledOptions::default()).expect("open");
    let streams: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    for (i, s) in streams.iter().enumerate() {
        store
            .append(request(
                *s,
                ExpectedVersion::NoStream,
                vec![created(i as u64)],
            ))
            .await
            .expect("create");
    }
    let mut n = 3;
    for i in 0.. {
        if n >= RECORDS {
            break;
        }
        let count = EVENTS_PER_APPEND[i % EVENTS_PER_APPEND.len()].min(RECORDS - n);
        let events = (0..count).map(|_| comment("hello world")).collect();
        n += count;
        store
            .append(request(streams[i % 3], ExpectedVersion::Any, events))
            .await
            .expect("append");
    }
    assert_eq!(store.head().await.expect("head"), RECORDS);
    close(store).await;
    dir
}

/// A copy of `original` altered with raw sled.
fn altered(
    original: &Path,
    scratch: &tempfile::TempDir,
    name: &str,
    alter: impl FnOnce(&sled::Tree),
) -> PathBuf {
    let path = scratch.path().join(name);
    copy_dir(original, &path);
    let db = sled::open(&path).expect("raw sled");
    let log = db.open_tree(LOG_TREE).expect("log tree");
    alter(&log);
    db.flush().expect("flush");
    drop(log);
    drop(db);
    path
}

/// The page holding `position`: its first position and its records.
fn page_of(log: &sled::Tree, position: u64) -> (u64, Vec<Vec<u8>>) {
    let (key, value) = log
        .range(keys::page_key(0)..=keys::page_key(position))
        .next_back()
        .expect("a page at or before the position")
        .expect("read page");
    let first = keys::parse_page_key(&key).expect("page key");
    let records: Vec<Vec<u8>> = page::frames(&value)
        .map(|f| f.expect("intact page").to_vec())
        .collect();
    assert!(
        position < first + records.len() as u64,
        "page holds {position}"
    );
    (first, records)
}

fn rewrite_page(log: &sled::Tree, first: u64, records: &[Vec<u8>]) {
    if records.is_empty() {
        log.remove(keys::page_key(first)).expect("remove page");
    } else {
        log.insert(keys::page_key(first), page::encode(records))
            .expect("insert page");
    }
}

fn record(log: &sled::Tree, position: u64) -> Vec<u8> {
    let (first, records) = page_of(log, position);
    records[(position - first) as usize].clone()
}

/// Replaces the record at `position` inside its page.
fn put(log: &sled::Tree, position: u64, bytes: Vec<u8>) {
    let (first, mut records) = page_of(log, position);
    records[(position - first) as usize] = bytes;
    rewrite_page(log, first, &records);
}

/// Rewrites the page holding `position` without that record.
fn remove_record(log: &sled::Tree, position: u64) {
    let (first, mut records) = page_of(log, position);
    records.remove((position - first) as usize);
    rewrite_page(log, first, &records);
}

fn reseal_crc(bytes: &mut [u8]) {
    let crc = crc32c::crc32c(&bytes[HASH_AT..]);
    bytes[CRC_AT..HASH_AT].copy_from_slice(&crc.to_le_bytes());
}

/// Replaces "hello" by "jello" in a record's body.
fn edit_payload(bytes: &mut [u8]) {
    let at = bytes
        .windows(5)
        .position(|w| w == b"hello")
        .expect("record holds a comment");
    bytes[at] = b'j';
}

fn assert_detected(path: &Path, position: u64, reason: &str) {
    let report = verify_dir(path, &|_, _| {}).expect("verify runs");
    let (at, why) = report.failure.clone().expect("alteration detected");
    assert_eq!(at, position, "first bad position ({why})");
    assert!(
        why.contains(reason),
        "reason {why:?} should mention {reason:?}"
    );
    match SledStore::open(path, SledOptions::default()) {
        Err(StoreError::Corrupt { .. }) => {}
        Err(e) => panic!("open failed, but not as Corrupt: {e}"),
        Ok(_) => panic!("open served an altered store"),
    }
}

#[tokio::test]
async fn every_kind_of_alteration_is_detected() {
    let original = original().await;
    let scratch = tempfile::tempdir().expect("scratch");

    let untouched = altered(original.path(), &scratch, "untouched", |_| {});
    let report = verify_dir(&untouched, &|_, _| {}).expect("verify");
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.records, report.head), (RECORDS, RECORDS));
    drop(SledStore::open(&untouched, SledOptions::default()).expect("an intact copy opens"));

    // A bit flipped in the middle of a five-record page (9..=13).
    let flipped = altered(original.path(), &scratch, "flipped", |log| {
        let mut bytes = record(log, 10);
        let last = bytes.len() - 1;
        bytes[last] ^= 0x04;
        put(log, 10, bytes);
    });
    assert_detected(&flipped, 10, "checksum");

    // The last page (59..=60) gone: the head meta still names 60.
    let truncated = altered(original.path(), &scratch, "truncated", |log| {
        remove_record(log, RECORDS);
        remove_record(log, RECORDS - 1);
    });
    assert_detected(&truncated, RECORDS - 1, "truncated tail");

    // A torn write: the last page's value cut in the middle of a record.
    let torn = altered(original.path(), &scratch, "torn", |log| {
        let page = log
            .get(keys::page_key(RECORDS - 1))
            .expect("get")
            .expect("last page");
        log.insert(keys::page_key(RECORDS - 1), &page[..page.len() - 10])
            .expect("insert");
    });
    assert_detected(&torn, RECORDS, "truncated page");

    // One record taken out of the middle of a page: the next one is found
    // where it was expected.
    let deleted = altered(original.path(), &scratch, "deleted", |log| {
        remove_record(log, 11);
    });
    assert_detected(&deleted, 11, "claims position 12");

    // A whole page (the single record 23) deleted.
    let deleted_page = altered(original.path(), &scratch, "deleted_page", |log| {
        assert_eq!(page_of(log, 23), (23, vec![record(log, 23)]));
        remove_record(log, 23);
    });
    assert_detected(&deleted_page, 23, "missing");

    // Two records of one page (19..=22) swapped.
    let swapped = altered(original.path(), &scratch, "swapped", |log| {
        let (a, b) = (record(log, 20), record(log, 21));
        put(log, 20, b);
        put(log, 21, a);
    });
    assert_detected(&swapped, 20, "claims position 21");

    // Two whole pages swapped (8 and 23 are single-record pages).
    let swapped_pages = altered(original.path(), &scratch, "swapped_pages", |log| {
        let (a, b) = (record(log, 8), record(log, 23));
        put(log, 8, b);
        put(log, 23, a);
    });
    assert_detected(&swapped_pages, 8, "claims position 23");

    // An edit whose checksum is made to match: the record's hash gives it away.
    let edited = altered(original.path(), &scratch, "edited", |log| {
        let mut bytes = record(log, 15);
        edit_payload(&mut bytes);
        reseal_crc(&mut bytes);
        put(log, 15, bytes);
    });
    assert_detected(&edited, 15, "hash chain");

    // Recomputing the record's own hash too: the next record's link gives it away.
    let rehashed = altered(original.path(), &scratch, "rehashed", |log| {
        let mut bytes = record(log, 15);
        edit_payload(&mut bytes);
        let prev = record(log, 14);
        let mut prev_hash = [0u8; 32];
        prev_hash.copy_from_slice(&prev[HASH_AT..HASH_AT + 32]);
        let schema = u16::from_le_bytes([bytes[BODY_AT - 2], bytes[BODY_AT - 1]]);
        let hash = event_store::codec::record_hash(&prev_hash, schema, &bytes[BODY_AT..]);
        bytes[HASH_AT..HASH_AT + 32].copy_from_slice(&hash);
        reseal_crc(&mut bytes);
        put(log, 15, bytes);
    });
    assert_detected(&rehashed, 16, "previous-hash");
}

#[tokio::test]
async fn damaged_records_are_never_served() {
    let original = original().await;
    let scratch = tempfile::tempdir().expect("scratch");
    let flipped = altered(original.path(), &scratch, "flipped", |log| {
        let mut bytes = record(log, 10);
        bytes[BODY_AT + 3] ^= 0x80;
        put(log, 10, bytes);
    });
    // Forced open (as a repair tool would): reads refuse the bad record.
    let options = SledOptions {
        check_tail_on_open: false,
        ..SledOptions::default()
    };
    let store = SledStore::open(&flipped, options).expect("forced open");
    match store.read_all(1, 100).await {
        Err(StoreError::Corrupt { position, .. }) => assert_eq!(position, 10),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(
        store
            .read_all(11, 100)
            .await
            .expect("records after it are fine")
            .len()
            == 50
    );
    let report = store.verify(&|_, _| {}).await.expect("verify");
    assert_eq!(report.failure.map(|f| f.0), Some(10));
}

#[test]
fn verify_dir_refuses_a_directory_without_a_store() {
    let dir = tempfile::tempdir().expect("dir");
    assert!(matches!(
        verify_dir(&dir.path().join("nothing"), &|_, _| {}),
        Err(StoreError::Unavailable(_))
    ));
}
