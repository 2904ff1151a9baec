//! Executing commands against the event store (see execute.rs).
