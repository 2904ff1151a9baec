//! Regressions found by fuzzing the record decoder (fuzz/record_decode):
//! a record whose checksum is right but whose body lies about a length
//! must be refused as `Corrupt`, not abort the process on allocation.

use chrono::DateTime;
use event_store::{codec, Actor, EventPayload, RecordedEvent, Role, StoreError, Visibility};
use uuid::Uuid;

fn record() -> RecordedEvent {
    RecordedEvent {
        position: 1,
        stream_id: Uuid::from_u128(6),
        stream_version: 1,
        event_id: Uuid::from_u128(7),
        command_id: Uuid::from_u128(8),
        request_fingerprint: None,
        correlation_id: Uuid::from_u128(9),
        tenant: "acme".into(),
        actor: Actor {
            user_id: Uuid::from_u128(1),
            role: Role::Agent,
        },
        recorded_at: DateTime::from_timestamp_micros(1_700_000_000_000_000).expect("in range"),
        schema_version: event_store::SCHEMA_VERSION,
        visibility: Visibility::Public,
        payload: EventPayload::ReadReceiptRecorded {
            user: Uuid::from_u128(1),
            position: 1,
        },
        prev_hash: [0; 32],
        hash: [0; 32],
    }
}

/// The body of `bytes` with the tenant's length prefix replaced by `len`
/// (bincode varint: 253 then a u64), sealed again with a valid checksum.
fn with_tenant_length(len: u64) -> Vec<u8> {
    let (bytes, _) = codec::encode(&record()).expect("encodes");
    let body = &bytes[39..];
    let at = body
        .windows(5)
        .position(|w| w == b"\x04acme")
        .expect("tenant in body");
    let mut forged = body[..at].to_vec();
    forged.push(253);
    forged.extend_from_slice(&len.to_le_bytes());
    forged.extend_from_slice(&body[at + 1..]);
    codec::seal(
        codec::FORMAT_BINCODE,
        event_store::SCHEMA_VERSION,
        &[0; 32],
        &forged,
    )
    .0
}

#[test]
fn huge_length_prefix_is_corrupt_not_an_abort() {
    for len in [u64::MAX, 0x000c_5e88_9347_1400, 1 << 40, 1 << 20] {
        let bytes = with_tenant_length(len);
        match codec::decode(1, &bytes) {
            Err(StoreError::Corrupt { position: 1, .. }) => {}
            other => panic!("length {len}: expected Corrupt, got {other:?}"),
        }
    }
}
