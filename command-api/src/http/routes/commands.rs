//! The write side: every route of the contract's command table goes
//! through one handler. Its body becomes a [`Request`], the request its
//! command (`command-api/src/request.rs`), the service executes it and says
//! what it created. Every answer is `{"id","version","position"}`, plus
//! `comment_id` / `dispatch_id` when the command created or acted on one.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use event_store::Principal;
use futures::future::BoxFuture;
use serde_json::json;
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::http::extract::{Auth, CommandJson, IdempotencyKey, IfMatch, PathTarget};
use crate::http::state::AppState;
use crate::request::{command_key, Request, RequestBody};
use crate::service::{Appended, CommandOutcome};

/// The handler of the command route whose body is a `B`, made into a
/// request by `route` (a [`Request`] variant). The extractors run in this
/// order, so a request failing several checks gets the first one's error.
#[allow(clippy::type_complexity)]
pub fn command<B: RequestBody>(
    route: fn(B) -> Request,
) -> impl Fn(
    State<AppState>,
    Auth,
    PathTarget,
    IfMatch,
    IdempotencyKey,
    CommandJson<B>,
) -> BoxFuture<'static, Result<Response, ApiError>>
       + Clone
       + Send
       + Sync
       + 'static {
    move |State(state),
          Auth(p),
          PathTarget(on),
          IfMatch(expected),
          IdempotencyKey(key),
          CommandJson(body)| { Box::pin(handle(state, p, on, expected, key, route(body))) }
}

/// Maps the request to its command, executes it, counts what it appended
/// and answers.
async fn handle(
    state: AppState,
    p: Principal,
    on: Option<Uuid>,
    expected: Option<u64>,
    key: Option<Uuid>,
    request: Request,
) -> Result<Response, ApiError> {
    let created_status = match request {
        Request::CreateTicket(_) => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    let command = command_key(&p, key, &request, on);
    let action = request
        .into_action(on, Uuid::now_v7())
        .ok_or_else(|| ApiError::not_found("route"))?;
    let outcome = state
        .service()
        .execute(&p, action, command, expected)
        .await?;
    match outcome.appended {
        Appended::Now { events } => state.metrics().record_append(events, false),
        Appended::Earlier => state.metrics().record_append(0, true),
        Appended::Nothing => {}
    }
    Ok(answer(created_status, &outcome, p.sees_versions()))
}

/// The answer: `{"id","version","position"}` plus the ids the command
/// created or acted on, with an `ETag` carrying the version for the next
/// `If-Match` (and `Location` for a new ticket). A principal who is shown
/// no versions gets neither `version` nor `ETag`.
fn answer(status: StatusCode, outcome: &CommandOutcome, with_version: bool) -> Response {
    let mut body = json!({"id": outcome.stream_id, "position": outcome.position});
    if with_version {
        body["version"] = json!(outcome.version);
    }
    if let Some(id) = outcome.created.comment_id {
        body["comment_id"] = json!(id);
    }
    if let Some(id) = outcome.created.dispatch_id {
        body["dispatch_id"] = json!(id);
    }
    let mut response = (status, Json(body)).into_response();
    let etag = with_version
        .then(|| HeaderValue::from_str(&format!("\"{}\"", outcome.version)).ok())
        .flatten();
    if let Some(v) = etag {
        response.headers_mut().insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED {
        let location = format!("/api/v1/tickets/{}", outcome.stream_id);
        if let Ok(v) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, v);
        }
    }
    response
}
