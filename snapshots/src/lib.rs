//! Snapshots of aggregates and projections.
//!
//! A snapshot only ever saves time: loading an aggregate is "latest valid
//! snapshot + the tail of its stream", and any snapshot that is missing,
//! corrupt, outdated or does not match the log is ignored in favour of a
//! full replay. Deleting every snapshot changes speed, never behaviour.
//!
//! Storage goes through [`event_store::KvTree`]; this crate never touches
//! the backend directly.

pub mod aggregate;
pub mod blob;
pub mod envelope;
pub mod error;
pub mod keys;
pub mod store;

pub use aggregate::Aggregate;
pub use blob::Blob;
pub use error::SnapshotError;
pub use store::{Loaded, SnapshotConfig, SnapshotStore};
