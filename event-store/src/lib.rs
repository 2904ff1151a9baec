//! Ticketlog's append-only event log.
//!
//! Owns the event schema (the storage contract, with its versions and
//! upcasting), the [`EventStore`] trait and its embedded sled backend, the
//! record format with checksums and a hash chain, the one way to read it
//! page by page ([`paging::Pages`]) and the one visibility rule
//! ([`access::can_see`]).

pub mod access;
mod appending;
pub mod codec;
pub mod error;
pub mod faults;
pub mod kv;
pub mod limits;
pub mod paging;
pub mod pg_store;
pub mod record;
pub mod schema;
pub mod sled_store;
pub mod store;
mod subscription;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod upcast;

pub use access::{
    can_list_user, can_see, can_see_stream, can_see_visibility, is_staff_response, Gate,
    Permission, Principal, Role, StreamAudience,
};
pub use error::StoreError;
pub use faults::{FaultPoint, FaultSpan, StorageFaults};
pub use kv::{KvEntry, KvProvider, KvTree};
pub use paging::Pages;
pub use pg_store::{PgOptions, PgStore};
pub use record::{
    same_request, Actor, AppendOutcome, AppendRequest, Appended, ExpectedVersion, Hash, NewEvent,
    PriorCommand, RecordedEvent, Tenant, Visibility,
};
pub use schema::*;
pub use sled_store::{SledOptions, SledStore};
pub use store::{EventStore, EventStream, Storage, VerifyReport};
