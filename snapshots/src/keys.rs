//! Key layout of the snapshot tree.
//!
//! Aggregate keys: `b'a'`, name length (u8), name, stream id (16 bytes).
//! Blob keys: `b'b'`, name. The length prefix keeps one aggregate name from
//! being a prefix of another's keys.

use event_store::StreamId;

/// Tag of aggregate snapshot keys.
const AGGREGATE_TAG: u8 = b'a';
/// Tag of projection blob keys.
const BLOB_TAG: u8 = b'b';
/// Longest aggregate name (the length is stored in one byte).
pub const AGGREGATE_NAME_BYTES_MAX: usize = u8::MAX as usize;

/// Prefix of every snapshot of aggregate type `name`.
pub fn aggregate_prefix(name: &str) -> Vec<u8> {
    let name = &name.as_bytes()[..name.len().min(AGGREGATE_NAME_BYTES_MAX)];
    let mut key = Vec::with_capacity(2 + name.len() + 16);
    key.push(AGGREGATE_TAG);
    // Truncated above, so the length fits in a byte.
    key.push(name.len() as u8);
    key.extend_from_slice(name);
    key
}

/// Key of the snapshot of `stream` for aggregate type `name`.
pub fn aggregate_key(name: &str, stream: StreamId) -> Vec<u8> {
    let mut key = aggregate_prefix(name);
    key.extend_from_slice(stream.as_bytes());
    key
}

/// Key of the blob called `name`.
pub fn blob_key(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.len());
    key.push(BLOB_TAG);
    key.extend_from_slice(name.as_bytes());
    key
}
