//! The HTTP API (axum): routing, the contract's error format, extractors for
//! authentication and command headers, rate limiting, metrics and logs.

pub mod body_deadline;
pub mod conn_clock;
pub mod error;
pub mod extract;
pub mod headers;
pub mod limits;
pub mod live;
pub mod login_throttle;
pub mod metrics;
pub mod metrics_access;
pub mod observe;
pub mod query_params;
pub mod rate_limit;
pub mod routes;
pub mod server;
pub mod state;
pub mod timeouts;

pub use error::ApiError;
pub use metrics_access::MetricsAccess;
pub use routes::router;
pub use server::{serve, serve_metrics};
pub use state::{AppState, HttpOptions, StartError};
pub use timeouts::Timeouts;
