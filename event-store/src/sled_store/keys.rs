//! Key layout of the log tree. One tree holds everything the log needs so
//! that a whole group commit is one atomic `apply_batch`:
//!
//! ```text
//! L | first position BE               -> page: records from that position on (page.rs)
//! H                                   -> head position BE | head record hash
//! V                                   -> layout version (u32 BE)
//! X                                   -> indexed-through position BE
//! S | stream id | last version BE     -> stream run (index.rs)
//! C | command id[..6] | chunk end BE  -> command bucket (index.rs)
//! ```
//!
//! A group commit writes its pages and `H`: a few keys for dozens of
//! appends. The stream index (`S`) and the command index (`C`) are derived
//! from the records; they cover positions `1..=X` and are written in
//! coalesced chunks by the indexer thread, in small batches whose last one
//! moves `X`. Positions after `X` are indexed in memory and rebuilt from the
//! log when the store opens (runs a crash left beyond `X` are written again
//! and read once). A stream run holds one stream's appends within one chunk;
//! a command bucket holds the commands of one chunk whose ids share their
//! first six bytes (for UUID v7, the millisecond), so a lookup by command id
//! is one short prefix scan.

use uuid::Uuid;

use crate::record::{Hash, HASH_BYTES};
use crate::schema::StreamId;

/// Name of the sled tree that holds the log (side trees are `kv/<name>`).
pub const LOG_TREE: &str = "__log";

/// The layout version written by this code (1 was one key per record).
pub const LAYOUT_VERSION: u32 = 2;

const PAGE: u8 = b'L';
const STREAM: u8 = b'S';
const COMMAND: u8 = b'C';
const HEAD: u8 = b'H';
const LAYOUT: u8 = b'V';
const INDEXED: u8 = b'X';

/// Length of a page key.
pub const PAGE_KEY_BYTES: usize = 9;
/// Length of a head-meta value.
pub const HEAD_META_BYTES: usize = 8 + HASH_BYTES;
/// Leading bytes of a command id that choose its bucket (UUID v7: the millisecond).
pub const COMMAND_BUCKET_PREFIX_BYTES: usize = 6;
const STREAM_KEY_BYTES: usize = 25;

/// Prefix shared by every page key.
pub fn page_prefix() -> [u8; 1] {
    [PAGE]
}

/// Key of the page whose first record is at `position`.
pub fn page_key(position: u64) -> [u8; PAGE_KEY_BYTES] {
    let mut k = [0u8; PAGE_KEY_BYTES];
    k[0] = PAGE;
    k[1..].copy_from_slice(&position.to_be_bytes());
    k
}

/// The first position a page key names, if it is one.
pub fn parse_page_key(key: &[u8]) -> Option<u64> {
    if key.len() != PAGE_KEY_BYTES || key[0] != PAGE {
        return None;
    }
    parse_u64(&key[1..])
}

/// Prefix of every index key of one stream.
pub fn stream_prefix(stream: &StreamId) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = STREAM;
    k[1..].copy_from_slice(stream.as_bytes());
    k
}

/// Key of the stream run of `stream` ending at `last_version`.
pub fn stream_key(stream: &StreamId, last_version: u64) -> [u8; STREAM_KEY_BYTES] {
    let mut k = [0u8; STREAM_KEY_BYTES];
    k[..17].copy_from_slice(&stream_prefix(stream));
    k[17..].copy_from_slice(&last_version.to_be_bytes());
    k
}

/// The last version a stream run key names.
pub fn parse_stream_key_version(key: &[u8]) -> Option<u64> {
    if key.len() != STREAM_KEY_BYTES || key[0] != STREAM {
        return None;
    }
    parse_u64(&key[17..])
}

/// A big-endian u64.
pub fn parse_u64(value: &[u8]) -> Option<u64> {
    let b: [u8; 8] = value.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// Prefix shared by every command bucket key.
pub fn commands_prefix() -> [u8; 1] {
    [COMMAND]
}

/// Prefix of the buckets that may hold `command`.
pub fn command_prefix(command: &Uuid) -> [u8; 1 + COMMAND_BUCKET_PREFIX_BYTES] {
    let mut k = [0u8; 1 + COMMAND_BUCKET_PREFIX_BYTES];
    k[0] = COMMAND;
    k[1..].copy_from_slice(&command.as_bytes()[..COMMAND_BUCKET_PREFIX_BYTES]);
    k
}

/// Key of the bucket of `command`'s prefix written by the chunk ending at `chunk_end`.
pub fn command_key(command: &Uuid, chunk_end: u64) -> [u8; 9 + COMMAND_BUCKET_PREFIX_BYTES] {
    let mut k = [0u8; 9 + COMMAND_BUCKET_PREFIX_BYTES];
    k[..1 + COMMAND_BUCKET_PREFIX_BYTES].copy_from_slice(&command_prefix(command));
    k[1 + COMMAND_BUCKET_PREFIX_BYTES..].copy_from_slice(&chunk_end.to_be_bytes());
    k
}

/// Key of the head meta.
pub fn head_key() -> [u8; 1] {
    [HEAD]
}

/// Key of the layout version.
pub fn layout_key() -> [u8; 1] {
    [LAYOUT]
}

/// The layout version value written by this code.
pub fn layout_value() -> [u8; 4] {
    LAYOUT_VERSION.to_be_bytes()
}

/// Key of the indexed-through position.
pub fn indexed_key() -> [u8; 1] {
    [INDEXED]
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
    fn page_keys_sort_by_position() {
        assert!(page_key(255) < page_key(256));
        assert_eq!(parse_page_key(&page_key(42)), Some(42));
        assert_eq!(parse_page_key(&stream_key(&Uuid::nil(), 1)), None);
        // Every other key sorts outside the page range.
        for other in [&head_key()[..], &layout_key(), &indexed_key()] {
            assert!(other < &page_key(0)[..] || other > &page_key(u64::MAX)[..]);
        }
    }

    #[test]
    fn stream_keys_round_trip() {
        let s = Uuid::now_v7();
        assert_eq!(parse_stream_key_version(&stream_key(&s, 7)), Some(7));
        assert!(stream_key(&s, 9) < stream_key(&s, 10));
    }

    #[test]
    fn command_keys_start_with_their_bucket_prefix() {
        let c = Uuid::now_v7();
        assert!(command_key(&c, 9).starts_with(&command_prefix(&c)));
    }

    #[test]
    fn head_meta_round_trips() {
        let h = [7u8; HASH_BYTES];
        assert_eq!(parse_head_meta(&head_meta(9, &h)), Some((9, h)));
        assert_eq!(parse_head_meta(b"short"), None);
    }
}
