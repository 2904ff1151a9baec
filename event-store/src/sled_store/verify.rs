//! Walking the log to prove it intact: page framing, checksums, contiguity
//! of positions and stream versions, the stream and command indexes, the
//! hash chain and the head meta.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use crate::codec;
use crate::error::StoreError;
use crate::limits::VERIFY_STEP_RECORDS;
use crate::record::{Hash, HASH_BYTES};
use crate::schema::StreamId;
use crate::store::VerifyReport;

use super::index::{self, IndexedAppend, Span};
use super::{keys, reads};

/// Where a walk stands between steps, so it can be resumed in chunks.
pub(crate) struct Walk {
    log: sled::Tree,
    /// Next position expected.
    next: u64,
    prev_hash: Hash,
    /// Last version seen per stream; `None` for a tail window, whose streams
    /// started before the window.
    versions: Option<HashMap<StreamId, u64>>,
    /// Per stream, the indexed appends from the one last checked on (one
    /// index run), so each run is read once, not once per record.
    runs: HashMap<StreamId, VecDeque<Span>>,
    /// True for a window: the first record's own prev_hash is trusted.
    trust_first_prev: bool,
    /// Last position to walk when the log is live (appends continue while
    /// the walk runs); `None` walks every stored record.
    end: Option<u64>,
    /// Records checked so far.
    pub(crate) records: u64,
    /// The head meta, read when the walk started.
    pub(crate) head_meta: Option<(u64, Hash)>,
    /// Positions `1..=indexed` must be found through the stream index and
    /// the command index.
    indexed: u64,
    /// The command index's entry for the append of the last record checked,
    /// so an append's records cost one lookup, not one each.
    command: Option<IndexedAppend>,
    /// The first failure found.
    pub(crate) failure: Option<(u64, String)>,
    /// Set when every record has been walked.
    pub(crate) done: bool,
}

fn read_head_meta(log: &sled::Tree) -> Result<Option<(u64, Hash)>, StoreError> {
    match log.get(keys::head_key())? {
        None => Ok(None),
        Some(v) => keys::parse_head_meta(&v)
            .map(Some)
            .ok_or(StoreError::Corrupt {
                position: 0,
                reason: "malformed head meta".into(),
            }),
    }
}

fn read_indexed(log: &sled::Tree) -> Result<u64, StoreError> {
    match log.get(keys::indexed_key())? {
        None => Ok(0),
        Some(v) => keys::parse_u64(&v).ok_or(StoreError::Corrupt {
            position: 0,
            reason: "malformed indexed-through position".into(),
        }),
    }
}

impl Walk {
    /// A walk over the whole log.
    pub(crate) fn full(log: sled::Tree) -> Result<Self, StoreError> {
        let head_meta = read_head_meta(&log)?;
        let indexed = read_indexed(&log)?;
        Ok(Walk {
            indexed,
            log,
            next: 1,
            prev_hash: [0; HASH_BYTES],
            versions: Some(HashMap::new()),
            runs: HashMap::new(),
            command: None,
            trust_first_prev: false,
            end: None,
            records: 0,
            head_meta,
            failure: None,
            done: false,
        })
    }

    /// A walk over the whole log up to `end`, the durable head of a live store.
    pub(crate) fn live(log: sled::Tree, end: u64) -> Result<Self, StoreError> {
        let mut walk = Walk::full(log)?;
        walk.end = Some(end);
        Ok(walk)
    }

    /// A walk over the last `records` records (the check done on open).
    pub(crate) fn tail(log: sled::Tree, records: u64) -> Result<Self, StoreError> {
        let head_meta = read_head_meta(&log)?;
        let head = head_meta.map_or(0, |(p, _)| p);
        Ok(Walk {
            log,
            next: head.saturating_sub(records).max(1),
            prev_hash: [0; HASH_BYTES],
            versions: None,
            runs: HashMap::new(),
            command: None,
            indexed: 0,
            trust_first_prev: true,
            end: None,
            records: 0,
            head_meta,
            failure: None,
            done: false,
        })
    }

    /// Total records the head meta announces (for progress).
    pub(crate) fn total(&self) -> u64 {
        self.end.unwrap_or(self.head_meta.map_or(0, |(p, _)| p))
    }

    fn fail(&mut self, position: u64, reason: impl Into<String>) {
        self.failure = Some((position, reason.into()));
        self.done = true;
    }

    /// Checks up to `max` more records; sets `done` at the end or on failure.
    pub(crate) fn step(&mut self, max: u64) -> Result<(), StoreError> {
        if self.done {
            return Ok(());
        }
        let end = self.end.unwrap_or(u64::MAX);
        if self.next > end {
            self.finish();
            return Ok(());
        }
        let log = self.log.clone();
        let mut checked = 0;
        let mut bad: Option<(u64, String)> = None;
        let scanned = reads::scan_records(&log, self.next, end, |position, bytes| {
            checked += 1;
            if let Err(reason) = self.check(position, bytes) {
                bad = Some((position, reason));
                return Ok(false);
            }
            self.next = position + 1;
            self.records += 1;
            Ok(checked < max)
        });
        match scanned {
            Err(StoreError::Corrupt { position, reason }) => self.fail(position, reason),
            Err(e) => return Err(e),
            Ok(_) if bad.is_some() => {
                if let Some((position, reason)) = bad {
                    self.fail(position, reason);
                }
            }
            Ok(_) if checked < max => self.finish(),
            Ok(_) => {}
        }
        Ok(())
    }

    fn check(&mut self, position: u64, bytes: &[u8]) -> Result<(), String> {
        let rec = codec::decode(position, bytes).map_err(reason)?;
        if self.trust_first_prev && self.records == 0 {
            self.prev_hash = rec.prev_hash;
        }
        if rec.prev_hash != self.prev_hash {
            return Err("previous-hash does not match the previous record".into());
        }
        self.prev_hash = codec::check_hash(position, bytes, &self.prev_hash).map_err(reason)?;
        if let Some(versions) = &mut self.versions {
            let last = versions.entry(rec.stream_id).or_insert(0);
            if rec.stream_version != *last + 1 {
                return Err(format!(
                    "stream {} jumps from version {} to {}",
                    rec.stream_id, last, rec.stream_version
                ));
            }
            *last = rec.stream_version;
            if position <= self.indexed {
                let indexed = self
                    .indexed_position(&rec.stream_id, rec.stream_version)
                    .map_err(reason)?;
                if indexed != Some(position) {
                    return Err("stream index does not point at this record".into());
                }
                self.check_command_index(&rec.command_id, &rec.stream_id, position)
                    .map_err(reason)?;
            }
        }
        Ok(())
    }

    /// Where the stream index puts `stream` at `version` (versions are asked
    /// in increasing order per stream).
    fn indexed_position(
        &mut self,
        stream: &StreamId,
        version: u64,
    ) -> Result<Option<u64>, StoreError> {
        let run = self.runs.entry(*stream).or_default();
        while run.front().is_some_and(|s| s.last_version() < version) {
            run.pop_front();
        }
        if run.is_empty() {
            *run = index::spans_from(&self.log, stream, version, 1)?.into();
        }
        Ok(run.front().and_then(|s| s.position_of(version)))
    }

    /// The command index must hold the record's command with an append that
    /// covers this position in this stream: idempotent retries rely on it.
    fn check_command_index(
        &mut self,
        command: &uuid::Uuid,
        stream: &StreamId,
        position: u64,
    ) -> Result<(), StoreError> {
        let covers = |a: &IndexedAppend| {
            a.command == *command
                && a.stream == *stream
                && (a.span.first_position..=a.span.last_position()).contains(&position)
        };
        if self.command.as_ref().is_some_and(covers) {
            return Ok(());
        }
        self.command = index::find_command(&self.log, command)?;
        if self.command.as_ref().is_some_and(covers) {
            return Ok(());
        }
        Err(StoreError::Corrupt {
            position,
            reason: format!("command index does not point at this record (command {command})"),
        })
    }

    /// After the last record: the head meta must name it.
    fn finish(&mut self) {
        self.done = true;
        let last = self.next - 1;
        if let Some(end) = self.end {
            if last < end {
                self.failure = Some((
                    last + 1,
                    format!("truncated tail: log ends at {last}, durable head is {end}"),
                ));
            } else if let Ok(Some((head, hash))) = read_head_meta(&self.log) {
                // The writer may have moved on; compare only if it has not.
                if head == last && last > 0 && hash != self.prev_hash {
                    self.failure =
                        Some((last, "head meta hash does not match the last record".into()));
                }
            }
            return;
        }
        match self.head_meta {
            None if last > 0 => self.failure = Some((last, "head meta missing".into())),
            None => {}
            Some((head, _)) if head > last => {
                self.failure = Some((
                    last + 1,
                    format!("truncated tail: log ends at {last}, head meta says {head}"),
                ))
            }
            Some((head, _)) if head < last => {
                self.failure = Some((head + 1, format!("records beyond the head meta's {head}")))
            }
            Some((_, hash)) if last > 0 && hash != self.prev_hash => {
                self.failure = Some((last, "head meta hash does not match the last record".into()))
            }
            Some(_) => {}
        }
    }

    /// The report of a finished walk.
    pub(crate) fn report(&self) -> VerifyReport {
        VerifyReport {
            records: self.records,
            head: self.total(),
            failure: self.failure.clone(),
        }
    }
}

fn reason(e: StoreError) -> String {
    match e {
        StoreError::Corrupt { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// Checks the tail of an open log; `Err(Corrupt)` if it fails.
pub(crate) fn check_tail(log: &sled::Tree, records: u64) -> Result<(), StoreError> {
    let mut walk = Walk::tail(log.clone(), records)?;
    while !walk.done {
        walk.step(records + 1)?;
    }
    match walk.failure {
        None => Ok(()),
        Some((position, reason)) => Err(StoreError::Corrupt { position, reason }),
    }
}

/// Verifies a store directory without starting a writer (for a CLI that must
/// inspect damaged stores, which `open` refuses). Blocking; the store must
/// not be open elsewhere.
pub fn verify_dir(path: &Path, progress: &dyn Fn(u64, u64)) -> Result<VerifyReport, StoreError> {
    if !path.join("db").is_file() {
        return Err(StoreError::Unavailable(format!(
            "no store at {}",
            path.display()
        )));
    }
    // A store closed a moment ago may still hold sled's directory lock.
    let db = super::open_db(path, super::CACHE_CAPACITY_BYTES_DEFAULT)?;
    let log = db.open_tree(keys::LOG_TREE)?;
    super::check_layout(&log)?;
    let mut walk = Walk::full(log)?;
    while !walk.done {
        walk.step(VERIFY_STEP_RECORDS)?;
        progress(walk.records, walk.total());
    }
    Ok(walk.report())
}
