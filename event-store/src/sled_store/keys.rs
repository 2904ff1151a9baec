//! Key layout of the log tree. One tree holds everything the log needs so
//! that a whole batch is one atomic `apply_batch`:
//!
//! ```text
//! L | position BE                  -> record bytes (codec)
//! S | stream id | version BE       -> position BE
//! C | command id                   -> bincode AppendOutcome
//! H                                -> head position BE | head hash
//! ```

use uuid::Uuid;

use crate::record::{Hash, HASH_BYTES};
use crate::schema::StreamId;

/// Name of the sled tree that holds the log (side trees are `kv/<name>`).
pub const LOG_TREE: &str = "__log";

const RECORD: u8 = b'L';
const STREAM: u8 = b'S';
const COMMAND: u8 = b'C';
const HEAD: u8 = b'H';

/// Length of a record key.
pub const RECORD_KEY_BYTES: usize = 9;
/// Length of a head-meta value.
pub const HEAD_META_BYTES: usize = 8 + HASH_BYTES;

/// Prefix shared by every record key.
pub fn record_prefix() -> [u8; 1] {
    [RECORD]
}

/// Key of the record at `position`.
pub fn record_key(position: u64) -> [u8; RECORD_KEY_BYTES] {
    let mut k = [0u8; RECORD_KEY_BYTES];
    k[0] = RECORD;
    k[1..].copy_from_slice(&position.to_be_bytes());
    k
}

/// The position a record key names, if it is one.
pub fn parse_record_key(key: &[u8]) -> Option<u64> {
    if key.len() != RECORD_KEY_BYTES || key[0] != RECORD {
        return None;
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[1..]);
    Some(u64::from_be_bytes(b))
}

/// Prefix of every index key of one stream.
pub fn stream_prefix(stream: &StreamId) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = STREAM;
    k[1..].copy_from_slice(stream.as_bytes());
    k
}

/// Key of the index entry of `stream` at `version`.
pub fn stream_key(stream: &StreamId, version: u64) -> [u8; 25] {
    let mut k = [0u8; 25];
    k[..17].copy_from_slice(&stream_prefix(stream));
    k[17..].copy_from_slice(&version.to_be_bytes());
    k
}

/// The version a stream index key names.
pub fn parse_stream_key_version(key: &[u8]) -> Option<u64> {
    if key.len() != 25 || key[0] != STREAM {
        return None;
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[17..]);
    Some(u64::from_be_bytes(b))
}

/// A big-endian u64 value (a position in the stream index).
pub fn parse_u64(value: &[u8]) -> Option<u64> {
    let b: [u8; 8] = value.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// Key of a command's recorded outcome.
pub fn command_key(command: &Uuid) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = COMMAND;
    k[1..].copy_from_slice(command.as_bytes());
    k
}

/// Key of the head meta.
pub fn head_key() -> [u8; 1] {
    [HEAD]
}

/// The head meta: the last durable position and its record's hash.
pub fn head_meta(position: u64, hash: &Hash) -> [u8; HEAD_META_BYTES] {
    let mut v = [0u8; HEAD_META_BYTES];
    v[..8].copy_from_slice(&position.to_be_bytes());
    v[8..].copy_from_slice(hash);
    v
}

/// Parses a head meta value.
pub fn parse_head_meta(value: &[u8]) -> Option<(u64, Hash)> {
    if value.len() != HEAD_META_BYTES {
        return None;
    }
    let position = parse_u64(&value[..8])?;
    let mut hash = [0u8; HASH_BYTES];
    hash.copy_from_slice(&value[8..]);
    Some((position, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_sort_by_position() {
        assert!(record_key(255) < record_key(256));
        assert_eq!(parse_record_key(&record_key(42)), Some(42));
        assert_eq!(parse_record_key(&stream_key(&Uuid::nil(), 1)), None);
    }

    #[test]
    fn stream_keys_round_trip() {
        let s = Uuid::now_v7();
        assert_eq!(parse_stream_key_version(&stream_key(&s, 7)), Some(7));
        assert!(stream_key(&s, 9) < stream_key(&s, 10));
    }

    #[test]
    fn head_meta_round_trips() {
        let h = [7u8; HASH_BYTES];
        assert_eq!(parse_head_meta(&head_meta(9, &h)), Some((9, h)));
        assert_eq!(parse_head_meta(b"short"), None);
    }
}
