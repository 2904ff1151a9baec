//! Paged reads of the log, capped at the durable head and checked for
//! contiguity on the way out.

use crate::codec;
use crate::error::StoreError;
use crate::limits::READ_PAGE_MAX;
use crate::record::RecordedEvent;
use crate::schema::StreamId;

use super::keys;
use super::Shared;

fn corrupt(position: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        position,
        reason: reason.into(),
    }
}

impl Shared {
    /// Durable records with position ≥ `from`, at most `limit` (capped).
    pub(crate) fn read_all(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let from = from.max(1);
        let limit = limit.min(READ_PAGE_MAX) as u64;
        let head = self.durable_head();
        if limit == 0 || from > head {
            return Ok(Vec::new());
        }
        let end = head.min(from.saturating_add(limit - 1));
        let mut out: Vec<RecordedEvent> = Vec::with_capacity((end - from + 1) as usize);
        let mut expected = from;
        for item in self
            .log
            .range(keys::record_key(from)..=keys::record_key(end))
        {
            let (key, value) = item?;
            let position = keys::parse_record_key(&key)
                .ok_or_else(|| corrupt(expected, "malformed record key"))?;
            if position != expected {
                return Err(corrupt(expected, "record missing"));
            }
            let rec = codec::decode(position, &value)?;
            if let Some(prev) = out.last() {
                if rec.prev_hash != prev.hash {
                    return Err(corrupt(position, "does not chain to the previous record"));
                }
            }
            out.push(rec);
            expected += 1;
        }
        if expected != end + 1 {
            return Err(corrupt(expected, "record missing"));
        }
        Ok(out)
    }

    /// Durable events of `stream` with version ≥ `from_version`, at most `limit` (capped).
    pub(crate) fn read_stream(
        &self,
        stream: StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let from_version = from_version.max(1);
        let limit = limit.min(READ_PAGE_MAX);
        let head = self.durable_head();
        let mut out = Vec::new();
        let range = keys::stream_key(&stream, from_version)..=keys::stream_key(&stream, u64::MAX);
        for (expected, item) in (from_version..).zip(self.log.range(range).take(limit)) {
            let (key, value) = item?;
            let position =
                keys::parse_u64(&value).ok_or_else(|| corrupt(0, "malformed stream index"))?;
            if position > head {
                break;
            }
            let version = keys::parse_stream_key_version(&key)
                .ok_or_else(|| corrupt(position, "malformed stream index key"))?;
            if version != expected {
                return Err(corrupt(
                    position,
                    format!("stream version {expected} missing"),
                ));
            }
            let bytes = self
                .log
                .get(keys::record_key(position))?
                .ok_or_else(|| corrupt(position, "indexed record missing"))?;
            let rec = codec::decode(position, &bytes)?;
            if rec.stream_id != stream || rec.stream_version != version {
                return Err(corrupt(position, "record does not match the stream index"));
            }
            out.push(rec);
        }
        Ok(out)
    }

    /// The last durable version of `stream` (0 if it has none).
    pub(crate) fn stream_version(&self, stream: StreamId) -> Result<u64, StoreError> {
        let head = self.durable_head();
        for item in self.log.scan_prefix(keys::stream_prefix(&stream)).rev() {
            let (key, value) = item?;
            let position =
                keys::parse_u64(&value).ok_or_else(|| corrupt(0, "malformed stream index"))?;
            if position <= head {
                return keys::parse_stream_key_version(&key)
                    .ok_or_else(|| corrupt(position, "malformed stream index key"));
            }
        }
        Ok(0)
    }
}
