//! Reads through the pool: pages of the log and of a stream, checked for
//! contiguity and chaining on the way out, the heads and command lookups.
//! Every read sees one snapshot; since appends commit in position order
//! (see `append`), a snapshot holds a gapless prefix of the log.

use deadpool_postgres::Pool;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::codec;
use crate::error::StoreError;
use crate::limits::READ_PAGE_MAX;
use crate::record::{PriorCommand, RecordedEvent};
use crate::schema::StreamId;

use super::rows::{col, prior_command};

fn corrupt(position: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        position,
        reason: reason.into(),
    }
}

/// A pooled session, or `Unavailable`.
pub(crate) async fn pooled(pool: &Pool) -> Result<deadpool_postgres::Client, StoreError> {
    pool.get()
        .await
        .map_err(|e| StoreError::Unavailable(format!("database: {e}")))
}

/// The rows of a page query whose last parameter is the page size:
/// `params` then `limit` (capped at [`READ_PAGE_MAX`]); none for a limit 0.
async fn page(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    limit: usize,
) -> Result<Vec<Row>, StoreError> {
    let limit = limit.min(READ_PAGE_MAX) as i64;
    if limit == 0 {
        return Ok(Vec::new());
    }
    let client = pooled(pool).await?;
    let statement = client.prepare_cached(sql).await?;
    let mut all: Vec<&(dyn ToSql + Sync)> = params.to_vec();
    all.push(&limit);
    Ok(client.query(&statement, &all).await?)
}

/// Records with position ≥ `from`, at most `limit` (capped), checked
/// gapless and chained.
pub(crate) async fn read_all(
    pool: &Pool,
    from: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let from = from.max(1);
    let rows = page(
        pool,
        "SELECT position, record FROM events WHERE position >= $1 ORDER BY position LIMIT $2",
        &[&(from as i64)],
        limit,
    )
    .await?;
    let mut out: Vec<RecordedEvent> = Vec::with_capacity(rows.len());
    for row in &rows {
        let position = col::<i64>(row, 0)? as u64;
        let expected = from + out.len() as u64;
        if position != expected {
            return Err(corrupt(expected, "record missing"));
        }
        let rec = codec::decode(position, col::<&[u8]>(row, 1)?)?;
        if let Some(prev) = out.last() {
            if rec.prev_hash != prev.hash {
                return Err(corrupt(position, "does not chain to the previous record"));
            }
        }
        out.push(rec);
    }
    Ok(out)
}

/// Events of `stream` with version ≥ `from_version`, at most `limit` (capped).
pub(crate) async fn read_stream(
    pool: &Pool,
    stream: StreamId,
    from_version: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let from = from_version.max(1);
    let rows = page(
        pool,
        "SELECT position, record FROM events WHERE stream_id = $1 AND stream_version >= $2 \
         ORDER BY stream_version LIMIT $3",
        &[&stream, &(from as i64)],
        limit,
    )
    .await?;
    let mut out: Vec<RecordedEvent> = Vec::with_capacity(rows.len());
    for row in &rows {
        let position = col::<i64>(row, 0)? as u64;
        let rec = codec::decode(position, col::<&[u8]>(row, 1)?)?;
        let expected = from + out.len() as u64;
        if rec.stream_id != stream || rec.stream_version != expected {
            return Err(corrupt(
                position,
                format!("stream {stream} version {expected} missing"),
            ));
        }
        out.push(rec);
    }
    Ok(out)
}

/// The version of `stream` (0 if it does not exist).
pub(crate) async fn stream_version(pool: &Pool, stream: StreamId) -> Result<u64, StoreError> {
    let client = pooled(pool).await?;
    let statement = client
        .prepare_cached("SELECT version FROM streams WHERE stream_id = $1")
        .await?;
    let row = client.query_opt(&statement, &[&stream]).await?;
    Ok(match row {
        Some(row) => col::<i64>(&row, 0)? as u64,
        None => 0,
    })
}

/// The log's committed head position.
pub(crate) async fn head(pool: &Pool) -> Result<u64, StoreError> {
    let client = pooled(pool).await?;
    let statement = client
        .prepare_cached("SELECT position FROM log_head")
        .await?;
    let row = client.query_one(&statement, &[]).await?;
    Ok(col::<i64>(&row, 0)? as u64)
}

/// The first append of `command`, if the log holds one.
pub(crate) async fn find_command(
    pool: &Pool,
    command: Uuid,
) -> Result<Option<PriorCommand>, StoreError> {
    let client = pooled(pool).await?;
    let statement = client
        .prepare_cached(
            "SELECT command_id, stream_id, first_position, position, version, \
             request_fingerprint FROM commands WHERE command_id = $1",
        )
        .await?;
    match client.query_opt(&statement, &[&command]).await? {
        Some(row) => prior_command(&row).map(Some),
        None => Ok(None),
    }
}
