//! Reading the log as stored, whole appends at a time, for copying it to
//! another backend byte for byte (`ticketlog migrate-store`).

use crate::codec::{self, RawRecord};
use crate::error::StoreError;
use crate::record::RecordedEvent;

use super::{reads, SledStore};

impl SledStore {
    /// The stored records from position `from` on, whole appends only
    /// (`from` must start one), up to the durable head: appends are taken
    /// until the first append boundary at or after `events_max` records or
    /// `bytes_max` bytes, so a batch passes either by less than one append
    /// (and holds at least one append when there is one). Every record is
    /// decoded on the way (checksum, claimed position); the bytes are
    /// returned untouched.
    pub fn read_raw(
        &self,
        from: u64,
        events_max: usize,
        bytes_max: usize,
    ) -> Result<Vec<RawRecord>, StoreError> {
        let from = from.max(1);
        let head = self.shared.durable_head();
        let mut out: Vec<RawRecord> = Vec::new();
        let mut bytes_total = 0usize;
        let mut last: Option<RecordedEvent> = None;
        let mut full = false;
        let next = reads::scan_records(&self.shared.log, from, head, |position, bytes| {
            let rec = codec::decode(position, bytes)?;
            if let Some(prev) = &last {
                if codec::starts_append(prev, &rec)
                    && (out.len() >= events_max || bytes_total >= bytes_max)
                {
                    full = true;
                    return Ok(false);
                }
            }
            bytes_total += bytes.len();
            out.push(RawRecord {
                position,
                bytes: bytes.to_vec(),
            });
            last = Some(rec);
            Ok(true)
        })?;
        if !full && from <= head && next != head + 1 {
            return Err(StoreError::Corrupt {
                position: next,
                reason: "record missing".into(),
            });
        }
        Ok(out)
    }
}
