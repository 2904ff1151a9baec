//! Live feed over WebSocket: `GET /ws`.
//!
//! One hub task follows the log and fans every event out to rooms
//! (`ticket:<id>`, `user:<id>`, `tickets`), filtered by the event store's
//! one visibility rule and serialized once per room. Clients resume with
//! `after` and get every visible event they missed, with no gap and no
//! duplicate. Slow clients are closed (4008), never waited for.
//!
//! Mounting it (command-api):
//!
//! ```ignore
//! struct JwtAuth(/* the verifier */);
//! impl live_feed::Authenticate for JwtAuth {
//!     fn principal(&self, token: &str) -> Result<(Principal, DateTime<Utc>), live_feed::AuthRejected> {
//!         // verify; map claims to a Principal (name from the directory, or the sub) and `exp`
//!     }
//! }
//! let feed = live_feed::FeedState::new(store.clone(), Arc::new(JwtAuth(..)), live_feed::FeedConfig::default())
//!     .with_read_receipts(Arc::new(ReceiptsViaCommand(..)));
//! let app = api_router.merge(live_feed::router(feed.clone()));
//! // on SIGTERM, next to axum's graceful shutdown:
//! feed.shutdown();
//! feed.closed().await;
//! ```

pub mod audience;
pub mod auth;
pub mod config;
pub mod conn;
pub mod frames;
pub mod handler;
pub mod heads;
pub mod hub;
pub mod limits;
pub mod rate;
pub mod receipts;
pub mod replay;
pub mod room;
pub mod routing;
mod session;
pub mod state;
pub mod stats;

use axum::routing::get;
use axum::Router;

pub use auth::{AuthRejected, Authenticate};
pub use config::{FeedConfig, OriginPolicy};
pub use receipts::{NoReadReceipts, ReadReceipts, ReceiptError};
pub use room::RoomId;
pub use state::FeedState;
pub use stats::FeedStatsSnapshot;

/// The router serving `GET /ws`, ready to merge into the application's.
pub fn router(feed: FeedState) -> Router {
    Router::new()
        .route("/ws", get(handler::ws_handler))
        .with_state(feed)
}
