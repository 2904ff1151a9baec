//! Walking the PostgreSQL log as sled's is walked: every record's checksum
//! and decoding, its columns against its bytes, contiguity of positions and
//! stream versions, the hash chain, and the head row at the end.

use std::collections::HashMap;

use deadpool_postgres::Pool;
use uuid::Uuid;

use crate::codec;
use crate::error::StoreError;
use crate::limits::VERIFY_STEP_RECORDS;
use crate::record::{Hash, HASH_BYTES};
use crate::store::VerifyReport;

use super::reads::pooled;
use super::rows::{col, hash_of};

/// Walks the log up to the head committed when the walk starts.
pub(crate) async fn verify(
    pool: &Pool,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<VerifyReport, StoreError> {
    let client = pooled(pool).await?;
    let head_row = client
        .query_one("SELECT position, hash FROM log_head", &[])
        .await?;
    let head = col::<i64>(&head_row, 0)? as u64;
    let head_hash = hash_of(col(&head_row, 1)?, head)?;
    let page = client
        .prepare(
            "SELECT position, stream_id, stream_version, command_id, record FROM events \
             WHERE position >= $1 AND position <= $2 ORDER BY position LIMIT $3",
        )
        .await?;
    let mut report = VerifyReport {
        records: 0,
        head,
        failure: None,
    };
    let mut prev_hash: Hash = [0; HASH_BYTES];
    let mut versions: HashMap<Uuid, u64> = HashMap::new();
    let mut next = 1u64;
    while next <= head {
        let rows = client
            .query(
                &page,
                &[
                    &(next as i64),
                    &(head as i64),
                    &(VERIFY_STEP_RECORDS as i64),
                ],
            )
            .await?;
        if rows.is_empty() {
            report.failure = Some((next, "record missing".into()));
            return Ok(report);
        }
        for row in &rows {
            let position = col::<i64>(row, 0)? as u64;
            if let Err(reason) = check_row(row, next, &prev_hash, &mut versions).map(|h| {
                prev_hash = h;
            }) {
                report.failure = Some((position.min(next), reason));
                return Ok(report);
            }
            next += 1;
            report.records += 1;
        }
        progress(report.records, head);
    }
    if prev_hash != head_hash {
        report.failure = Some((
            head,
            "head row's hash differs from the last record's".into(),
        ));
    }
    progress(report.records, head);
    Ok(report)
}

/// Checks one row expected at `position`; returns its hash.
fn check_row(
    row: &tokio_postgres::Row,
    position: u64,
    prev_hash: &Hash,
    versions: &mut HashMap<Uuid, u64>,
) -> Result<Hash, String> {
    let at = col::<i64>(row, 0).map_err(|e| e.to_string())? as u64;
    if at != position {
        return Err(format!("record {position} missing (next stored is {at})"));
    }
    let bytes: &[u8] = col(row, 4).map_err(|e| e.to_string())?;
    let rec = codec::decode(position, bytes).map_err(|e| e.to_string())?;
    let stream: Uuid = col(row, 1).map_err(|e| e.to_string())?;
    let version = col::<i64>(row, 2).map_err(|e| e.to_string())? as u64;
    let command: Uuid = col(row, 3).map_err(|e| e.to_string())?;
    if (rec.stream_id, rec.stream_version, rec.command_id) != (stream, version, command) {
        return Err("the row's columns differ from its record".into());
    }
    let last = versions.entry(stream).or_insert(0);
    if version != *last + 1 {
        return Err(format!(
            "stream {stream} jumps from version {last} to {version}"
        ));
    }
    *last = version;
    if rec.prev_hash != *prev_hash {
        return Err("hash chain broken".into());
    }
    codec::check_hash(position, bytes, prev_hash).map_err(|e| e.to_string())
}
