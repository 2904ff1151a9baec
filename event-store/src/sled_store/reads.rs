//! Paged reads of the log, capped at the durable head and checked for
//! contiguity on the way out.

use crate::codec;
use crate::error::StoreError;
use crate::limits::READ_PAGE_MAX;
use crate::record::RecordedEvent;
use crate::schema::StreamId;

use super::index::{self, Span};
use super::{keys, page, Shared};

fn corrupt(position: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        position,
        reason: reason.into(),
    }
}

/// Visits the stored records with `from ≤ position ≤ end` in order, as
/// (position, record bytes), until `visit` answers `false`. Returns the next
/// position not visited. A missing page or broken page framing is `Corrupt`
/// at the first position that cannot be found.
pub(crate) fn scan_records(
    log: &sled::Tree,
    from: u64,
    end: u64,
    mut visit: impl FnMut(u64, &[u8]) -> Result<bool, StoreError>,
) -> Result<u64, StoreError> {
    if from > end {
        return Ok(from);
    }
    // The page holding `from` is the last one starting at or before it.
    let start = match log
        .range(keys::page_key(0)..=keys::page_key(from))
        .next_back()
    {
        None => from,
        Some(item) => {
            let (key, _) = item?;
            keys::parse_page_key(&key).ok_or_else(|| corrupt(from, "malformed page key"))?
        }
    };
    let mut next = start;
    for item in log.range(keys::page_key(start)..=keys::page_key(end)) {
        let (key, value) = item?;
        let first = keys::parse_page_key(&key)
            .ok_or_else(|| corrupt(next.max(from), "malformed page key"))?;
        if first != next {
            let at = next.max(from);
            return Err(corrupt(
                at,
                format!("record {at} missing (next stored page starts at {first})"),
            ));
        }
        for frame in page::frames(&value) {
            let bytes = frame.map_err(|why| corrupt(next.max(from), why))?;
            if next > end {
                return Ok(next);
            }
            if next >= from && !visit(next, bytes)? {
                return Ok(next + 1);
            }
            next += 1;
        }
    }
    Ok(next.max(from))
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
        let next = scan_records(&self.log, from, end, |position, bytes| {
            let rec = codec::decode(position, bytes)?;
            if let Some(prev) = out.last() {
                if rec.prev_hash != prev.hash {
                    return Err(corrupt(position, "does not chain to the previous record"));
                }
            }
            out.push(rec);
            Ok(true)
        })?;
        if next != end + 1 {
            return Err(corrupt(next, "record missing"));
        }
        Ok(out)
    }

    /// The durable record at `position`.
    pub(crate) fn record_at(&self, position: u64) -> Result<RecordedEvent, StoreError> {
        let mut found = None;
        scan_records(&self.log, position, position, |p, bytes| {
            found = Some(codec::decode(p, bytes)?);
            Ok(false)
        })?;
        found.ok_or_else(|| corrupt(position, "record missing"))
    }

    /// The appends of `stream` holding versions ≥ `from_version` (at least
    /// `spans_min` of them if there are), from the index keys then the
    /// in-memory tail, checked contiguous.
    fn stream_spans(
        &self,
        stream: &StreamId,
        from_version: u64,
        spans_min: usize,
    ) -> Result<Vec<Span>, StoreError> {
        // Pending first, then disk: the writer writes a chunk to disk before
        // dropping it from memory, so every append is seen at least once.
        let pending = self
            .pending
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .stream(stream);
        let mut spans = index::spans_from(&self.log, stream, from_version, spans_min)?;
        spans.sort_by_key(|s| s.first_version);
        let indexed_last = spans.last().map_or(0, Span::last_version);
        // Enough from the index alone (each append holds at least one event).
        let pending = if spans.len() >= spans_min {
            Vec::new()
        } else {
            pending
        };
        spans.extend(
            pending
                .into_iter()
                .filter(|s| s.first_version > indexed_last && s.last_version() >= from_version),
        );
        // Runs of a chunk cut short by a crash come twice; an append is a
        // unit in every run, so a repeat starts before the next expected version.
        let mut expected = spans.first().map_or(0, |s| s.first_version);
        let mut contiguous = Vec::with_capacity(spans.len());
        for s in spans {
            if s.first_version < expected {
                continue;
            }
            if s.first_version != expected {
                return Err(corrupt(
                    s.first_position,
                    format!("stream {stream} index skips from version {expected}"),
                ));
            }
            expected = s.last_version() + 1;
            contiguous.push(s);
        }
        Ok(contiguous)
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
        if limit == 0 {
            return Ok(out);
        }
        let spans = self.stream_spans(&stream, from_version, limit)?;
        for span in spans {
            if span.last_position() > head {
                break;
            }
            let first = span.first_version.max(from_version);
            let count = (span.last_version() - first + 1).min((limit - out.len()) as u64);
            let from = span.first_position + (first - span.first_version);
            let mut version = first;
            let next = scan_records(&self.log, from, from + count - 1, |position, bytes| {
                let rec = codec::decode(position, bytes)?;
                if rec.stream_id != stream || rec.stream_version != version {
                    return Err(corrupt(position, "record does not match the stream index"));
                }
                out.push(rec);
                version += 1;
                Ok(true)
            })?;
            if next != from + count {
                return Err(corrupt(next, "indexed record missing"));
            }
            if out.len() >= limit {
                break;
            }
        }
        if out
            .first()
            .is_some_and(|r| r.stream_version != from_version)
        {
            return Err(corrupt(
                out.first().map_or(0, |r| r.position),
                format!("stream version {from_version} missing"),
            ));
        }
        Ok(out)
    }

    /// The last durable version of `stream` (0 if it has none).
    pub(crate) fn stream_version(&self, stream: StreamId) -> Result<u64, StoreError> {
        let head = self.durable_head();
        let pending = self
            .pending
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .stream_last_through(&stream, head);
        if let Some(s) = pending {
            return Ok(s.last_version());
        }
        Ok(index::last_span(&self.log, &stream)?.map_or(0, |s| s.last_version()))
    }
}
