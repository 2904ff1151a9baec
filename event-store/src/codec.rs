//! The on-disk record format, independent of the backend that stores it.
//!
//! ```text
//! [0]       format byte (FORMAT_BINCODE, or FORMAT_BINCODE_V1 when read)
//! [1..5]    crc32c (LE) of bytes [5..]
//! [5..37]   BLAKE3 hash: domain || prev_hash || schema version || body
//! [37..39]  schema version (LE u16) of the body
//! [39..]    body: bincode 2 (standard config) of the record fields, then
//!           (format 2 only) the request fingerprint as a bincode `Option<Hash>`
//! ```
//!
//! Format 2 added the fingerprint after the fields, so the hash covers it;
//! format 1 records (written before it) decode with none. Neither body
//! parses as the other: decoding refuses trailing bytes and a missing tail.
//!
//! The checksum catches torn or flipped bytes cheaply on every read; the
//! hash chain (each body carries the previous record's hash) catches
//! deliberate edits, deletions and reordering when `verify` walks the log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;
use crate::limits::RECORD_BYTES_MAX;
use crate::record::{Actor, Hash, RecordedEvent, Visibility, HASH_BYTES};
use crate::schema::{EventPayload, StreamId, SCHEMA_VERSION};
use crate::upcast;

/// Format byte of records written before request fingerprints: the
/// bincode body alone. Read, never written.
pub const FORMAT_BINCODE_V1: u8 = 1;
/// The format byte written today: the bincode body (standard config), then
/// the request fingerprint that binds the record's command id to its request.
pub const FORMAT_BINCODE: u8 = 2;
/// Domain separation for record hashes, so they can never collide with
/// another use of BLAKE3 over the same bytes.
pub const HASH_DOMAIN: &[u8] = b"ticketlog/record/v1\0";

const CRC_AT: usize = 1;
const HASH_AT: usize = 5;
const SCHEMA_AT: usize = HASH_AT + HASH_BYTES;
const BODY_AT: usize = SCHEMA_AT + 2;

/// The record fields as written (borrowed, so encoding copies nothing).
#[derive(Serialize)]
struct BodyRef<'a> {
    position: u64,
    stream_id: &'a StreamId,
    stream_version: u64,
    event_id: &'a Uuid,
    command_id: &'a Uuid,
    correlation_id: &'a Uuid,
    tenant: &'a str,
    actor: &'a Actor,
    recorded_at_micros: i64,
    visibility: Visibility,
    prev_hash: &'a Hash,
    payload: &'a EventPayload,
}

impl<'a> BodyRef<'a> {
    /// The fields of `rec` that its stored body holds (all but the hashes
    /// it is framed with and the schema version it is written in).
    fn of(rec: &'a RecordedEvent) -> Self {
        BodyRef {
            position: rec.position,
            stream_id: &rec.stream_id,
            stream_version: rec.stream_version,
            event_id: &rec.event_id,
            command_id: &rec.command_id,
            correlation_id: &rec.correlation_id,
            tenant: &rec.tenant,
            actor: &rec.actor,
            recorded_at_micros: rec.recorded_at.timestamp_micros(),
            visibility: rec.visibility,
            prev_hash: &rec.prev_hash,
            payload: &rec.payload,
        }
    }
}

/// The record fields as read; `P` is the payload type of the schema version.
#[derive(Deserialize)]
pub(crate) struct Body<P> {
    pub(crate) position: u64,
    pub(crate) stream_id: StreamId,
    pub(crate) stream_version: u64,
    pub(crate) event_id: Uuid,
    pub(crate) command_id: Uuid,
    pub(crate) correlation_id: Uuid,
    pub(crate) tenant: String,
    pub(crate) actor: Actor,
    pub(crate) recorded_at_micros: i64,
    pub(crate) visibility: Visibility,
    pub(crate) prev_hash: Hash,
    pub(crate) payload: P,
}

fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes any serde value with the store's bincode configuration.
#[cfg(test)]
pub(crate) fn to_bincode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    bincode::serde::encode_to_vec(value, bincode_config())
        .map_err(|e| StoreError::Invalid(format!("cannot encode: {e}")))
}

/// Decodes a serde value encoded with the store's bincode configuration.
/// Length prefixes are claimed against [`RECORD_BYTES_MAX`] before bincode
/// allocates for them: without a limit a corrupt length that passes the
/// checksum (or a crafted one) aborts the process on allocation (found by
/// fuzz/record_decode). Trailing bytes are refused.
pub(crate) fn from_bincode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    let config = bincode_config().with_limit::<RECORD_BYTES_MAX>();
    let (value, read) =
        bincode::serde::decode_from_slice(bytes, config).map_err(|e| e.to_string())?;
    // Bytes the body does not account for are not ours to ignore: the
    // writer never leaves any, so they mean damage or forgery.
    if read != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the body",
            bytes.len() - read
        ));
    }
    Ok(value)
}

/// The hash of a record whose schema version and body bytes are given.
pub fn record_hash(prev_hash: &Hash, schema_version: u16, body: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(HASH_DOMAIN);
    h.update(prev_hash);
    h.update(&schema_version.to_le_bytes());
    h.update(body);
    *h.finalize().as_bytes()
}

/// Encodes `rec` (its `hash` field is ignored) chained to `rec.prev_hash`.
/// Returns the bytes to store and the record's hash.
pub fn encode(rec: &RecordedEvent) -> Result<(Vec<u8>, Hash), StoreError> {
    let mut out = Vec::new();
    let hash = encode_into(rec, &mut out)?;
    Ok((out, hash))
}

/// Appends the stored bytes of `rec` (as [`encode`]) to `out`, encoding in
/// place (the writer fills a whole page this way, without a copy per
/// record). Returns the record's hash; on error `out` is left as it was.
pub fn encode_into(rec: &RecordedEvent, out: &mut Vec<u8>) -> Result<Hash, StoreError> {
    let start = out.len();
    out.push(FORMAT_BINCODE);
    out.extend_from_slice(&[0; BODY_AT - 1]);
    out[start + SCHEMA_AT..start + BODY_AT].copy_from_slice(&SCHEMA_VERSION.to_le_bytes());
    let framed = (BodyRef::of(rec), rec.request_fingerprint.as_ref());
    if let Err(e) = bincode::serde::encode_into_std_write(framed, out, bincode_config()) {
        out.truncate(start);
        return Err(StoreError::Invalid(format!("cannot encode: {e}")));
    }
    let record = &mut out[start..];
    let hash = record_hash(&rec.prev_hash, SCHEMA_VERSION, &record[BODY_AT..]);
    record[HASH_AT..SCHEMA_AT].copy_from_slice(&hash);
    let crc = crc32c::crc32c(&record[HASH_AT..]);
    record[CRC_AT..HASH_AT].copy_from_slice(&crc.to_le_bytes());
    Ok(hash)
}

/// Frames an already encoded body (everything after the header, in
/// `format`): header, checksum and hash. Used by tests that write records
/// in an older format or schema version.
pub fn seal(format: u8, schema_version: u16, prev_hash: &Hash, body: &[u8]) -> (Vec<u8>, Hash) {
    let hash = record_hash(prev_hash, schema_version, body);
    let mut out = Vec::with_capacity(BODY_AT + body.len());
    out.push(format);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&hash);
    out.extend_from_slice(&schema_version.to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32c::crc32c(&out[HASH_AT..]);
    out[CRC_AT..HASH_AT].copy_from_slice(&crc.to_le_bytes());
    (out, hash)
}

/// A record as a backend stores it: its position and its bytes in this
/// format, untouched (for copying a log from one backend to another
/// without re-encoding: an upcast or format 1 record would not come back
/// the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// The position it is stored under.
    pub position: u64,
    /// Its stored bytes.
    pub bytes: Vec<u8>,
}

/// Whether `next` starts another append than `prev`, its predecessor in
/// the log: an append is a run of records with one command id, on one
/// stream, at consecutive versions (a command id appends once).
pub fn starts_append(prev: &RecordedEvent, next: &RecordedEvent) -> bool {
    prev.command_id != next.command_id
        || prev.stream_id != next.stream_id
        || prev.stream_version + 1 != next.stream_version
}

fn corrupt(position: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        position,
        reason: reason.into(),
    }
}

/// Decodes a stored record, checking format, size, checksum and that it
/// claims the `position` it was stored under. Upcasts older schema versions.
/// The hash is carried, not recomputed: [`check_hash`] does that.
pub fn decode(position: u64, bytes: &[u8]) -> Result<RecordedEvent, StoreError> {
    if bytes.len() < BODY_AT || bytes.len() > RECORD_BYTES_MAX {
        return Err(corrupt(
            position,
            format!("record of {} bytes", bytes.len()),
        ));
    }
    let format = bytes[0];
    if format != FORMAT_BINCODE && format != FORMAT_BINCODE_V1 {
        return Err(corrupt(position, format!("unknown format byte {format}")));
    }
    let mut crc_bytes = [0u8; 4];
    crc_bytes.copy_from_slice(&bytes[CRC_AT..HASH_AT]);
    if u32::from_le_bytes(crc_bytes) != crc32c::crc32c(&bytes[HASH_AT..]) {
        return Err(corrupt(position, "checksum mismatch"));
    }
    let mut hash = [0u8; HASH_BYTES];
    hash.copy_from_slice(&bytes[HASH_AT..SCHEMA_AT]);
    let schema_version = u16::from_le_bytes([bytes[SCHEMA_AT], bytes[SCHEMA_AT + 1]]);
    let body = &bytes[BODY_AT..];
    let (body, request_fingerprint) = if format == FORMAT_BINCODE {
        upcast::decode_body::<Option<Hash>>(schema_version, body)
    } else {
        upcast::decode_body::<()>(schema_version, body).map(|(body, ())| (body, None))
    }
    .map_err(|e| corrupt(position, e))?;
    if body.position != position {
        return Err(corrupt(
            position,
            format!("record claims position {}", body.position),
        ));
    }
    let recorded_at = DateTime::<Utc>::from_timestamp_micros(body.recorded_at_micros)
        .ok_or_else(|| corrupt(position, "timestamp out of range"))?;
    Ok(RecordedEvent {
        position: body.position,
        stream_id: body.stream_id,
        stream_version: body.stream_version,
        event_id: body.event_id,
        command_id: body.command_id,
        request_fingerprint,
        correlation_id: body.correlation_id,
        tenant: body.tenant,
        actor: body.actor,
        recorded_at,
        schema_version,
        visibility: body.visibility,
        payload: body.payload,
        prev_hash: body.prev_hash,
        hash,
    })
}

/// Recomputes a stored record's hash from its bytes and compares it with
/// the hash it carries. Assumes `decode` already accepted the bytes.
pub fn check_hash(position: u64, bytes: &[u8], prev_hash: &Hash) -> Result<Hash, StoreError> {
    if bytes.len() < BODY_AT {
        return Err(corrupt(position, "record too short"));
    }
    let schema_version = u16::from_le_bytes([bytes[SCHEMA_AT], bytes[SCHEMA_AT + 1]]);
    let computed = record_hash(prev_hash, schema_version, &bytes[BODY_AT..]);
    if computed[..] != bytes[HASH_AT..SCHEMA_AT] {
        return Err(corrupt(position, "hash chain broken"));
    }
    Ok(computed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;
    use crate::record::Visibility;
    use crate::schema::EventPayload;

    #[test]
    fn encoding_in_place_equals_sealing_the_encoded_body() {
        let rec = RecordedEvent {
            request_fingerprint: Some([8; HASH_BYTES]),
            ..decode_sample()
        };
        let body = to_bincode(&(BodyRef::of(&rec), rec.request_fingerprint)).expect("body");
        let sealed = seal(FORMAT_BINCODE, SCHEMA_VERSION, &rec.prev_hash, &body);
        let mut out = b"prefix".to_vec();
        let hash = encode_into(&rec, &mut out).expect("encodes");
        assert_eq!((&out[6..], hash), (&sealed.0[..], sealed.1));
        let back = decode(7, &out[6..]).expect("decodes");
        assert_eq!(back, RecordedEvent { hash, ..rec });

        // The same body with one byte more, sealed with a valid checksum and
        // hash, is refused rather than decoded with the byte ignored.
        let mut longer = body.clone();
        longer.push(0);
        let (resealed, _) = seal(FORMAT_BINCODE, SCHEMA_VERSION, &rec.prev_hash, &longer);
        match decode(7, &resealed) {
            Err(StoreError::Corrupt { reason, .. }) => {
                assert!(reason.contains("1 trailing bytes"), "{reason}")
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn format_1_records_decode_without_a_fingerprint_and_formats_never_cross() {
        let mut rec = decode_sample();
        let old_body = to_bincode(&BodyRef::of(&rec)).expect("body");
        let (old, old_hash) = seal(FORMAT_BINCODE_V1, SCHEMA_VERSION, &rec.prev_hash, &old_body);
        let back = decode(7, &old).expect("a format 1 record decodes");
        assert_eq!(back.request_fingerprint, None);
        assert_eq!(back.hash, old_hash);
        assert_eq!(
            check_hash(7, &old, &rec.prev_hash).expect("chain"),
            old_hash
        );

        // The same record with a fingerprint is written in format 2 and
        // keeps it; the same bytes under the other format byte are refused.
        rec.request_fingerprint = Some([1; HASH_BYTES]);
        let (new, _) = encode(&rec).expect("encodes");
        assert_eq!(new[0], FORMAT_BINCODE);
        let back = decode(7, &new).expect("decodes");
        assert_eq!(back.request_fingerprint, Some([1; HASH_BYTES]));
        for (bytes, format) in [(&old, FORMAT_BINCODE), (&new, FORMAT_BINCODE_V1)] {
            let (forged, _) = seal(format, SCHEMA_VERSION, &rec.prev_hash, &bytes[BODY_AT..]);
            assert!(
                matches!(decode(7, &forged), Err(StoreError::Corrupt { .. })),
                "format {format}"
            );
        }
    }

    /// A record as decoded at position 7 (without a fingerprint).
    fn decode_sample() -> RecordedEvent {
        RecordedEvent {
            position: 7,
            stream_id: Uuid::from_u128(1),
            stream_version: 3,
            event_id: Uuid::from_u128(2),
            command_id: Uuid::from_u128(3),
            request_fingerprint: None,
            correlation_id: Uuid::from_u128(4),
            tenant: "demo".into(),
            actor: Actor {
                user_id: Uuid::from_u128(5),
                role: Role::Agent,
            },
            recorded_at: DateTime::from_timestamp_micros(1_700_000_000_000_000).expect("time"),
            schema_version: SCHEMA_VERSION,
            visibility: Visibility::Public,
            payload: EventPayload::CommentPosted {
                comment_id: Uuid::from_u128(6),
                body: "hello".into(),
                internal: false,
            },
            prev_hash: [9; HASH_BYTES],
            hash: [0; HASH_BYTES],
        }
    }
}
