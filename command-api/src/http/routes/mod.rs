//! The route table and the router builder.

pub mod auth;
pub mod commands;
pub mod health;
pub mod queries;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;

use super::error::ApiError;
use super::limits::BODY_BYTES_MAX;
use super::observe::observe;
use super::state::AppState;

/// The whole API. Tests drive it with `oneshot` or serve it on a real port.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/auth/token", post(auth::token))
        .route("/api/v1/me", get(auth::me))
        .route(
            "/api/v1/tickets",
            get(queries::list_tickets).post(commands::create_ticket),
        )
        .route(
            "/api/v1/tickets/{id}",
            get(queries::get_ticket).patch(commands::edit_ticket),
        )
        .route("/api/v1/tickets/{id}/assign", post(commands::assign_ticket))
        .route("/api/v1/tickets/{id}/status", post(commands::change_status))
        .route(
            "/api/v1/tickets/{id}/comments",
            post(commands::post_comment),
        )
        .route(
            "/api/v1/tickets/{id}/dispatches",
            post(commands::assign_dispatch),
        )
        .route(
            "/api/v1/dispatches/{id}/accept",
            post(commands::accept_dispatch),
        )
        .route(
            "/api/v1/dispatches/{id}/decline",
            post(commands::decline_dispatch),
        )
        .route(
            "/api/v1/dispatches/{id}/status",
            post(commands::progress_dispatch),
        )
        .route(
            "/api/v1/technicians/me/location",
            post(commands::report_location),
        )
        .route("/api/v1/tickets/{id}/chat", get(queries::chat))
        .route("/api/v1/tickets/{id}/audit", get(queries::audit))
        .route("/api/v1/stats", get(queries::stats))
        .route("/api/v1/events", get(queries::events))
        .route("/api/v1/users", get(crate::ui::directory::list_users))
        .merge(crate::ui::ui_router())
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .merge(live_feed::router(state.feed().clone()))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(middleware::from_fn_with_state(state, observe))
}

async fn unknown_route() -> ApiError {
    ApiError::not_found("route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}
