//! Executing commands against the event store: load (snapshot + tail),
//! decide, append at the version decided on.

pub mod audit;
pub mod error;
pub mod execute;
pub mod fleet;
pub mod key;
pub mod members;
pub mod numbers;
pub mod outcome;
pub mod receipts;
pub mod replay;
pub mod system;

pub use audit::{record_user_change, user_stream};
pub use error::ServiceError;
pub use execute::{CommandService, ExpiredDispatch, ServiceConfig, EXPIRE_DISPATCHES_PER_CALL_MAX};
pub use fleet::{FleetIndex, FleetView, OverdueDispatch};
pub use key::CommandKey;
pub use members::{Members, StaticMembers};
pub use numbers::counter_stream;
pub use outcome::{Appended, CommandOutcome, Created, CreatedTicket};
pub use receipts::{ReceiptDesk, RECEIPT_SLOTS_MAX, RECEIPT_STORE_INTERVAL_MS};
pub use replay::{replay_dispatch_choices, ReplayedChoice};
pub use system::{derived_command, system_principal, FollowUpKind, SYSTEM_USER_ID};

#[cfg(test)]
mod dispatch_tests;
#[cfg(test)]
mod tests;
