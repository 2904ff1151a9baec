//! The read side: ticket list and detail, chat, audit, stats, raw events,
//! answered from the projections (which filter through the one visibility rule).

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use projections::{AsOf, StatsQuery, TicketQuery};
use serde::Serialize;

use crate::http::error::ApiError;
use crate::http::extract::{Auth, PathId};
use crate::http::query_params::QueryParams;
use crate::http::state::AppState;

/// Longest a read waits for the projections to reach the log's head (or
/// `min_position`) before answering from what they have.
pub const READ_CONSISTENCY_WAIT_MS: u64 = 1_000;

/// Read-your-writes: waits until the projections have folded `min_position`
/// (503 if they do not in time) or, without it, the head at request time
/// (answering anyway if they lag).
async fn caught_up(state: &AppState, params: &QueryParams) -> Result<(), ApiError> {
    let wait = Duration::from_millis(READ_CONSISTENCY_WAIT_MS);
    match params.u64("min_position")? {
        Some(p) => {
            state.projections().wait_for(p, wait).await?;
        }
        None => {
            let head = state.service().log_head().await?;
            let _ = state.projections().wait_for(head, wait).await;
        }
    }
    Ok(())
}

fn json<T: Serialize>(value: T) -> Json<serde_json::Value> {
    Json(serde_json::to_value(value).unwrap_or(serde_json::Value::Null))
}

/// `GET /api/v1/tickets?status=&priority=&assignee=&kind=&site=&q=&cursor=&limit=`.
pub async fn list_tickets(
    State(state): State<AppState>,
    Auth(p): Auth,
    params: QueryParams,
) -> Result<Json<serde_json::Value>, ApiError> {
    let query = TicketQuery {
        status: params.variant("status")?,
        priority: params.variant("priority")?,
        assignee: params.uuid("assignee")?,
        kind: params.variant("kind")?,
        site: params.text("site"),
        q: params.text("q"),
        cursor: params.text("cursor"),
        limit: params.usize("limit")?,
    };
    caught_up(&state, &params).await?;
    Ok(json(state.projections().tickets(&p, &query)?))
}

/// `GET /api/v1/tickets/{id}`.
pub async fn get_ticket(
    State(state): State<AppState>,
    Auth(p): Auth,
    PathId(id): PathId,
    params: QueryParams,
) -> Result<Json<serde_json::Value>, ApiError> {
    caught_up(&state, &params).await?;
    Ok(json(state.projections().ticket(&p, id)?))
}

/// `GET /api/v1/tickets/{id}/chat?after=&limit=`.
pub async fn chat(
    State(state): State<AppState>,
    Auth(p): Auth,
    PathId(id): PathId,
    params: QueryParams,
) -> Result<Json<serde_json::Value>, ApiError> {
    let after = params.u64("after")?;
    let limit = params.usize("limit")?;
    caught_up(&state, &params).await?;
    Ok(json(state.projections().chat(&p, id, after, limit)?))
}

/// `GET /api/v1/tickets/{id}/audit?as_of=<RFC 3339 or position>`.
pub async fn audit(
    State(state): State<AppState>,
    Auth(p): Auth,
    PathId(id): PathId,
    params: QueryParams,
) -> Result<Json<serde_json::Value>, ApiError> {
    let as_of = params.text("as_of").map(|s| AsOf::parse(&s)).transpose()?;
    caught_up(&state, &params).await?;
    Ok(json(state.projections().audit(&p, id, as_of).await?))
}

/// `GET /api/v1/stats?from=&to=&group_by=`.
pub async fn stats(
    State(state): State<AppState>,
    Auth(p): Auth,
    params: QueryParams,
) -> Result<Json<serde_json::Value>, ApiError> {
    let query = StatsQuery {
        from: params.time("from")?,
        to: params.time("to")?,
        group_by: params.variant("group_by")?.unwrap_or_default(),
    };
    caught_up(&state, &params).await?;
    Ok(json(state.projections().stats(&p, &query, Utc::now())?))
}

/// `GET /api/v1/events?after=&limit=`.
pub async fn events(
    State(state): State<AppState>,
    Auth(p): Auth,
    params: QueryParams,
) -> Result<Json<serde_json::Value>, ApiError> {
    let after = params.u64("after")?;
    let limit = params.usize("limit")?;
    caught_up(&state, &params).await?;
    Ok(json(state.projections().events(&p, after, limit).await?))
}
