//! Read models folded from the log: tickets, chat, statistics, audit.
//!
//! Every view is a pure fold over recorded events ([`ReadModel::apply`]);
//! permission filtering goes only through `event_store::access` (its
//! `Gate` applies the rule to items kept without their records, by the
//! visibility each kept).
//! [`Projections`] is the live, shared handle: it loads a snapshot,
//! catches up, follows the log, rebuilds beside and swaps, and answers
//! each query route with one call.
//!
//! Wiring in the server (sketch):
//!
//! ```text
//! let (projections, report) = Projections::open(store.clone(), store.clone(), ProjectionsConfig::default()).await?;
//! let follower = projections.spawn();          // follows the live log
//! // route handlers: projections.tickets(&principal, &query) etc.;
//! // with ?min_position=N first: projections.wait_for(N, timeout).await?
//! // admin rebuild: projections.rebuild(Some(progress)).await? (reads continue meanwhile)
//! // shutdown: projections.stop(); follower.await?? (writes a final snapshot)
//! ```

pub mod audit;
pub mod chat;
pub mod cursor;
pub mod error;
pub mod limits;
pub mod model;
pub mod persist;
pub mod query;
pub mod replay;
pub mod runner;
pub mod stats;
pub mod ticket;
pub mod time;

pub use audit::{AuditEntry, AuditReport, EventsPage};
pub use chat::{ChatItem, ChatPage};
pub use error::ProjectionError;
pub use model::{ReadModel, UnreadSummary};
pub use query::{AsOf, Page, TicketQuery};
pub use runner::{
    OpenReport, Progress, Projections, ProjectionsConfig, RebuildReport, SnapshotSource,
    PROJECTION_NAMES,
};
pub use stats::{
    DispatchFigures, DispatchReport, GroupBy, GroupStats, SlaTargets, StatsQuery, StatsReport,
};
pub use ticket::{DispatchView, ShownTicket, TicketView};
