//! The router of the separate metrics listener (`--metrics-listen`):
//! `/metrics` alone, every other path the JSON 404. Kept apart from the
//! API's route table, which the route review reads
//! (`command-api/tests/security_routes.rs`).

use axum::middleware;
use axum::routing::get;
use axum::Router;

use super::{health, method_not_allowed, unknown_route};
use crate::http::headers::security_headers;
use crate::http::observe::observe;
use crate::http::state::AppState;

/// `/metrics` alone, for its separate listener.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics_separate))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(state, observe))
}
