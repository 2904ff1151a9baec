//! The bytes of one stored snapshot, with a checksum.
//!
//! ```text
//! [0]       format byte (FORMAT_V1)
//! [1..5]    crc32c (LE) of bytes [5..]
//! [5..7]    snapshot schema version (LE u16) of the body
//! [7..15]   stream version (aggregates) or log position (blobs), LE u64
//! [15..47]  hash of the last event folded in (zeroes for blobs)
//! [47..]    body: bincode 2 (standard config) of the state, or raw blob bytes
//! ```

use event_store::record::{Hash, HASH_BYTES};

/// The only envelope format written today.
pub const FORMAT_V1: u8 = 1;

const CRC_AT: usize = 1;
const SCHEMA_AT: usize = 5;
const VERSION_AT: usize = 7;
const HASH_AT: usize = 15;
const BODY_AT: usize = HASH_AT + HASH_BYTES;

/// A decoded envelope whose checksum matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Snapshot schema version of the body.
    pub schema_version: u16,
    /// Stream version or log position the body reflects.
    pub version: u64,
    /// Hash of the last event folded in.
    pub last_hash: Hash,
    /// The body.
    pub body: Vec<u8>,
}

impl Envelope {
    /// The bytes to store.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BODY_AT + self.body.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.schema_version.to_le_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.last_hash);
        out.extend_from_slice(&self.body);
        let crc = crc32c::crc32c(&out[SCHEMA_AT..]);
        out[CRC_AT..SCHEMA_AT].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes stored bytes; the error says why they are unusable.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, String> {
        if bytes.len() < BODY_AT {
            return Err(format!("truncated: {} bytes", bytes.len()));
        }
        if bytes[0] != FORMAT_V1 {
            return Err(format!("unknown format byte {}", bytes[0]));
        }
        let stored = u32::from_le_bytes(array(&bytes[CRC_AT..SCHEMA_AT]));
        let actual = crc32c::crc32c(&bytes[SCHEMA_AT..]);
        if stored != actual {
            return Err(format!(
                "checksum mismatch: stored {stored:08x}, actual {actual:08x}"
            ));
        }
        Ok(Envelope {
            schema_version: u16::from_le_bytes(array(&bytes[SCHEMA_AT..VERSION_AT])),
            version: u64::from_le_bytes(array(&bytes[VERSION_AT..HASH_AT])),
            last_hash: array(&bytes[HASH_AT..BODY_AT]),
            body: bytes[BODY_AT..].to_vec(),
        })
    }
}

/// Copies a slice whose length the caller checked into an array.
fn array<const N: usize>(slice: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&slice[..N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            schema_version: 3,
            version: 42,
            last_hash: [7; HASH_BYTES],
            body: b"state".to_vec(),
        }
    }

    #[test]
    fn round_trips() {
        let e = sample();
        assert_eq!(Envelope::decode(&e.encode()), Ok(e));
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let bytes = sample().encode();
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(Envelope::decode(&bad).is_err(), "bit {i} flip undetected");
        }
    }

    #[test]
    fn truncation_is_detected() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(
                Envelope::decode(&bytes[..len]).is_err(),
                "truncated to {len} undetected"
            );
        }
    }
}
