//! Copying a sled log into PostgreSQL (`PgStore::import_records`, what
//! `ticketlog migrate-store` runs): the records arrive byte for byte with
//! the rows the appends would have written, and a batch that does not
//! continue the database's log is refused with nothing written. Also the
//! side-tree listing and paging the copy of the side trees relies on.

mod common;

use std::sync::Arc;

use chrono::DateTime;
use common::*;
use event_store::codec::{self, RawRecord};
use event_store::sled_store::{keys, page, LOG_TREE};
use event_store::testing::postgres::{stored_records, PgServer};
use event_store::{
    AppendRequest, EventStore, ExpectedVersion, NewEvent, PgOptions, PgStore, SledOptions,
    SledStore, StoreError,
};
use uuid::Uuid;

const V1_FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1_records.bin");

/// Records per import batch in these tests: small, so that batches cut
/// between appends and a five-event append overruns one.
const TEST_BATCH_EVENTS: usize = 3;

/// The same appends, whatever store they go to: fixed ids and times, so
/// two stores that take them in order hold identical records.
fn script() -> Vec<AppendRequest> {
    let at = DateTime::from_timestamp_micros(1_700_000_000_000_000).expect("time");
    let mut n = 0u128;
    let mut id = || {
        n += 1;
        Uuid::from_u128(0x1000 + n)
    };
    let stream_a = id();
    let stream_b = id();
    let mut req = |stream, payloads: Vec<event_store::EventPayload>, fingerprint: Option<u8>| {
        let events = payloads
            .into_iter()
            .map(|payload| NewEvent {
                event_id: id(),
                ..NewEvent::new(payload)
            })
            .collect();
        AppendRequest {
            events,
            command_id: id(),
            correlation_id: id(),
            request_fingerprint: fingerprint.map(|b| [b; 32]),
            recorded_at: at,
            ..request(stream, ExpectedVersion::Any, vec![])
        }
    };
    vec![
        req(stream_a, vec![created(1)], Some(1)),
        req(stream_b, vec![created(2)], None),
        req(stream_b, vec![comment("b1")], Some(3)),
        req(
            stream_a,
            (0..5).map(|i| comment(&format!("burst {i}"))).collect(),
            Some(2),
        ),
        req(stream_a, vec![comment("a after burst")], None),
        req(stream_b, vec![comment("b2"), comment("b3")], Some(4)),
    ]
}

/// A sled store in `dir` holding `requests`, appended in order.
async fn sled_with(dir: &std::path::Path, requests: &[AppendRequest]) -> Arc<SledStore> {
    let store = SledStore::open(dir, SledOptions::default()).expect("open sled");
    for r in requests {
        store.append(r.clone()).await.expect("append to sled");
    }
    store
}

/// Every record of `store` as stored, through `read_raw` in batches of
/// `events_max`; checks that each batch holds whole appends.
fn raw_log(store: &SledStore, events_max: usize) -> Vec<Vec<RawRecord>> {
    let mut batches = Vec::new();
    let mut next = 1;
    loop {
        let batch = store
            .read_raw(next, events_max, usize::MAX)
            .expect("read_raw");
        let Some(last) = batch.last() else {
            return batches;
        };
        next = last.position + 1;
        batches.push(batch);
    }
}

async fn import_all(pg: &PgStore, batches: &[Vec<RawRecord>]) {
    for batch in batches {
        pg.import_records(batch.clone()).await.expect("import");
    }
}

/// A fresh PostgreSQL store of the test server.
async fn fresh_pg() -> (Arc<PgStore>, String) {
    let server = PgServer::shared().expect("start the test PostgreSQL");
    let url = server.fresh_database().expect("create a database");
    let store = PgStore::open(&url, PgOptions::default())
        .await
        .expect("open PostgreSQL store");
    (store, url)
}

/// A direct session on `url`, for looking at the tables.
async fn session(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

/// Each table of the log, every row as text, in order.
async fn tables(url: &str) -> Vec<String> {
    let client = session(url).await;
    let mut out = Vec::new();
    for table in ["log_head", "events", "streams", "commands"] {
        let sql = format!(
            "SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') FROM {table} t"
        );
        let row = client.query_one(&sql, &[]).await.expect("table");
        out.push(format!("{table}:\n{}", row.get::<_, String>(0)));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_writes_exactly_what_the_appends_wrote() {
    let requests = script();
    let dir = tempfile::tempdir().expect("dir");
    let sled = sled_with(dir.path(), &requests).await;
    // The same appends made on PostgreSQL directly...
    let (appended, appended_url) = fresh_pg().await;
    for r in &requests {
        appended
            .append(r.clone())
            .await
            .expect("append to PostgreSQL");
    }
    // ...and imported from sled in small batches of whole appends.
    let batches = raw_log(&sled, TEST_BATCH_EVENTS);
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![3, 5, 3], "batches end between appends");
    let (imported, imported_url) = fresh_pg().await;
    import_all(&imported, &batches).await;

    assert_eq!(tables(&imported_url).await, tables(&appended_url).await);
    let sled_records: Vec<RawRecord> = batches.concat();
    assert_eq!(stored_records(&imported_url).await, sled_records);
    let report = imported.verify(&|_, _| {}).await.expect("verify");
    assert!(report.ok() && report.records == 11, "{report:?}");

    // Idempotency survives the copy: a retry gets the first outcome, the
    // same id for another request is refused.
    let retry = imported.append(requests[3].clone()).await.expect("retry");
    let first = sled
        .find_command(requests[3].command_id)
        .await
        .expect("find");
    assert_eq!(Some(retry), first.map(|p| p.outcome));
    let reused = AppendRequest {
        request_fingerprint: Some([9; 32]),
        ..requests[3].clone()
    };
    assert!(matches!(
        imported.append(reused).await,
        Err(StoreError::CommandReused { .. })
    ));
    // And the log goes on from the imported head.
    let next = request(
        requests[0].stream_id,
        ExpectedVersion::Exact(7),
        vec![comment("on top")],
    );
    let outcome = imported.append(next).await.expect("append on top");
    assert_eq!((outcome.position, outcome.version), (12, 8));
    for store in [imported, appended] {
        store.close().await.expect("close");
    }
    sled.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn records_written_in_an_older_format_arrive_unchanged() {
    let dir = tempfile::tempdir().expect("dir");
    let fixture = v1_log(dir.path());
    let sled = SledStore::open(dir.path(), SledOptions::default()).expect("opens a v1 log");
    let on_top = AppendRequest {
        request_fingerprint: Some([5; 32]),
        ..request(Uuid::now_v7(), ExpectedVersion::NoStream, vec![created(99)])
    };
    sled.append(on_top).await.expect("append on top of v1");
    let batches = raw_log(&sled, TEST_BATCH_EVENTS);
    let records: Vec<RawRecord> = batches.concat();
    assert_eq!(records[..fixture], v1_fixture()[..], "read as stored");
    // Re-encoding the decoded records would not give these bytes back.
    let decoded = codec::decode(1, &records[0].bytes).expect("decodes");
    assert_ne!(
        codec::encode(&decoded).expect("encodes").0,
        records[0].bytes
    );

    let (pg, url) = fresh_pg().await;
    import_all(&pg, &batches).await;
    assert_eq!(stored_records(&url).await, records);
    let report = pg.verify(&|_, _| {}).await.expect("verify");
    assert!(
        report.ok() && report.records == records.len() as u64,
        "{report:?}"
    );
    assert_eq!(
        pg.read_all(1, 100).await.expect("read"),
        sled.read_all(1, 100).await.expect("read"),
        "both serve the same upcast records"
    );
    pg.close().await.expect("close");
    sled.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_that_does_not_continue_the_log_is_refused_and_writes_nothing() {
    let requests = script();
    let dir = tempfile::tempdir().expect("dir");
    let sled = sled_with(dir.path(), &requests).await;
    let batches = raw_log(&sled, TEST_BATCH_EVENTS);
    let (pg, url) = fresh_pg().await;
    import_all(&pg, &batches[..1]).await;
    let before = tables(&url).await;
    assert_eq!(pg.head_hash().await.expect("head").0, 3);

    // Another log of the same length: same positions, another chain.
    let other_dir = tempfile::tempdir().expect("dir");
    let others: Vec<AppendRequest> = (0..6)
        .map(|n| request(Uuid::now_v7(), ExpectedVersion::NoStream, vec![created(n)]))
        .collect();
    let other = sled_with(other_dir.path(), &others).await;
    let other_batches = raw_log(&other, TEST_BATCH_EVENTS);
    // A record of the current log, rewritten as the next one with `edit`.
    let last = pg.read_all(3, 1).await.expect("read").remove(0);
    let crafted = |edit: &dyn Fn(&mut event_store::RecordedEvent)| {
        let mut rec = event_store::RecordedEvent {
            position: 4,
            stream_version: last.stream_version + 1,
            event_id: Uuid::now_v7(),
            command_id: Uuid::now_v7(),
            prev_hash: last.hash,
            ..last.clone()
        };
        edit(&mut rec);
        vec![RawRecord {
            position: rec.position,
            bytes: codec::encode(&rec).expect("encode").0,
        }]
    };
    let mut flipped = batches[1].clone();
    let byte = flipped[0].bytes.len() - 1;
    flipped[0].bytes[byte] ^= 0xff;
    let cases: Vec<(&str, Vec<RawRecord>, &str)> = vec![
        (
            "the same batch again",
            batches[0].clone(),
            "ends at position 3",
        ),
        ("a batch after a gap", batches[2].clone(), "start at 9"),
        (
            "another log's records",
            other_batches[1].clone(),
            "holds another log",
        ),
        ("a damaged record", flipped, "checksum"),
        (
            "a command the log holds",
            crafted(&|r| r.command_id = requests[0].command_id),
            "in the database's log already",
        ),
        (
            "a stream version skipped",
            crafted(&|r| r.stream_version += 1),
            "has version",
        ),
        (
            "another tenant on the stream",
            crafted(&|r| r.tenant = "other".into()),
            "changes the kind or tenant",
        ),
    ];
    for (what, batch, expected) in cases {
        match pg.import_records(batch).await {
            Err(e) => assert!(e.to_string().contains(expected), "{what}: {e}"),
            Ok(head) => panic!("{what}: imported up to {head}"),
        }
        assert_eq!(tables(&url).await, before, "{what}: nothing written");
    }
    // The right next batch still goes in.
    assert_eq!(
        pg.import_records(batches[1].clone()).await.expect("next"),
        8
    );
    for store in [sled, other] {
        store.close().await.expect("close");
    }
    pg.close().await.expect("close");
}

both_stores!(side_trees_are_listed_and_walked_in_pages);
async fn side_trees_are_listed_and_walked_in_pages(backend: Backend) {
    let f = backend.fresh().await;
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = (0u8..7)
        .map(|i| (vec![b'k', i], vec![i; usize::from(i) + 1]))
        .collect();
    entries.push((vec![0xff], b"high".to_vec()));
    for name in ["users", "projections"] {
        let tree = f.kv.tree(name).expect("tree");
        let writes = entries.iter().map(|(k, v)| (k.clone(), Some(v.clone())));
        tree.apply(writes.collect()).expect("apply");
    }
    let names = f.kv.tree_names().expect("names");
    assert_eq!(names, vec!["projections".to_string(), "users".to_string()]);
    let tree = f.kv.tree("users").expect("tree");
    let mut walked = Vec::new();
    let mut start = Vec::new();
    loop {
        let page = tree.scan_from(&start, 3).expect("page");
        let Some((last, _)) = page.last() else { break };
        start = last.clone();
        start.push(0);
        walked.extend(page);
    }
    assert_eq!(walked, entries);
    assert_eq!(
        tree.scan_from(&[b'k', 5], 2).expect("from k5"),
        entries[5..7]
    );
}

/// Writes the committed v1 fixture as the start of a sled log in `dir`
/// (as the upcast test does); returns how many records it holds.
fn v1_log(dir: &std::path::Path) -> usize {
    let records = v1_fixture();
    let db = sled::open(dir).expect("raw sled");
    let log = db.open_tree(LOG_TREE).expect("log");
    let last_hash: [u8; 32] = records.last().expect("records").bytes[5..37]
        .try_into()
        .expect("hash");
    let frames: Vec<&Vec<u8>> = records.iter().map(|r| &r.bytes).collect();
    log.insert(keys::page_key(1), page::encode(&frames))
        .expect("page");
    log.insert(keys::layout_key(), &keys::layout_value()[..])
        .expect("layout");
    let head = records.len() as u64;
    log.insert(keys::head_key(), &keys::head_meta(head, &last_hash)[..])
        .expect("head");
    db.flush().expect("flush");
    records.len()
}

/// The fixture's records (per record: u32 LE length, then its bytes).
fn v1_fixture() -> Vec<RawRecord> {
    let bytes = std::fs::read(V1_FIXTURE).expect("committed fixture");
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("length")) as usize;
        at += 4;
        out.push(RawRecord {
            position: out.len() as u64 + 1,
            bytes: bytes[at..at + len].to_vec(),
        });
        at += len;
    }
    out
}
