//! The route table and the router builder.

pub mod auth;
pub mod commands;
pub mod health;
pub mod metrics_listener;
pub mod queries;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;

use self::commands::command;
use super::error::ApiError;
use super::headers::{query_limit, security_headers};
use super::limits::BODY_BYTES_MAX;
use super::observe::observe;
use super::state::AppState;
use crate::request::Request;

/// The whole API. Tests drive it with `oneshot` or serve it on a real port.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/auth/token", post(auth::token))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/me", get(auth::me))
        .route("/api/v1/me/password", post(auth::change_password))
        .route(
            "/api/v1/tickets",
            get(queries::list_tickets).post(command(Request::CreateTicket)),
        )
        .route(
            "/api/v1/tickets/{id}",
            get(queries::get_ticket).patch(command(Request::EditTicket)),
        )
        .route(
            "/api/v1/tickets/{id}/assign",
            post(command(Request::AssignTicket)),
        )
        .route(
            "/api/v1/tickets/{id}/status",
            post(command(Request::ChangeStatus)),
        )
        .route(
            "/api/v1/tickets/{id}/comments",
            post(command(Request::PostComment)),
        )
        .route(
            "/api/v1/tickets/{id}/dispatches",
            post(command(Request::AssignDispatch)),
        )
        .route(
            "/api/v1/dispatches/{id}/accept",
            post(command(Request::AcceptDispatch)),
        )
        .route(
            "/api/v1/dispatches/{id}/decline",
            post(command(Request::DeclineDispatch)),
        )
        .route(
            "/api/v1/dispatches/{id}/status",
            post(command(Request::ProgressDispatch)),
        )
        .route(
            "/api/v1/technicians/me/location",
            post(command(Request::ReportLocation)),
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
        .layer(middleware::from_fn(query_limit))
        // Inside `observe`, so the log line sees the final status; outside
        // everything else, so every answer gets the headers.
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(state, observe))
}

pub(crate) async fn unknown_route() -> ApiError {
    ApiError::not_found("route")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}
