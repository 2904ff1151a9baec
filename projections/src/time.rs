//! Instants kept as UTC microseconds: compact in snapshots, exact in sums.

use chrono::{DateTime, Utc};

/// Microseconds since the Unix epoch, UTC.
pub type Micros = i64;

/// The instant as microseconds.
pub fn micros(at: &DateTime<Utc>) -> Micros {
    at.timestamp_micros()
}

/// The microseconds as an instant (out-of-range values clamp to the epoch,
/// which only a corrupt snapshot could hold; its checksum catches that).
pub fn instant(us: Micros) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(us).unwrap_or_default()
}

/// A duration in microseconds as seconds.
pub fn seconds(us: i64) -> f64 {
    us as f64 / 1_000_000.0
}
