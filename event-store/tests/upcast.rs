//! Schema evolution: records written by schema version 1 (a committed
//! fixture) decode, chain and upcast to the current payloads.
//!
//! The fixture is regenerated (only if the v1 format itself was wrong) with
//! `cargo test -p event-store --test upcast -- --ignored generate_v1_fixture`.

use chrono::DateTime;
use event_store::codec;
use event_store::sled_store::{keys, page, LOG_TREE};
use event_store::upcast::{EventPayloadV1, TicketCreatedV1};
use event_store::{
    Actor, EventStore, ExpectedVersion, Hash, NewEvent, Priority, Role, SledOptions, SledStore,
    TicketKind, TicketStatus, Visibility,
};
use serde::Serialize;
use uuid::Uuid;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1_records.bin");

/// The v1 body layout, field for field (bincode writes fields in order).
#[derive(Serialize)]
struct BodyV1 {
    position: u64,
    stream_id: Uuid,
    stream_version: u64,
    event_id: Uuid,
    command_id: Uuid,
    correlation_id: Uuid,
    tenant: String,
    actor: Actor,
    recorded_at_micros: i64,
    visibility: Visibility,
    prev_hash: Hash,
    payload: EventPayloadV1,
}

fn v1_payloads() -> Vec<(EventPayloadV1, Visibility)> {
    let customer = Uuid::from_u128(0xC0);
    let agent = Uuid::from_u128(0xA0);
    vec![
        (
            EventPayloadV1::TicketCreated(TicketCreatedV1 {
                number: 1,
                title: "VPN drops every hour".into(),
                description: "Since the update the VPN disconnects hourly.".into(),
                priority: Priority::High,
                kind: TicketKind::Incident,
                reporter: customer,
                site: Some("Lyon HQ".into()),
            }),
            Visibility::Public,
        ),
        (
            EventPayloadV1::TicketEdited {
                title: None,
                description: None,
                priority: Some(Priority::Critical),
            },
            Visibility::Public,
        ),
        (
            EventPayloadV1::TicketAssigned {
                assignee: agent,
                previous: None,
            },
            Visibility::Public,
        ),
        (
            EventPayloadV1::TicketStatusChanged {
                from: TicketStatus::Open,
                to: TicketStatus::Assigned,
                note: None,
            },
            Visibility::Public,
        ),
        (
            EventPayloadV1::CommentPosted {
                body: "Can you send the client logs?".into(),
                internal: false,
            },
            Visibility::Public,
        ),
        (
            EventPayloadV1::CommentPosted {
                body: "Known issue with client 4.2, see KB-12.".into(),
                internal: true,
            },
            Visibility::Internal,
        ),
    ]
}

/// The fixture's records, `(position, bytes)`, chained from position 1.
fn v1_records() -> Vec<(u64, Vec<u8>)> {
    let stream = Uuid::from_u128(0x7111);
    let mut prev_hash = [0u8; 32];
    let mut out = Vec::new();
    for (i, (payload, visibility)) in v1_payloads().into_iter().enumerate() {
        let n = i as u64 + 1;
        let body = BodyV1 {
            position: n,
            stream_id: stream,
            stream_version: n,
            event_id: Uuid::from_u128(0xE000 + n as u128),
            command_id: Uuid::from_u128(0xC000 + n as u128),
            correlation_id: Uuid::from_u128(0xD000 + n as u128),
            tenant: "demo".into(),
            actor: Actor {
                user_id: if n == 1 {
                    Uuid::from_u128(0xC0)
                } else {
                    Uuid::from_u128(0xA0)
                },
                role: if n == 1 { Role::Customer } else { Role::Agent },
            },
            recorded_at_micros: 1_700_000_000_000_000 + n as i64 * 60_000_000,
            visibility,
            prev_hash,
            payload,
        };
        let bytes =
            bincode::serde::encode_to_vec(&body, bincode::config::standard()).expect("encode v1");
        let (record, hash) = codec::seal(codec::FORMAT_BINCODE_V1, 1, &prev_hash, &bytes);
        prev_hash = hash;
        out.push((n, record));
    }
    out
}

/// File format: per record, u32 LE length then the record bytes.
fn read_fixture() -> Vec<(u64, Vec<u8>)> {
    let bytes = std::fs::read(FIXTURE).expect("committed fixture");
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("length")) as usize;
        at += 4;
        out.push((out.len() as u64 + 1, bytes[at..at + len].to_vec()));
        at += len;
    }
    out
}

#[test]
#[ignore = "writes the committed fixture; run only to regenerate it"]
fn generate_v1_fixture() {
    let mut file = Vec::new();
    for (_, record) in v1_records() {
        file.extend_from_slice(&(record.len() as u32).to_le_bytes());
        file.extend_from_slice(&record);
    }
    std::fs::write(FIXTURE, file).expect("write fixture");
}

#[test]
fn v1_fixture_decodes_chains_and_upcasts() {
    let records = read_fixture();
    assert_eq!(records.len(), v1_payloads().len());
    let mut prev_hash = [0u8; 32];
    let mut decoded = Vec::new();
    for (position, bytes) in &records {
        let rec = codec::decode(*position, bytes).expect("v1 record decodes");
        assert_eq!(rec.schema_version, 1);
        assert_eq!(rec.prev_hash, prev_hash);
        prev_hash = codec::check_hash(*position, bytes, &prev_hash).expect("chain holds");
        let mut json = rec.to_json(true);
        json["schema_version"] = rec.schema_version.into();
        decoded.push(json);
    }
    insta::assert_json_snapshot!("v1_upcast", decoded);
    // The generator still produces exactly the committed bytes: the v1 layout is pinned.
    assert_eq!(v1_records(), records);
}

#[tokio::test]
async fn a_store_holding_v1_records_serves_them_upcast_and_appends_on_top() {
    let dir = tempfile::tempdir().expect("dir");
    let records = read_fixture();
    let stream = Uuid::from_u128(0x7111);
    {
        let db = sled::open(dir.path()).expect("raw sled");
        let log = db.open_tree(LOG_TREE).expect("log");
        // One page holding the v1 records; no index keys: the store indexes
        // them from the log when it opens.
        let mut last_hash = [0u8; 32];
        for (i, (position, bytes)) in records.iter().enumerate() {
            assert_eq!(*position, i as u64 + 1, "the fixture starts the log");
            last_hash.copy_from_slice(&bytes[5..37]);
        }
        let frames: Vec<&Vec<u8>> = records.iter().map(|(_, b)| b).collect();
        log.insert(keys::page_key(1), page::encode(&frames))
            .expect("page");
        log.insert(keys::layout_key(), &keys::layout_value()[..])
            .expect("layout");
        let head = records.len() as u64;
        log.insert(keys::head_key(), &keys::head_meta(head, &last_hash)[..])
            .expect("head");
        db.flush().expect("flush");
    }
    let store = SledStore::open(dir.path(), SledOptions::default()).expect("opens a v1 log");
    let events = store.read_stream(stream, 1, 100).await.expect("read");
    assert_eq!(events.len(), 6);
    assert!(matches!(
        &events[0].payload,
        event_store::EventPayload::TicketCreated { location: Some(l), tags, .. }
            if l.site.as_deref() == Some("Lyon HQ") && tags.is_empty()
    ));
    assert_eq!(events[5].visibility, Visibility::Internal);
    let outcome = store
        .append(event_store::AppendRequest {
            stream_id: stream,
            expected: ExpectedVersion::Exact(6),
            events: vec![NewEvent::new(event_store::EventPayload::CommentPosted {
                comment_id: Uuid::now_v7(),
                body: "Fixed by client 4.3".into(),
                internal: false,
            })],
            command_id: Uuid::now_v7(),
            request_fingerprint: None,
            correlation_id: Uuid::now_v7(),
            tenant: "demo".into(),
            actor: Actor {
                user_id: Uuid::from_u128(0xA0),
                role: Role::Agent,
            },
            recorded_at: DateTime::from_timestamp_micros(1_700_000_999_000_000).expect("time"),
        })
        .await
        .expect("append on top of v1");
    assert_eq!((outcome.position, outcome.version), (7, 7));
    let report = store.verify(&|_, _| {}).await.expect("verify");
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.records, 7);
}
