//! Instants kept as UTC microseconds: compact in snapshots, exact in sums.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// An instant that is RFC 3339 in human-readable encodings (the API's
/// JSON) and microseconds in the others (the read model's snapshot), so
/// one ticket type serves both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown(pub Micros);

impl Serialize for Shown {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            instant(self.0).serialize(serializer)
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Shown {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            DateTime::<Utc>::deserialize(deserializer).map(|at| Shown(micros(&at)))
        } else {
            Micros::deserialize(deserializer).map(Shown)
        }
    }
}

/// `#[serde(with)]` for a `Micros` field encoded as [`Shown`].
pub mod shown {
    use super::{Micros, Shown};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Encodes the field as [`Shown`].
    pub fn serialize<S: Serializer>(us: &Micros, serializer: S) -> Result<S::Ok, S::Error> {
        Shown(*us).serialize(serializer)
    }

    /// Decodes the field from [`Shown`].
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Micros, D::Error> {
        Shown::deserialize(deserializer).map(|s| s.0)
    }
}

/// `#[serde(with)]` for an `Option<Micros>` field encoded as [`Shown`].
pub mod shown_opt {
    use super::{Micros, Shown};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Encodes the field as an optional [`Shown`].
    pub fn serialize<S: Serializer>(us: &Option<Micros>, serializer: S) -> Result<S::Ok, S::Error> {
        us.map(Shown).serialize(serializer)
    }

    /// Decodes the field from an optional [`Shown`].
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Micros>, D::Error> {
        Option::<Shown>::deserialize(deserializer).map(|o| o.map(|s| s.0))
    }
}
