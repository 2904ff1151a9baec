//! What a type must provide to be snapshotted and replayed.

use event_store::RecordedEvent;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A state folded from one stream's events.
///
/// `Default` is the state before the stream's first event: a full replay
/// starts from it, so it must be the same value every time.
pub trait Aggregate: Default + Serialize + DeserializeOwned + Send + Sync {
    /// Name of the aggregate type; snapshots of different types never mix.
    const NAME: &'static str;
    /// Version of the snapshot encoding of this type. Bump it whenever the
    /// state's fields or the meaning of `evolve` change: older snapshots are
    /// then ignored and the state is rebuilt from the log.
    const SNAPSHOT_VERSION: u16;

    /// The state after `event` (pure: no I/O, clock or randomness).
    fn evolve(self, event: &RecordedEvent) -> Self;
}
