//! Importing a log written by another backend (`ticketlog migrate-store`):
//! its records stored byte for byte at their positions, with the rows the
//! appends that wrote them would have written here (stream heads, first
//! outcomes with their request fingerprints, the log head), through the
//! same statements as `append`.
//!
//! Each call is one transaction under the locked log head, like an
//! append: it goes on only from the head and only chained to the head's
//! hash, so a database holding another log (or one that moved on since
//! the caller looked) is refused and nothing of the batch is written.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::codec::{self, RawRecord};
use crate::error::StoreError;
use crate::limits::PG_HEAD_LOCK_TIMEOUT_MILLIS;
use crate::record::{Hash, RecordedEvent};
use crate::schema::StreamKind;

use super::append::{
    Params, INSERT_COMMANDS_SQL, INSERT_EVENTS_SQL, INSERT_STREAMS_SQL, LOCK_HEAD_SQL,
    SELECT_STREAMS_SQL, SET_HEAD_SQL, UPDATE_STREAMS_SQL,
};
use super::batch_rows::BatchRows;
use super::reads::pooled;
use super::rows::{col, hash_of, kind_from_name};
use super::PgStore;

/// One append of an imported batch: what its `commands` row and its
/// stream's head need.
struct Run {
    command: Uuid,
    stream: Uuid,
    first_position: u64,
    last_position: u64,
    first_version: u64,
    last_version: u64,
    kind: StreamKind,
    tenant: String,
    fingerprint: Option<Hash>,
}

/// A batch checked on its own, before the head is locked, with the
/// columns of its `events` rows.
#[derive(Default)]
struct Checked {
    first_position: u64,
    first_prev_hash: Hash,
    last_hash: Hash,
    runs: Vec<Run>,
    positions: Vec<i64>,
    streams: Vec<Uuid>,
    versions: Vec<i64>,
    commands: Vec<Uuid>,
    records: Vec<Vec<u8>>,
}

/// Why a batch does not fit the database's log (nothing was written).
fn refused(reason: String) -> StoreError {
    StoreError::Invalid(format!("import refused: {reason}"))
}

/// Decodes and checks `records` among themselves: each record intact
/// (checksum, claimed position, its own hash), positions consecutive, the
/// hash chain unbroken, each append of one kind, tenant and fingerprint,
/// each command id in one append only.
fn check(records: Vec<RawRecord>) -> Result<Checked, StoreError> {
    let mut batch = Checked::default();
    let mut prev: Option<RecordedEvent> = None;
    let mut seen = HashSet::new();
    for raw in records {
        let rec = codec::decode(raw.position, &raw.bytes)?;
        codec::check_hash(raw.position, &raw.bytes, &rec.prev_hash)?;
        let kind = rec.payload.stream_kind();
        match &prev {
            None => {
                batch.first_position = rec.position;
                batch.first_prev_hash = rec.prev_hash;
            }
            Some(p) if rec.position != p.position + 1 => {
                return Err(refused(format!(
                    "the records skip from position {} to {}",
                    p.position, rec.position
                )))
            }
            Some(p) if rec.prev_hash != p.hash => {
                return Err(StoreError::Corrupt {
                    position: rec.position,
                    reason: "does not chain to the previous record".into(),
                })
            }
            Some(_) => {}
        }
        let continues = prev
            .as_ref()
            .is_some_and(|p| !codec::starts_append(p, &rec));
        match batch.runs.last_mut() {
            Some(run) if continues => {
                if run.kind != kind
                    || run.tenant != rec.tenant
                    || run.fingerprint != rec.request_fingerprint
                {
                    return Err(refused(format!(
                        "the append of command {} at position {} changes kind, tenant or \
                         fingerprint",
                        run.command, rec.position
                    )));
                }
                run.last_position = rec.position;
                run.last_version = rec.stream_version;
            }
            _ => {
                if !seen.insert(rec.command_id) {
                    return Err(refused(format!(
                        "command {} appends twice (again at position {})",
                        rec.command_id, rec.position
                    )));
                }
                batch.runs.push(Run {
                    command: rec.command_id,
                    stream: rec.stream_id,
                    first_position: rec.position,
                    last_position: rec.position,
                    first_version: rec.stream_version,
                    last_version: rec.stream_version,
                    kind,
                    tenant: rec.tenant.clone(),
                    fingerprint: rec.request_fingerprint,
                });
            }
        }
        batch.positions.push(rec.position as i64);
        batch.streams.push(rec.stream_id);
        batch.versions.push(rec.stream_version as i64);
        batch.commands.push(rec.command_id);
        batch.records.push(raw.bytes);
        batch.last_hash = rec.hash;
        prev = Some(rec);
    }
    Ok(batch)
}

/// A stream's head as the batch finds it and leaves it.
struct Head {
    /// The version the database has (0: no stream).
    stored: u64,
    version: u64,
    kind: StreamKind,
    tenant: String,
}

impl PgStore {
    /// Appends `records`, the stored records of another store's log (whole
    /// appends, in position order), unchanged after this log's head, with
    /// the stream heads, command outcomes and log head an append of them
    /// would have written, in one transaction. Refused with nothing
    /// written unless they are intact and chained among themselves, start
    /// at the head's next position chained to the head's hash, continue
    /// every stream at its next version (same kind and tenant) and carry
    /// no command id the log holds. Returns the new head position.
    pub async fn import_records(&self, records: Vec<RawRecord>) -> Result<u64, StoreError> {
        if records.is_empty() {
            return Ok(self.head_hash().await?.0);
        }
        let batch = check(records)?;
        let mut client = pooled(&self.shared.pool).await?;
        let tx = client.transaction().await?;
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = {PG_HEAD_LOCK_TIMEOUT_MILLIS}"
        ))
        .await?;
        let head_row = tx.query_one(LOCK_HEAD_SQL, &[]).await?;
        let head = col::<i64>(&head_row, 0)? as u64;
        let head_hash = hash_of(col(&head_row, 1)?, head)?;
        if batch.first_position != head + 1 {
            return Err(refused(format!(
                "the database's log ends at position {head}; the records start at {}",
                batch.first_position
            )));
        }
        if batch.first_prev_hash != head_hash {
            return Err(refused(format!(
                "the database holds another log: its record {head} has hash {}, the records \
                 continue a record with hash {}",
                RecordedEvent::hex(&head_hash),
                RecordedEvent::hex(&batch.first_prev_hash)
            )));
        }
        let stream_ids: Vec<Uuid> = batch
            .runs
            .iter()
            .map(|r| r.stream)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let command_ids: Vec<Uuid> = batch.runs.iter().map(|r| r.command).collect();
        let (streams_p, commands_p): (Params<1>, Params<1>) = ([&stream_ids], [&command_ids]);
        let (stream_rows, known) = futures::try_join!(
            tx.query(SELECT_STREAMS_SQL, &streams_p),
            tx.query(
                "SELECT command_id FROM commands WHERE command_id = ANY($1) LIMIT 1",
                &commands_p
            ),
        )?;
        if let Some(row) = known.first() {
            return Err(refused(format!(
                "command {} is in the database's log already",
                col::<Uuid>(row, 0)?
            )));
        }
        let mut heads: HashMap<Uuid, Head> = HashMap::new();
        for row in &stream_rows {
            let version = col::<i64>(row, 1)? as u64;
            heads.insert(
                col(row, 0)?,
                Head {
                    stored: version,
                    version,
                    kind: kind_from_name(&col::<String>(row, 2)?)?,
                    tenant: col(row, 3)?,
                },
            );
        }
        for run in &batch.runs {
            let head = heads.entry(run.stream).or_insert_with(|| Head {
                stored: 0,
                version: 0,
                kind: run.kind,
                tenant: run.tenant.clone(),
            });
            if run.first_version != head.version + 1 {
                return Err(refused(format!(
                    "stream {} is at version {}; the record at position {} has version {}",
                    run.stream, head.version, run.first_position, run.first_version
                )));
            }
            if head.kind != run.kind || head.tenant != run.tenant {
                return Err(refused(format!(
                    "the record at position {} changes the kind or tenant of stream {}",
                    run.first_position, run.stream
                )));
            }
            head.version = run.last_version;
        }
        write(&tx, &batch, head, &heads).await?;
        tx.commit().await?;
        Ok(batch.positions.last().map_or(head, |p| *p as u64))
    }

    /// The log head: its position and its record's hash (zeroes for an
    /// empty log).
    pub async fn head_hash(&self) -> Result<(u64, Hash), StoreError> {
        let client = pooled(&self.shared.pool).await?;
        let row = client
            .query_one("SELECT position, hash FROM log_head", &[])
            .await?;
        let head = col::<i64>(&row, 0)? as u64;
        Ok((head, hash_of(col(&row, 1)?, head)?))
    }
}

/// Writes a checked batch inside the open transaction (one round trip),
/// checking that every stream head and the log head moved from where they
/// were read.
async fn write(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &Checked,
    start: u64,
    heads: &HashMap<Uuid, Head>,
) -> Result<(), StoreError> {
    let mut rows = BatchRows::default();
    for run in &batch.runs {
        rows.command(
            run.command,
            run.stream,
            (run.first_position, run.last_position),
            run.last_version,
            run.fingerprint.as_ref(),
        );
    }
    for (id, head) in heads {
        rows.stream_head(*id, head.stored, head.version, head.kind, &head.tenant);
    }
    let last = batch.positions.last().copied().unwrap_or(start as i64);
    let hash = batch.last_hash.to_vec();
    let start = start as i64;
    let events_p: Params<5> = [
        &batch.positions,
        &batch.streams,
        &batch.versions,
        &batch.commands,
        &batch.records,
    ];
    let (commands_p, new_p, up_p) = (rows.commands(), rows.new_streams(), rows.moved_streams());
    let head_p: Params<3> = [&last, &hash, &start];
    let (_, _, _, updated, moved) = futures::try_join!(
        tx.execute(INSERT_EVENTS_SQL, &events_p),
        tx.execute(INSERT_COMMANDS_SQL, &commands_p),
        tx.execute(INSERT_STREAMS_SQL, &new_p),
        tx.execute(UPDATE_STREAMS_SQL, &up_p),
        tx.execute(SET_HEAD_SQL, &head_p),
    )?;
    rows.check_moved(updated, moved)
}
