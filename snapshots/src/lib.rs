//! Snapshots of aggregates and projections (see `store.rs`).
