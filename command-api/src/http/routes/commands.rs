//! The write side: one route per command of the contract's table, mapped
//! onto the domain's actions and executed by the command service.
//! Every answer is `{"id","version","position"}` (plus the id of what was
//! created, when something was).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use event_store::{
    AppendOutcome, EventPayload, GeoPoint, Location, Principal, Priority, TicketKind, TicketStatus,
    UserId,
};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::domain::{
    Action, AssignDispatch, AssignTicket, ChangeStatus, CreateTicket, DispatchPhase,
    DispatchResponse, EditTicket, PostComment, ProgressDispatch, ReportLocation, RespondDispatch,
};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, Auth, IdempotencyKey, IfMatch, OptionalJson, PathId};
use crate::http::state::AppState;

/// Namespace of command ids derived from `Idempotency-Key`s: keys are
/// scoped to the user who sent them, so one user's key can never replay
/// another user's answer.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x3e0f_9a77_51d2_4c8b_a6e4_0b9d_2c71_f5a3);

/// The command id of a request: derived from its `Idempotency-Key`, else fresh.
pub fn command_id(principal: &Principal, key: Option<Uuid>) -> Uuid {
    match key {
        Some(k) => Uuid::new_v5(
            &IDEMPOTENCY_NAMESPACE,
            format!("{}/{}/{k}", principal.tenant, principal.user_id).as_bytes(),
        ),
        None => Uuid::now_v7(),
    }
}

/// `POST /api/v1/tickets` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketBody {
    title: String,
    #[serde(default)]
    description: String,
    priority: Priority,
    kind: TicketKind,
    #[serde(default)]
    location: Option<Location>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    device: Option<String>,
}

/// `PATCH /api/v1/tickets/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditTicketBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    priority: Option<Priority>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// `POST /api/v1/tickets/{id}/assign` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    assignee_id: UserId,
}

/// `POST /api/v1/tickets/{id}/status` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    status: TicketStatus,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/v1/tickets/{id}/comments` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    body: String,
    #[serde(default)]
    internal: bool,
}

/// `POST /api/v1/tickets/{id}/dispatches` body (may be empty).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchBody {
    #[serde(default)]
    technician_id: Option<UserId>,
    #[serde(default)]
    radius_km: Option<f64>,
}

/// `POST /api/v1/dispatches/{id}/{accept,decline}` body (may be empty).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/dispatches/{id}/status` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressBody {
    #[serde(deserialize_with = "DispatchPhase::deserialize_reported")]
    status: DispatchPhase,
    #[serde(default)]
    location: Option<GeoPoint>,
}

/// `POST /api/v1/technicians/me/location` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationBody {
    lat: f64,
    lon: f64,
    #[serde(default)]
    site: Option<String>,
    #[serde(default)]
    building: Option<String>,
    #[serde(default)]
    floor: Option<String>,
}

/// Executes `action` and counts it.
pub(crate) async fn execute(
    state: &AppState,
    principal: &Principal,
    action: Action,
    key: Option<Uuid>,
    expected: Option<u64>,
) -> Result<AppendOutcome, ApiError> {
    let id = command_id(principal, key);
    let outcome = state
        .service()
        .execute(principal, action, id, expected)
        .await?;
    let events = outcome.position.saturating_sub(outcome.first_position) + 1;
    if outcome.position >= outcome.first_position && outcome.position > 0 {
        state
            .metrics()
            .record_append(events as usize, outcome.duplicate);
    }
    Ok(outcome)
}

/// The answer: `{"id","version","position"}` plus `extra`, with an `ETag`
/// carrying the version for the next `If-Match`.
fn answer(status: StatusCode, outcome: &AppendOutcome, extra: Value) -> Response {
    let mut body =
        json!({"id": outcome.stream_id, "version": outcome.version, "position": outcome.position});
    if let (Value::Object(map), Value::Object(more)) = (&mut body, extra) {
        map.extend(more);
    }
    let mut response = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", outcome.version)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// On an idempotent retry the ids chosen by this attempt were not used:
/// read the first attempt's events to answer with the ids it created.
pub(crate) async fn created_id(
    state: &AppState,
    outcome: &AppendOutcome,
    fresh: Uuid,
    pick: fn(&EventPayload) -> Option<Uuid>,
) -> Result<Uuid, ApiError> {
    if !outcome.duplicate {
        return Ok(fresh);
    }
    let count = outcome.position.saturating_sub(outcome.first_position) + 1;
    let first_version = outcome.version.saturating_sub(count - 1).max(1);
    let events = state
        .store()
        .read_stream(outcome.stream_id, first_version, count as usize)
        .await?;
    Ok(events
        .iter()
        .find_map(|e| pick(&e.payload))
        .unwrap_or(fresh))
}

/// `POST /api/v1/tickets`.
pub async fn create_ticket(
    State(state): State<AppState>,
    Auth(p): Auth,
    IfMatch(expected): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(b): ApiJson<CreateTicketBody>,
) -> Result<Response, ApiError> {
    let action = Action::CreateTicket(CreateTicket {
        ticket_id: Uuid::now_v7(),
        number: 0,
        title: b.title,
        description: b.description,
        priority: b.priority,
        kind: b.kind,
        location: b.location,
        tags: b.tags,
        device: b.device,
    });
    let outcome = execute(&state, &p, action, key, expected).await?;
    let mut response = answer(StatusCode::CREATED, &outcome, json!({}));
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/tickets/{}", outcome.stream_id)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// `PATCH /api/v1/tickets/{id}`.
pub async fn edit_ticket(
    State(state): State<AppState>,
    Auth(p): Auth,
    PathId(id): PathId,
    IfMatch(expected): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(b): ApiJson<EditTicketBody>,
) -> Result<Response, ApiError> {
    let action = Action::EditTicket(EditTicket {
        ticket_id: id,
        title: b.title,
        description: b.description,
        priority: b.priority,
        tags: b.tags,
    });
    let outcome = execute(&state, &p, action, key, expected).await?;
    Ok(answer(StatusCode::OK, &outcome, json!({})))
}

/// `POST /api/v1/tickets/{id}/assign`.
pub async fn assign_ticket(
    State(state): State<AppState>,
    Auth(p): Auth,
    PathId(id): PathId,
    IfMatch(expected): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(b): ApiJson<AssignBody>,
) -> Result<Response, ApiError> {
    let action = Action::AssignTicket(AssignTicket {
        ticket_id: id,
        assignee_id: b.assignee_id,
    });
    let outcome = execute(&state, &p, action, key, expected).await?;
    Ok(answer(StatusCode::OK, &outcome, json!({})))
}

/// `POST /api/v1/tickets/{id}/status`.
pub async fn change_status(
    State(state): State<AppState>,
    Auth(p): Auth,
    PathId(id): PathId,
    IfMatch(expected): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(b): ApiJson<StatusBody>,
) -> Result<Response, ApiError> {
    let action = Action::ChangeStatus(ChangeStatus {
        ticket_id: id,
        status: b.status,
        note: b.note,
    });
    let outcome = execute(&state, &p, action, key, expected).await?;
    Ok(answer(StatusCode::OK, &outcome, json!({})))
}

/// `POST /api/v1/tickets/{id}/comments`.
pub async fn post_comment(
    State(state): State<AppState>,
    Auth(p): Auth,
    PathId(id): PathId,
    IfMatch(expected): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(b): ApiJson<CommentBody>,
) -> Result<Response, ApiError> {
    let comment_id = Uuid::now_v7();
    let action = Action::PostComment(PostComment {
        ticket_id: id,
        comment_id,
        body: b.body,
        internal: b.internal,
    });
    let outcome = execute(&state, &p, action, key, expected).await?;
    let comment_id = created_id(&state, &outcome, comment_id, |e| match e {
        EventPayload::CommentPosted { comment_id, .. } => Some(*comment_id),
        _ => None,
    })
    .await?;
    Ok(answer(
        StatusCode::OK,
        &outcome,
        json!({"comment_id": comment_id}),
    ))
}

/// `POST /api/v1/tickets/{id}/dispatches`.
pub async fn assign_dispatch(
    State(state): State<AppState>,
    Auth(p): Auth,
    PathId(id): PathId,
    IfMatch(expected): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    OptionalJson(b): OptionalJson<DispatchBody>,
) -> Result<Response, ApiError> {
    let dispatch_id = Uuid::now_v7();
    let action = Action::AssignDispatch(AssignDispatch {
        ticket_id: id,
        dispatch_id,
        technician_id: b.technician_id,
        radius_km: b.radius_km,
        speed_kmh: 0.0,
        technicians: vec![],
    });
    let outcome = execute(&state, &p, action, key, expected).await?;
    let dispatch_id = created_id(&state, &outcome, dispatch_id, |e| match e {
        EventPayload::DispatchRequested { dispatch_id, .. } => Some(*dispatch_id),
        _ => None,
    })
    .await?;
    Ok(answer(
        StatusCode::OK,
        &outcome,
        json!({"dispatch_id": dispatch_id}),
    ))
}

async fn respond(
    state: AppState,
    p: Principal,
    dispatch_id: Uuid,
    response: DispatchResponse,
    reason: Option<String>,
    key: Option<Uuid>,
    expected: Option<u64>,
) -> Result<Response, ApiError> {
    let action = Action::RespondDispatch(RespondDispatch {
        dispatch_id,
        response,
        reason,
    });
    let outcome = execute(&state, &p, action, key, expected).await?;
    Ok(answer(
        StatusCode::OK,
        &outcome,
        json!({"dispatch_id": dispatch_id}),
    ))
}

/// `POST /api/v1/dispatches/{id}/accept`.
pub async fn accept_dispatch(
    State(state): State<AppState>,
    Auth(p): Auth,
    PathId(id): PathId,
    IfMatch(expected): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    OptionalJson(b): OptionalJson<RespondBody>,
) -> Result<Response, ApiError> {
    respond(
        state,
        p,
        id,
        DispatchResponse::Accept,
        b.reason,
        key,
        expected,
    )
    .await
}

/// `POST /api/v1/dispatches/{id}/decline`.
pub async fn decline_dispatch(
    State(state): State<AppState>,
    Auth(p): Auth,
    PathId(id): PathId,
    IfMatch(expected): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    OptionalJson(b): OptionalJson<RespondBody>,
) -> Result<Response, ApiError> {
    respond(
        state,
        p,
        id,
        DispatchResponse::Decline,
        b.reason,
        key,
        expected,
    )
    .await
}

/// `POST /api/v1/dispatches/{id}/status`.
pub async fn progress_dispatch(
    State(state): State<AppState>,
    Auth(p): Auth,
    PathId(id): PathId,
    IfMatch(expected): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(b): ApiJson<ProgressBody>,
) -> Result<Response, ApiError> {
    let action = Action::ProgressDispatch(ProgressDispatch {
        dispatch_id: id,
        stage: b.status,
        location: b.location,
    });
    let outcome = execute(&state, &p, action, key, expected).await?;
    Ok(answer(StatusCode::OK, &outcome, json!({"dispatch_id": id})))
}

/// `POST /api/v1/technicians/me/location`.
pub async fn report_location(
    State(state): State<AppState>,
    Auth(p): Auth,
    IfMatch(expected): IfMatch,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(b): ApiJson<LocationBody>,
) -> Result<Response, ApiError> {
    let action = Action::ReportLocation(ReportLocation {
        lat: b.lat,
        lon: b.lon,
        site: b.site,
        building: b.building,
        floor: b.floor,
    });
    let outcome = execute(&state, &p, action, key, expected).await?;
    Ok(answer(StatusCode::OK, &outcome, json!({})))
}
