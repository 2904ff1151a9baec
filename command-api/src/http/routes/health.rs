//! Liveness and metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::http::metrics::MemoryFigures;
use crate::http::state::AppState;

/// `GET /healthz`: liveness only, `{"status":"ok"}` with 200.
///
/// It is public, so it reads nothing from the store: a head position here
/// would let anyone watch the log move when an internal note is posted
/// (issue 14). The head is the `ticketlog_log_head_position` gauge on
/// `/metrics`.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let head = state.service().log_head().await.ok();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(head, &MemoryFigures::now()),
    )
        .into_response()
}
