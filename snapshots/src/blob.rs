//! Opaque snapshots of projections: a name, the log position they reflect
//! and bytes the projection encodes itself.

use tracing::warn;

use crate::envelope::Envelope;
use crate::error::SnapshotError;
use crate::keys;
use crate::store::SnapshotStore;

/// Schema version written into blob envelopes; projections version their
/// own bytes (e.g. in the name).
const BLOB_SCHEMA_VERSION: u16 = 0;

/// A projection's snapshot as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Log position the bytes reflect (every event ≤ it folded in).
    pub position: u64,
    /// The projection's own encoding of its state.
    pub bytes: Vec<u8>,
}

impl SnapshotStore {
    /// Stores `bytes` as the blob `name` reflecting the log up to `position`.
    pub fn save_blob(&self, name: &str, position: u64, bytes: &[u8]) -> Result<(), SnapshotError> {
        let envelope = Envelope {
            schema_version: BLOB_SCHEMA_VERSION,
            version: position,
            last_hash: [0; event_store::record::HASH_BYTES],
            body: bytes.to_vec(),
        };
        self.tree()
            .apply(vec![(keys::blob_key(name), Some(envelope.encode()))])?;
        Ok(())
    }

    /// The blob `name`, or `None` when it is missing or corrupt (logged):
    /// the projection then rebuilds from the log.
    pub fn load_blob(&self, name: &str) -> Result<Option<Blob>, SnapshotError> {
        let Some(bytes) = self.tree().get(&keys::blob_key(name))? else {
            return Ok(None);
        };
        match Envelope::decode(&bytes) {
            Ok(e) if e.schema_version == BLOB_SCHEMA_VERSION => Ok(Some(Blob {
                position: e.version,
                bytes: e.body,
            })),
            Ok(e) => {
                warn!(
                    blob = name,
                    stored = e.schema_version,
                    "unknown blob schema; rebuilding"
                );
                Ok(None)
            }
            Err(reason) => {
                warn!(blob = name, %reason, "corrupt blob; rebuilding");
                Ok(None)
            }
        }
    }

    /// Removes the blob `name`.
    pub fn delete_blob(&self, name: &str) -> Result<(), SnapshotError> {
        self.tree().apply(vec![(keys::blob_key(name), None)])?;
        Ok(())
    }
}
