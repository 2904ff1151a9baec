//! Reading the store's rows into its types.

use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use crate::error::StoreError;
use crate::record::{AppendOutcome, Hash, PriorCommand, HASH_BYTES};
use crate::schema::StreamKind;

/// Column `i` of `row`, or `Unavailable` if it does not have that type.
pub(crate) fn col<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i)
        .map_err(|e| StoreError::Unavailable(format!("unexpected row from the database: {e}")))
}

/// A stored hash, or `Corrupt` at `position` if it is not one.
pub(crate) fn hash_of(bytes: Vec<u8>, position: u64) -> Result<Hash, StoreError> {
    <[u8; HASH_BYTES]>::try_from(bytes).map_err(|b| StoreError::Corrupt {
        position,
        reason: format!("stored hash of {} bytes", b.len()),
    })
}

/// The name a stream kind is stored under (its serde name).
pub(crate) fn kind_name(kind: StreamKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{kind:?}"),
    }
}

/// The stream kind stored as `name`.
pub(crate) fn kind_from_name(name: &str) -> Result<StreamKind, StoreError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).map_err(|_| {
        StoreError::Corrupt {
            position: 0,
            reason: format!("unknown stream kind {name:?} in the stream heads"),
        }
    })
}

/// A `commands` row (command_id, stream_id, first_position, position,
/// version, request_fingerprint) as a retry sees it.
pub(crate) fn prior_command(row: &Row) -> Result<PriorCommand, StoreError> {
    let first_position = col::<i64>(row, 2)? as u64;
    let request_fingerprint = match col::<Option<Vec<u8>>>(row, 5)? {
        Some(bytes) => Some(hash_of(bytes, first_position)?),
        None => None,
    };
    Ok(PriorCommand {
        outcome: AppendOutcome {
            stream_id: col(row, 1)?,
            version: col::<i64>(row, 4)? as u64,
            first_position,
            position: col::<i64>(row, 3)? as u64,
            duplicate: true,
        },
        request_fingerprint,
    })
}
