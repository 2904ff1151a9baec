//! The record decoder (`event_store::codec::decode`) and the page framing
//! (`sled_store::page::frames`) on arbitrary bytes.
//!
//! Invariants: no panic, no hang; every refusal is `StoreError::Corrupt` at
//! the position asked for; whatever decodes re-encodes to bytes that decode
//! to the same record (`decode(encode(r)) == r`, compared on the encoded
//! bytes so NaN coordinates compare equal), with a hash `check_hash` agrees
//! with.
#![no_main]

use event_store::codec;
use event_store::sled_store::page;
use event_store::{RecordedEvent, StoreError};
use libfuzzer_sys::fuzz_target;
use ticketlog_fuzz::record_mode;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        record_mode::RAW => raw(rest),
        record_mode::SEALED_BODY => sealed_body(rest),
        _ => page_of_records(rest),
    }
});

/// Position the input claims (bincode's varint u64 at the start of the
/// body), so decoding gets past the position check and round-trips run.
fn claimed_position(body: &[u8]) -> u64 {
    let le = |n: usize| -> u64 {
        let mut b = [0u8; 8];
        if let Some(src) = body.get(1..1 + n) {
            b[..n].copy_from_slice(src);
        }
        u64::from_le_bytes(b)
    };
    match body.first() {
        None => 0,
        Some(&b) if b < 251 => u64::from(b),
        Some(251) => le(2),
        Some(252) => le(4),
        Some(_) => le(8),
    }
}

fn raw(bytes: &[u8]) {
    let position = 1 + u64::from(bytes.len() as u32 % 7);
    if let Some(rec) = checked_decode(position, bytes) {
        // The hash is carried as stored.
        assert_eq!(&rec.hash[..], &bytes[5..37]);
        let _ = codec::check_hash(position, bytes, &rec.prev_hash);
        round_trip(&rec);
    }
}

fn sealed_body(rest: &[u8]) {
    let Some((version, body)) = rest.split_first_chunk::<2>() else {
        return;
    };
    // Mostly current and v1 bodies; sometimes any version number.
    let version = match version[0] % 4 {
        0 | 1 => event_store::SCHEMA_VERSION,
        2 => 1,
        _ => u16::from_le_bytes(*version),
    };
    // Both record formats: with a request fingerprint after the body, and without.
    let format = if rest[1] & 1 == 0 {
        codec::FORMAT_BINCODE
    } else {
        codec::FORMAT_BINCODE_V1
    };
    let prev = [7u8; 32];
    let (bytes, hash) = codec::seal(format, version, &prev, body);
    let position = claimed_position(body);
    if let Some(rec) = checked_decode(position, &bytes) {
        assert_eq!(rec.hash, hash);
        assert_eq!(rec.schema_version, version);
        let checked = codec::check_hash(position, &bytes, &prev).expect("sealed hash checks");
        assert_eq!(checked, hash);
        round_trip(&rec);
    }
}

fn page_of_records(page_bytes: &[u8]) {
    let mut frames = 0usize;
    let mut position = 1u64;
    let mut prev = [0u8; 32];
    for frame in page::frames(page_bytes) {
        frames += 1;
        // Every frame eats its 4-byte length, and an error ends the page.
        assert!(frames <= page_bytes.len() / page::FRAME_LENGTH_BYTES + 1);
        let Ok(bytes) = frame else {
            continue;
        };
        if let Some(rec) = checked_decode(position, bytes) {
            if let Ok(h) = codec::check_hash(position, bytes, &prev) {
                assert_eq!(h, rec.hash);
            }
            prev = rec.hash;
            round_trip(&rec);
        }
        position += 1;
    }
    // Framing what came out gives the page back.
    let records: Vec<&[u8]> = page::frames(page_bytes).map_while(Result::ok).collect();
    let rebuilt = page::encode(&records);
    assert!(page_bytes.starts_with(&rebuilt));
}

/// Decodes, checking that a refusal is typed and names `position`.
fn checked_decode(position: u64, bytes: &[u8]) -> Option<RecordedEvent> {
    match codec::decode(position, bytes) {
        Ok(rec) => {
            assert_eq!(rec.position, position);
            Some(rec)
        }
        Err(StoreError::Corrupt { position: p, .. }) => {
            assert_eq!(p, position);
            None
        }
        Err(other) => panic!("decode refused with a non-Corrupt error: {other:?}"),
    }
}

/// `decode(encode(r)) == r`, on the encoded bytes (exact, NaN included).
fn round_trip(rec: &RecordedEvent) {
    let (bytes, hash) = codec::encode(rec).expect("a decoded record encodes");
    let again = codec::decode(rec.position, &bytes).expect("an encoded record decodes");
    assert_eq!(again.hash, hash);
    assert_eq!(again.schema_version, event_store::SCHEMA_VERSION);
    let (bytes_again, hash_again) = codec::encode(&again).expect("re-encodes");
    assert_eq!(bytes, bytes_again, "re-encoding changed the record");
    assert_eq!(hash, hash_again);
    assert_eq!(
        codec::check_hash(rec.position, &bytes, &rec.prev_hash).expect("own hash checks"),
        hash
    );
    // Field by field too, when no float is NaN (NaN != NaN).
    if format!("{:?}", rec.payload).contains("NaN") {
        return;
    }
    let mut expected = rec.clone();
    expected.hash = hash;
    expected.schema_version = event_store::SCHEMA_VERSION;
    assert_eq!(again, expected);
}
