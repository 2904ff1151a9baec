//! Executing commands against the event store: load (snapshot + tail),
//! decide, append at the version decided on.

pub mod error;
pub mod execute;
pub mod fleet;
pub mod numbers;

pub use error::ServiceError;
pub use execute::{CommandService, ServiceConfig};
pub use fleet::FleetIndex;
pub use numbers::counter_stream;

#[cfg(test)]
mod tests;
