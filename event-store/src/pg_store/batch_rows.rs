//! The rows one batch writes besides its events, as the column arrays of
//! the set-based statements in `append` (`INSERT_COMMANDS_SQL`,
//! `INSERT_STREAMS_SQL`, `UPDATE_STREAMS_SQL`): built the same way by an
//! append and by an import.

use uuid::Uuid;

use crate::error::StoreError;
use crate::record::Hash;
use crate::schema::StreamKind;

use super::append::Params;
use super::rows::kind_name;

/// Command outcomes and stream heads of one batch, column by column.
#[derive(Default)]
pub(super) struct BatchRows {
    c_ids: Vec<Uuid>,
    c_streams: Vec<Uuid>,
    c_first: Vec<i64>,
    c_last: Vec<i64>,
    c_version: Vec<i64>,
    c_fingerprint: Vec<Option<Vec<u8>>>,
    new_ids: Vec<Uuid>,
    new_versions: Vec<i64>,
    new_kinds: Vec<String>,
    new_tenants: Vec<String>,
    up_ids: Vec<Uuid>,
    up_old: Vec<i64>,
    up_new: Vec<i64>,
}

impl BatchRows {
    /// A command's first outcome: its stream, first and last positions,
    /// the stream's version after it, its request fingerprint.
    pub(super) fn command(
        &mut self,
        id: Uuid,
        stream: Uuid,
        positions: (u64, u64),
        version: u64,
        fingerprint: Option<&Hash>,
    ) {
        self.c_ids.push(id);
        self.c_streams.push(stream);
        self.c_first.push(positions.0 as i64);
        self.c_last.push(positions.1 as i64);
        self.c_version.push(version as i64);
        self.c_fingerprint.push(fingerprint.map(|h| h.to_vec()));
    }

    /// A stream's head moving from `stored` (0: a new stream) to `version`;
    /// nothing when it did not move.
    pub(super) fn stream_head(
        &mut self,
        id: Uuid,
        stored: u64,
        version: u64,
        kind: StreamKind,
        tenant: &str,
    ) {
        if version == stored {
            return;
        }
        if stored == 0 {
            self.new_ids.push(id);
            self.new_versions.push(version as i64);
            self.new_kinds.push(kind_name(kind));
            self.new_tenants.push(tenant.to_string());
        } else {
            self.up_ids.push(id);
            self.up_old.push(stored as i64);
            self.up_new.push(version as i64);
        }
    }

    /// Parameters of `INSERT_COMMANDS_SQL`.
    pub(super) fn commands(&self) -> Params<'_, 6> {
        [
            &self.c_ids,
            &self.c_streams,
            &self.c_first,
            &self.c_last,
            &self.c_version,
            &self.c_fingerprint,
        ]
    }

    /// Parameters of `INSERT_STREAMS_SQL`.
    pub(super) fn new_streams(&self) -> Params<'_, 4> {
        [
            &self.new_ids,
            &self.new_versions,
            &self.new_kinds,
            &self.new_tenants,
        ]
    }

    /// Parameters of `UPDATE_STREAMS_SQL`.
    pub(super) fn moved_streams(&self) -> Params<'_, 3> {
        [&self.up_ids, &self.up_old, &self.up_new]
    }

    /// Refuses the batch unless every stream head and the log head moved
    /// from where they were read (`updated` rows of `UPDATE_STREAMS_SQL`,
    /// `moved` rows of `SET_HEAD_SQL`).
    pub(super) fn check_moved(&self, updated: u64, moved: u64) -> Result<(), StoreError> {
        if updated != self.up_ids.len() as u64 || moved != 1 {
            return Err(StoreError::Unavailable(
                "a stream head or the log head moved under the lock; batch refused".into(),
            ));
        }
        Ok(())
    }
}
