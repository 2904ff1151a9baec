//! `GET /ws`: Origin check, token, upgrade with small buffers and limits.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::auth::{find_token, origin_allowed, AuthRejected, TokenSource, BEARER_PROTOCOL};
use crate::limits::{
    CLIENT_FRAME_BYTES_MAX, READ_BUFFER_BYTES, WRITE_BUFFER_BYTES, WRITE_BUFFER_BYTES_MAX,
};
use crate::session;
use crate::state::FeedState;

/// Upgrades to a feed connection. A bad Origin is refused before the
/// upgrade (403); a missing or bad token after it, with close code 4001,
/// which browsers can see (they cannot see a handshake's status).
pub async fn ws_handler(
    State(feed): State<FeedState>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&feed.config().origins, &headers) {
        // The contract's error object, like every other refusal of the server.
        let body = json!({"error": {
            "code": "forbidden",
            "message": "origin not allowed",
            "details": {"reason": "origin"},
        }});
        return (StatusCode::FORBIDDEN, Json(body)).into_response();
    }
    let token = find_token(&headers, &uri, ws.requested_protocols());
    let mut ws = ws
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(WRITE_BUFFER_BYTES_MAX)
        .max_message_size(CLIENT_FRAME_BYTES_MAX)
        .max_frame_size(CLIENT_FRAME_BYTES_MAX);
    if matches!(token, Some(TokenSource::Subprotocol(_))) {
        ws = ws.protocols([BEARER_PROTOCOL]);
    }
    let auth = match &token {
        Some(t) => feed
            .authenticator()
            .principal(t.token())
            .map(|(p, exp)| (p, exp, t.token().to_string())),
        None => Err(AuthRejected),
    };
    ws.on_upgrade(move |socket| session::run(socket, feed, auth))
}
