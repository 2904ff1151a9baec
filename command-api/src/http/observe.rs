//! Per-request observation: a request id, one structured log line (method,
//! path, status, user, latency; never headers, query strings or bodies, so
//! never a token or password) and the request metrics.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

use super::limits::REQUEST_ID_CHARS_MAX;
use super::state::AppState;

/// Name of the request id header (taken from the client when sane, else made).
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Route label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// What the middleware shares with the handlers of one request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request id.
    pub id: Arc<str>,
    user: Arc<OnceLock<Uuid>>,
}

impl RequestContext {
    /// Records the authenticated user for the log line.
    pub fn set_user(&self, user: Uuid) {
        let _ = self.user.set(user);
    }

    /// The authenticated user, if any.
    pub fn user(&self) -> Option<Uuid> {
        self.user.get().copied()
    }
}

fn sane_request_id(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= REQUEST_ID_CHARS_MAX
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    ok.then(|| s.to_string())
}

/// The middleware: wraps every request of the router.
pub async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id: Arc<str> = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(sane_request_id)
        .unwrap_or_else(|| Uuid::now_v7().to_string())
        .into();
    let ctx = RequestContext {
        id: id.clone(),
        user: Arc::new(OnceLock::new()),
    };
    req.extensions_mut().insert(ctx.clone());
    let method = req.method().clone();
    // Shared, not copied: the route label is an Arc inside axum.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let uri = req.uri().clone();

    let mut response = next.run(req).await;

    let latency = started.elapsed();
    let status = response.status().as_u16();
    if status == 429 {
        state.metrics().record_rate_limited();
    }
    let route = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    state
        .metrics()
        .record_request(method.as_str(), route, status, latency);
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let latency_us = latency.as_micros() as u64;
    // The fields are only formatted when the line is enabled.
    let user = || ctx.user().map(|u| u.to_string()).unwrap_or_default();
    if status >= 500 {
        tracing::warn!(request_id = %id, %method, path = %uri.path(), status, user = %user(), latency_us, "request");
    } else {
        tracing::info!(request_id = %id, %method, path = %uri.path(), status, user = %user(), latency_us, "request");
    }
    response
}
