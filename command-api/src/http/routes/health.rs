//! Liveness and metrics.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::http::metrics::MemoryFigures;
use crate::http::metrics_access::{self, MetricsListener};
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

/// `GET /metrics` on the API's listener: Prometheus text format, for an
/// admin or the metrics token (`http/metrics_access.rs`).
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    metrics_on(&state, MetricsListener::Api, &headers).await
}

/// `GET /metrics` on the separate metrics listener (`--metrics-listen`).
pub async fn metrics_separate(State(state): State<AppState>, headers: HeaderMap) -> Response {
    metrics_on(&state, MetricsListener::Separate, &headers).await
}

async fn metrics_on(state: &AppState, listener: MetricsListener, headers: &HeaderMap) -> Response {
    if let Err(refused) = metrics_access::check(state, listener, headers) {
        return refused.into_response();
    }
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
