//! `POST /api/v1/auth/token` (the built-in issuer) and `GET /api/v1/me`.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use event_store::{Permission, Principal, Role};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::AuthError;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, Auth};
use crate::http::state::AppState;

/// Namespace of the per-name login rate-limit keys.
const LOGIN_KEY_NAMESPACE: Uuid = Uuid::from_u128(0x7c1c_4d0e_2a55_4c3f_9b1e_6f0d_1e2a_9a01);

/// The login body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The tenant.
    pub tenant: String,
    /// The user name.
    pub username: String,
    /// The password (never logged).
    pub password: String,
}

/// The user part of a token answer.
#[derive(Debug, Serialize)]
pub struct UserView {
    /// User id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// What the role may do.
    pub permissions: Vec<Permission>,
}

/// The token answer.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The JWT.
    pub token: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Who it is for.
    pub user: UserView,
}

/// Checks the password against the directory and issues a token.
pub async fn token(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TokenRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    if !state.jwt().issues_tokens() {
        return Err(AuthError::IssuingDisabled.into());
    }
    let key = Uuid::new_v5(
        &LOGIN_KEY_NAMESPACE,
        format!("{}/{}", req.tenant, req.username).as_bytes(),
    );
    state.login_limiter().check(key)?;
    let _slot = state
        .login_slots()
        .acquire()
        .await
        .map_err(|_| ApiError::internal())?;
    let users = state.users().clone();
    let user = tokio::task::spawn_blocking(move || {
        users.authenticate(&req.tenant, &req.username, &req.password)
    })
    .await
    .map_err(|_| ApiError::internal())??;
    let principal = Principal {
        user_id: user.id,
        tenant: user.tenant,
        role: user.role,
        name: user.name,
    };
    let issued = state.jwt().issue(&principal, Utc::now())?;
    Ok(Json(TokenResponse {
        token: issued.token,
        expires_at: issued.expires_at,
        user: UserView {
            id: principal.user_id,
            permissions: principal.permissions(),
            name: principal.name,
            role: principal.role,
        },
    }))
}

/// The principal the token names (handy for clients and for checking a token).
pub async fn me(Auth(p): Auth) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "id": p.user_id, "tenant": p.tenant, "name": p.name, "role": p.role,
        "permissions": p.permissions(),
    }))
}
