//! Projection snapshots: the whole read model and its checkpoint in one
//! blob, written with one atomic `KvTree::apply`, so state and checkpoint
//! can never disagree. A blob that fails any check is reported as corrupt
//! and the caller rebuilds from position 1; it is never read as empty.

use std::sync::Arc;

use event_store::KvTree;
use serde::{Deserialize, Serialize};

use crate::error::ProjectionError;
use crate::limits::SNAPSHOT_CHUNK_BYTES;
use crate::model::ReadModel;

/// Name of the side tree holding projection snapshots.
pub const TREE_NAME: &str = "projections";
/// Version of the read model's encoding; bump it when `ReadModel` changes
/// shape so old snapshots are rebuilt instead of misread. 4: one
/// `TicketView` per ticket, its dispatch phase the schema's `DispatchPhase`;
/// chat lines keep the record's `Visibility`, not a copied `internal` flag.
pub const MODEL_FORMAT: u32 = 5;

const META_KEY: &[u8] = b"meta";
const CHUNK_PREFIX: &str = "chunk/";

/// Describes the stored blob; written in the same batch as its chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Meta {
    format: u32,
    position: u64,
    generation: u64,
    chunks: u32,
    bytes: u64,
    hash: [u8; 32],
}

/// What loading found.
#[derive(Debug)]
pub enum Loaded {
    /// A valid snapshot.
    Model(Box<ReadModel>),
    /// No snapshot stored.
    Missing,
    /// A snapshot that failed a check, and why.
    Corrupt(String),
}

/// An encoded model, already cut into the chunks it is stored as.
#[derive(Debug, Default)]
pub struct Encoded {
    /// The bytes, `SNAPSHOT_CHUNK_BYTES` per chunk (the last one shorter).
    chunks: Vec<Vec<u8>>,
    /// BLAKE3 of all the bytes, in order.
    hash: [u8; 32],
    /// Length of all the bytes.
    bytes: u64,
}

impl Encoded {
    /// Length of the encoding, in bytes.
    pub fn len(&self) -> u64 {
        self.bytes
    }

    /// Whether the encoding is empty (it never is for a model).
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }
}

/// A `Write` that cuts what it is given into chunks and hashes it on the
/// way, so that encoding a model holds one copy of its bytes (plus sled's
/// copy while the batch is written), not also a contiguous blob that
/// grew by doubling and the chunks cut from it.
struct ChunkWriter {
    /// Full chunks.
    chunks: Vec<Vec<u8>>,
    /// The chunk being filled.
    current: Vec<u8>,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl ChunkWriter {
    fn new() -> Self {
        ChunkWriter {
            chunks: vec![],
            current: Vec::with_capacity(SNAPSHOT_CHUNK_BYTES),
            hasher: blake3::Hasher::new(),
            bytes: 0,
        }
    }

    fn finish(mut self) -> Encoded {
        if !self.current.is_empty() {
            self.chunks.push(self.current);
        }
        Encoded {
            chunks: self.chunks,
            hash: *self.hasher.finalize().as_bytes(),
            bytes: self.bytes,
        }
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, mut buf: &[u8]) -> std::io::Result<usize> {
        let written = buf.len();
        self.hasher.update(buf);
        self.bytes += written as u64;
        while !buf.is_empty() {
            let take = (SNAPSHOT_CHUNK_BYTES - self.current.len()).min(buf.len());
            self.current.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.current.len() == SNAPSHOT_CHUNK_BYTES {
                let full =
                    std::mem::replace(&mut self.current, Vec::with_capacity(SNAPSHOT_CHUNK_BYTES));
                self.chunks.push(full);
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Encodes the model (its `position` is the checkpoint).
pub fn encode(model: &ReadModel) -> Result<Encoded, ProjectionError> {
    let mut w = ChunkWriter::new();
    bincode::serde::encode_into_std_write(model, &mut w, bincode::config::standard())
        .map_err(|e| ProjectionError::Snapshot(format!("encode: {e}")))?;
    Ok(w.finish())
}

/// Most bytes one decoded read-model snapshot may claim (1 GiB).
pub const MODEL_DECODE_BYTES_MAX: usize = 1 << 30;

/// Decodes a model written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<ReadModel, String> {
    // The limit makes a forged length prefix an error, not an abort on a
    // multi-petabyte allocation.
    let config = bincode::config::standard().with_limit::<MODEL_DECODE_BYTES_MAX>();
    bincode::serde::decode_from_slice(bytes, config)
        .map(|(m, _)| m)
        .map_err(|e| e.to_string())
}

fn chunk_prefix(generation: u64) -> Vec<u8> {
    format!("{CHUNK_PREFIX}{generation:016x}/").into_bytes()
}

fn chunk_key(generation: u64, index: u32) -> Vec<u8> {
    let mut k = chunk_prefix(generation);
    k.extend_from_slice(format!("{index:08x}").as_bytes());
    k
}

/// The snapshot slot of the read model in a side tree.
#[derive(Clone)]
pub struct SnapshotSlot {
    tree: Arc<dyn KvTree>,
}

impl SnapshotSlot {
    /// The slot kept in `tree`.
    pub fn new(tree: Arc<dyn KvTree>) -> Self {
        SnapshotSlot { tree }
    }

    fn meta(&self) -> Result<Option<Meta>, String> {
        match self.tree.get(META_KEY).map_err(|e| e.to_string())? {
            None => Ok(None),
            Some(b) => bincode::serde::decode_from_slice(
                &b,
                bincode::config::standard().with_limit::<MODEL_DECODE_BYTES_MAX>(),
            )
            .map(|(m, _)| Some(m))
            .map_err(|e| format!("meta: {e}")),
        }
    }

    /// Replaces the stored snapshot with `encoded` (a model at `position`)
    /// in one atomic batch, then makes it durable.
    pub fn save(&self, position: u64, encoded: Encoded) -> Result<(), ProjectionError> {
        let old = self.meta().ok().flatten();
        let generation = old.as_ref().map_or(1, |m| m.generation + 1);
        let chunks = u32::try_from(encoded.chunks.len())
            .map_err(|_| ProjectionError::Snapshot("too many chunks".into()))?;
        let mut writes = Vec::with_capacity(encoded.chunks.len() + 1);
        for (i, chunk) in (0..chunks).zip(encoded.chunks) {
            writes.push((chunk_key(generation, i), Some(chunk)));
        }
        let meta = Meta {
            format: MODEL_FORMAT,
            position,
            generation,
            chunks,
            bytes: encoded.bytes,
            hash: encoded.hash,
        };
        let meta = bincode::serde::encode_to_vec(&meta, bincode::config::standard())
            .map_err(|e| ProjectionError::Snapshot(format!("meta: {e}")))?;
        writes.push((META_KEY.to_vec(), Some(meta)));
        if let Some(old) = old {
            for i in 0..old.chunks {
                writes.push((chunk_key(old.generation, i), None));
            }
        }
        self.tree.apply(writes)?;
        self.tree.flush()?;
        Ok(())
    }

    /// The stored model, checked against its meta (format, size, hash,
    /// position).
    pub fn load(&self) -> Loaded {
        match self.try_load() {
            Ok(Some(m)) => Loaded::Model(Box::new(m)),
            Ok(None) => Loaded::Missing,
            Err(reason) => Loaded::Corrupt(reason),
        }
    }

    fn try_load(&self) -> Result<Option<ReadModel>, String> {
        let Some(meta) = self.meta()? else {
            return Ok(None);
        };
        if meta.format != MODEL_FORMAT {
            return Err(format!(
                "format {} (this build reads {MODEL_FORMAT})",
                meta.format
            ));
        }
        let chunks = self
            .tree
            .scan_prefix(&chunk_prefix(meta.generation), meta.chunks as usize + 1)
            .map_err(|e| e.to_string())?;
        if chunks.len() != meta.chunks as usize {
            return Err(format!("{} of {} chunks", chunks.len(), meta.chunks));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.bytes).unwrap_or(0));
        for (_, c) in chunks {
            bytes.extend_from_slice(&c);
        }
        if bytes.len() as u64 != meta.bytes {
            return Err(format!("{} bytes, meta says {}", bytes.len(), meta.bytes));
        }
        if *blake3::hash(&bytes).as_bytes() != meta.hash {
            return Err("hash mismatch".into());
        }
        let model = decode(&bytes)?;
        if model.position != meta.position {
            return Err(format!(
                "model at {}, meta says {}",
                model.position, meta.position
            ));
        }
        Ok(Some(model))
    }

    /// The position of the stored snapshot, if any is readable.
    pub fn position(&self) -> Option<u64> {
        self.meta().ok().flatten().map(|m| m.position)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn chunks_are_full_but_the_last_and_add_up_to_the_bytes() {
        let data: Vec<u8> = (0..SNAPSHOT_CHUNK_BYTES * 7 / 2)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut w = ChunkWriter::new();
        // Small writes across a boundary, then one write spanning chunks.
        let (small, big) = data.split_at(SNAPSHOT_CHUNK_BYTES + 5);
        for piece in small.chunks(7) {
            w.write_all(piece).expect("write");
        }
        w.write_all(big).expect("write");
        let e = w.finish();
        assert_eq!(e.len(), data.len() as u64);
        assert_eq!(e.chunks.len(), 4);
        assert!(e.chunks[..3]
            .iter()
            .all(|c| c.len() == SNAPSHOT_CHUNK_BYTES));
        assert_eq!(e.chunks[3].len(), SNAPSHOT_CHUNK_BYTES / 2);
        assert_eq!(e.chunks.concat(), data);
        assert_eq!(e.hash, *blake3::hash(&data).as_bytes());
    }

    #[test]
    fn encoding_equals_the_contiguous_bincode() {
        let model = ReadModel::default();
        let e = encode(&model).expect("encode");
        let whole =
            bincode::serde::encode_to_vec(&model, bincode::config::standard()).expect("encode");
        assert_eq!(e.chunks.concat(), whole);
        assert_eq!(e.hash, *blake3::hash(&whole).as_bytes());
        assert!(decode(&whole).is_ok());
    }
}
