//! Response headers every answer of the API shares: API and error answers
//! are never cached (they are per-user and change with every event), and no
//! answer may be content-sniffed into something executable. Also the
//! query-string limit, checked before routing.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::limits::QUERY_BYTES_MAX;

/// Paths under this prefix are API answers.
pub const API_PREFIX: &str = "/api/";

/// `Cache-Control` of API answers and JSON errors.
pub const API_CACHE_CONTROL: &str = "no-store";

/// Whether a response is JSON (every API answer and every error object).
fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The middleware: `no-store` on `/api/` answers and on every JSON answer
/// (errors included), `nosniff` on every answer. Pages and assets keep the
/// caching they set.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with(API_PREFIX);
    let mut response = next.run(req).await;
    if api || is_json(&response) {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(API_CACHE_CONTROL),
        );
    }
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The middleware: a query string over [`QUERY_BYTES_MAX`] is refused with
/// 414 before any route parses it.
pub async fn query_limit(req: Request, next: Next) -> Response {
    let len = req.uri().query().map_or(0, str::len);
    if len > QUERY_BYTES_MAX {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("query string over {QUERY_BYTES_MAX} bytes"),
        )
        .with_details(json!({"limit_bytes": QUERY_BYTES_MAX}))
        .into_response();
    }
    next.run(req).await
}
