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
/// shape so old snapshots are rebuilt instead of misread.
pub const MODEL_FORMAT: u32 = 3;

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

/// Encodes the model (its `position` is the checkpoint).
pub fn encode(model: &ReadModel) -> Result<Vec<u8>, ProjectionError> {
    bincode::serde::encode_to_vec(model, bincode::config::standard())
        .map_err(|e| ProjectionError::Snapshot(format!("encode: {e}")))
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

    /// Replaces the stored snapshot with `bytes` (an encoded model at
    /// `position`) in one atomic batch, then makes it durable.
    pub fn save(&self, position: u64, bytes: &[u8]) -> Result<(), ProjectionError> {
        let old = self.meta().ok().flatten();
        let generation = old.as_ref().map_or(1, |m| m.generation + 1);
        let mut writes = vec![];
        let mut chunks = 0u32;
        for (i, chunk) in bytes.chunks(SNAPSHOT_CHUNK_BYTES).enumerate() {
            let i = u32::try_from(i)
                .map_err(|_| ProjectionError::Snapshot("too many chunks".into()))?;
            writes.push((chunk_key(generation, i), Some(chunk.to_vec())));
            chunks = i + 1;
        }
        let meta = Meta {
            format: MODEL_FORMAT,
            position,
            generation,
            chunks,
            bytes: bytes.len() as u64,
            hash: *blake3::hash(bytes).as_bytes(),
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
