//! The stream index (stream, version -> position) and the command index
//! (command id -> first outcome), both derived from the records.
//!
//! Writing one index key per append would cost as much as the records
//! themselves (sled pays per key), so appends are indexed in memory first
//! ([`PendingIndex`]) and folded later into few, coalesced keys (a [`Chunk`]):
//! one stream run per stream and one command bucket per command-id prefix,
//! written by the indexer (see `indexer.rs`) with the new indexed-through
//! position; after a crash, the pending part is rebuilt from the log, which
//! holds everything the index holds.
//!
//! ```text
//! stream run     = first version BE | (first position BE | count u32 BE)+
//! command bucket = (command id | stream id | first version BE | first position BE | count BE)+
//! ```

use std::collections::{HashMap, VecDeque};

use uuid::Uuid;

use crate::error::StoreError;
use crate::record::AppendOutcome;
use crate::schema::StreamId;

use super::keys::{self, COMMAND_BUCKET_PREFIX_BYTES};

const SPAN_BYTES: usize = 12;
const BUCKET_ENTRY_BYTES: usize = 56;

/// The versions and positions of one append: contiguous in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) first_version: u64,
    pub(crate) first_position: u64,
    pub(crate) count: u64,
}

impl Span {
    pub(crate) fn last_version(&self) -> u64 {
        self.first_version + self.count - 1
    }

    pub(crate) fn last_position(&self) -> u64 {
        self.first_position + self.count - 1
    }

    /// The position of `version` if this append holds it.
    pub(crate) fn position_of(&self, version: u64) -> Option<u64> {
        (self.first_version..=self.last_version())
            .contains(&version)
            .then(|| self.first_position + (version - self.first_version))
    }
}

/// One durable append as the index knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexedAppend {
    pub(crate) stream: StreamId,
    pub(crate) command: Uuid,
    pub(crate) span: Span,
}

impl IndexedAppend {
    /// The outcome the append returned (or returns to a retry).
    pub(crate) fn outcome(&self, duplicate: bool) -> AppendOutcome {
        AppendOutcome {
            stream_id: self.stream,
            version: self.span.last_version(),
            first_position: self.span.first_position,
            position: self.span.last_position(),
            duplicate,
        }
    }
}

/// Durable appends after the indexed-through position, indexed in memory
/// (bounded: the writer folds them into keys once `INDEX_LAG_EVENTS` pile up).
#[derive(Debug, Default)]
pub(crate) struct PendingIndex {
    /// In position order.
    appends: VecDeque<IndexedAppend>,
    by_stream: HashMap<StreamId, VecDeque<Span>>,
    by_command: HashMap<Uuid, IndexedAppend>,
    events: u64,
    /// The largest command-bucket key prefix in index keys: a command above
    /// it (such as a fresh UUID v7) cannot be there. Kept here so that it
    /// changes under the same lock as the appends it moves to disk.
    command_prefix_max: Option<Vec<u8>>,
}

/// Index keys for the oldest pending appends, and the position they cover up to.
pub(crate) struct Chunk {
    pub(crate) writes: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) through: u64,
    /// The largest command-bucket key prefix among the writes.
    pub(crate) command_prefix_max: Option<Vec<u8>>,
}

impl PendingIndex {
    /// Adds a durable append (appends arrive in position order).
    pub(crate) fn push(&mut self, a: IndexedAppend) {
        self.appends.push_back(a);
        self.by_stream
            .entry(a.stream)
            .or_default()
            .push_back(a.span);
        self.by_command.insert(a.command, a);
        self.events += a.span.count;
    }

    /// Events not yet in index keys.
    pub(crate) fn events(&self) -> u64 {
        self.events
    }

    pub(crate) fn command(&self, command: &Uuid) -> Option<IndexedAppend> {
        self.by_command.get(command).copied()
    }

    /// Starts from what the index keys hold (when the store opens).
    pub(crate) fn set_command_prefix_max(&mut self, prefix: Option<Vec<u8>>) {
        self.command_prefix_max = prefix;
    }

    /// Whether the index keys may hold `command` (else no lookup is needed).
    pub(crate) fn may_hold_on_disk(&self, command: &Uuid) -> bool {
        self.command_prefix_max.as_deref() >= Some(&keys::command_prefix(command)[..])
    }

    /// The pending appends of `stream`, oldest first.
    pub(crate) fn stream(&self, stream: &StreamId) -> Vec<Span> {
        self.by_stream
            .get(stream)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The last pending append of `stream` ending at or before `head`.
    pub(crate) fn stream_last_through(&self, stream: &StreamId, head: u64) -> Option<Span> {
        self.by_stream
            .get(stream)
            .and_then(|s| s.iter().rev().find(|s| s.last_position() <= head).copied())
    }

    pub(crate) fn stream_last(&self, stream: &StreamId) -> Option<Span> {
        self.by_stream.get(stream).and_then(|s| s.back().copied())
    }

    /// Index keys for the oldest appends, at most `keys_max` keys (but at
    /// least one append), or `None` if nothing is pending.
    pub(crate) fn chunk(&self, keys_max: usize) -> Option<Chunk> {
        let mut runs: HashMap<StreamId, Vec<Span>> = HashMap::new();
        let mut order: Vec<StreamId> = Vec::new();
        let mut buckets: HashMap<[u8; COMMAND_BUCKET_PREFIX_BYTES], Vec<IndexedAppend>> =
            HashMap::new();
        let mut through = None;
        for a in &self.appends {
            let new_keys = usize::from(!runs.contains_key(&a.stream))
                + usize::from(!buckets.contains_key(&bucket_of(&a.command)));
            if through.is_some() && runs.len() + buckets.len() + new_keys > keys_max {
                break;
            }
            runs.entry(a.stream)
                .or_insert_with(|| {
                    order.push(a.stream);
                    Vec::new()
                })
                .push(a.span);
            buckets.entry(bucket_of(&a.command)).or_default().push(*a);
            through = Some(a.span.last_position());
        }
        let through = through?;
        let command_prefix_max = buckets
            .values()
            .filter_map(|entries| entries.first())
            .map(|a| keys::command_prefix(&a.command).to_vec())
            .max();
        let mut writes = Vec::with_capacity(runs.len() + buckets.len());
        for stream in order {
            let spans = runs.remove(&stream).unwrap_or_default();
            let Some(last) = spans.last() else { continue };
            writes.push((
                keys::stream_key(&stream, last.last_version()).to_vec(),
                encode_run(&spans),
            ));
        }
        for entries in buckets.into_values() {
            if let Some(first) = entries.first() {
                writes.push((
                    keys::command_key(&first.command, through).to_vec(),
                    encode_bucket(&entries),
                ));
            }
        }
        Some(Chunk {
            writes,
            through,
            command_prefix_max,
        })
    }

    /// Forgets the appends `chunk` wrote to index keys (those ending at or
    /// before its `through`).
    pub(crate) fn indexed(&mut self, chunk: &Chunk) {
        if self.command_prefix_max < chunk.command_prefix_max {
            self.command_prefix_max
                .clone_from(&chunk.command_prefix_max);
        }
        while let Some(a) = self.appends.front().copied() {
            if a.span.last_position() > chunk.through {
                break;
            }
            self.appends.pop_front();
            self.events -= a.span.count;
            self.by_command.remove(&a.command);
            if let Some(spans) = self.by_stream.get_mut(&a.stream) {
                spans.pop_front();
                if spans.is_empty() {
                    self.by_stream.remove(&a.stream);
                }
            }
        }
    }
}

fn bucket_of(command: &Uuid) -> [u8; COMMAND_BUCKET_PREFIX_BYTES] {
    let mut b = [0u8; COMMAND_BUCKET_PREFIX_BYTES];
    b.copy_from_slice(&command.as_bytes()[..COMMAND_BUCKET_PREFIX_BYTES]);
    b
}

fn encode_run(spans: &[Span]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + spans.len() * SPAN_BYTES);
    v.extend_from_slice(&spans.first().map_or(0, |s| s.first_version).to_be_bytes());
    for s in spans {
        v.extend_from_slice(&s.first_position.to_be_bytes());
        v.extend_from_slice(&(s.count as u32).to_be_bytes());
    }
    v
}

fn corrupt(reason: String) -> StoreError {
    StoreError::Corrupt {
        position: 0,
        reason,
    }
}

/// Decodes the run stored under `key`, checking it ends at the key's version.
fn decode_run(stream: &StreamId, key: &[u8], value: &[u8]) -> Result<Vec<Span>, StoreError> {
    let bad = |why: &str| corrupt(format!("stream index of {stream}: {why}"));
    let last = keys::parse_stream_key_version(key).ok_or_else(|| bad("malformed key"))?;
    let (first, rest) = value
        .split_first_chunk::<8>()
        .ok_or_else(|| bad("malformed run"))?;
    if rest.is_empty() || rest.len() % SPAN_BYTES != 0 {
        return Err(bad("malformed run"));
    }
    let mut version = u64::from_be_bytes(*first);
    let mut spans = Vec::with_capacity(rest.len() / SPAN_BYTES);
    for s in rest.chunks_exact(SPAN_BYTES) {
        let first_position = keys::parse_u64(&s[..8]).ok_or_else(|| bad("malformed run"))?;
        let count = u64::from(u32::from_be_bytes([s[8], s[9], s[10], s[11]]));
        if count == 0 || version == 0 {
            return Err(bad("malformed run"));
        }
        spans.push(Span {
            first_version: version,
            first_position,
            count,
        });
        version += count;
    }
    if version - 1 != last {
        return Err(bad("run does not end at its key's version"));
    }
    Ok(spans)
}

fn encode_bucket(entries: &[IndexedAppend]) -> Vec<u8> {
    let mut v = Vec::with_capacity(entries.len() * BUCKET_ENTRY_BYTES);
    for a in entries {
        v.extend_from_slice(a.command.as_bytes());
        v.extend_from_slice(a.stream.as_bytes());
        v.extend_from_slice(&a.span.first_version.to_be_bytes());
        v.extend_from_slice(&a.span.first_position.to_be_bytes());
        v.extend_from_slice(&a.span.count.to_be_bytes());
    }
    v
}

fn uuid_at(bytes: &[u8]) -> Uuid {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[..16]);
    Uuid::from_bytes(b)
}

/// The indexed append of `command`, if the command index holds it.
pub(crate) fn find_command(
    log: &sled::Tree,
    command: &Uuid,
) -> Result<Option<IndexedAppend>, StoreError> {
    for item in log.scan_prefix(keys::command_prefix(command)) {
        let (_, value) = item?;
        if value.len() % BUCKET_ENTRY_BYTES != 0 {
            return Err(corrupt(format!("command bucket of {command}: malformed")));
        }
        for e in value.chunks_exact(BUCKET_ENTRY_BYTES) {
            if e[..16] != command.as_bytes()[..] {
                continue;
            }
            let field = |at: usize| keys::parse_u64(&e[at..at + 8]).unwrap_or(0);
            let span = Span {
                first_version: field(32),
                first_position: field(40),
                count: field(48),
            };
            if span.count == 0 || span.first_version == 0 {
                return Err(corrupt(format!("command bucket of {command}: malformed")));
            }
            return Ok(Some(IndexedAppend {
                stream: uuid_at(&e[16..]),
                command: *command,
                span,
            }));
        }
    }
    Ok(None)
}

/// The last indexed append of `stream`.
pub(crate) fn last_span(log: &sled::Tree, stream: &StreamId) -> Result<Option<Span>, StoreError> {
    match log.scan_prefix(keys::stream_prefix(stream)).next_back() {
        None => Ok(None),
        Some(item) => {
            let (key, value) = item?;
            Ok(decode_run(stream, &key, &value)?.last().copied())
        }
    }
}

/// Indexed appends of `stream` from the one holding `from_version` on, run by
/// run, oldest first, stopping after `spans_min` appends (at least one run).
pub(crate) fn spans_from(
    log: &sled::Tree,
    stream: &StreamId,
    from_version: u64,
    spans_min: usize,
) -> Result<Vec<Span>, StoreError> {
    let mut out = Vec::new();
    let range = keys::stream_key(stream, from_version)..=keys::stream_key(stream, u64::MAX);
    for item in log.range(range) {
        let (key, value) = item?;
        out.extend(
            decode_run(stream, &key, &value)?
                .into_iter()
                .filter(|s| s.last_version() >= from_version),
        );
        if out.len() >= spans_min {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(stream: u128, first_version: u64, first_position: u64, count: u64) -> IndexedAppend {
        IndexedAppend {
            stream: Uuid::from_u128(stream),
            command: Uuid::now_v7(),
            span: Span {
                first_version,
                first_position,
                count,
            },
        }
    }

    #[test]
    fn runs_round_trip() {
        let spans = [
            append(1, 3, 10, 2).span,
            append(1, 5, 20, 1).span,
            append(1, 6, 22, 3).span,
        ];
        let s = Uuid::from_u128(1);
        let got = decode_run(&s, &keys::stream_key(&s, 8), &encode_run(&spans)).expect("decodes");
        assert_eq!(got, spans);
        assert!(decode_run(&s, &keys::stream_key(&s, 9), &encode_run(&spans)).is_err());
        assert_eq!(spans[2].position_of(7), Some(23));
        assert_eq!(spans[2].position_of(9), None);
    }

    #[test]
    fn chunks_respect_the_key_budget_and_cover_whole_appends() {
        let mut p = PendingIndex::default();
        for i in 0..10u64 {
            p.push(append(u128::from(i % 5), 1 + i / 5, 1 + 2 * i, 2));
        }
        assert_eq!(p.events(), 20);
        let chunk = p.chunk(4).expect("something pending");
        // Two streams and their (distinct-millisecond or not) buckets fit 4 keys.
        assert!(chunk.writes.len() <= 4);
        assert_eq!(chunk.through % 2, 0, "ends at an append's end");
        p.indexed(&chunk);
        assert_eq!(p.events(), 20 - chunk.through);
        let all = p.chunk(usize::MAX).expect("rest");
        assert_eq!(all.through, 20);
        p.indexed(&all);
        assert_eq!(p.events(), 0);
        assert!(p.chunk(10).is_none());
    }
}
