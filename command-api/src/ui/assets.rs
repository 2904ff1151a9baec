//! The console's static files, compiled into the binary.

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::http::ApiError;

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every asset: file name, content type, bytes.
pub const ASSETS: [(&str, &str, &str); 11] = [
    ("app.css", CSS, include_str!("../../assets/app.css")),
    ("common.js", JS, include_str!("../../assets/common.js")),
    ("feed.js", JS, include_str!("../../assets/feed.js")),
    ("login.js", JS, include_str!("../../assets/login.js")),
    ("list.js", JS, include_str!("../../assets/list.js")),
    ("ticket.js", JS, include_str!("../../assets/ticket.js")),
    ("new.js", JS, include_str!("../../assets/new.js")),
    ("audit.js", JS, include_str!("../../assets/audit.js")),
    ("stats.js", JS, include_str!("../../assets/stats.js")),
    ("charts.js", JS, include_str!("../../assets/charts.js")),
    ("favicon.svg", SVG, include_str!("../../assets/favicon.svg")),
];

/// The asset called `name`, if there is one.
pub fn find(name: &str) -> Option<(&'static str, &'static str)> {
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, ty, body)| (*ty, *body))
}

/// `GET /assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let Some((ty, body)) = find(&file) else {
        return ApiError::not_found("asset").into_response();
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    // Revalidated on every load: assets change with the binary, and they are small.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}
