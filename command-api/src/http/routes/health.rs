//! Liveness and metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::metrics::MemoryFigures;
use crate::http::state::AppState;

/// `GET /healthz`: 200 with the log head while the store answers, else 503.
pub async fn healthz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let head = state.service().log_head().await?;
    Ok(Json(json!({"status": "ok", "head": head})))
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
