//! `POST /api/v1/auth/token` (the built-in issuer), `POST
//! /api/v1/auth/logout`, `GET /api/v1/me` and `POST /api/v1/me/password`.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use event_store::{Actor, EventPayload, Permission, Principal, Role};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{AuthError, RevocationScope};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, Auth, ClientAddr, Session};
use crate::http::limits::LOGIN_SLOT_WAIT_MILLIS;
use crate::http::login_throttle::Attempt;
use crate::http::state::AppState;

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

/// Runs `check` (a password verification: slow on purpose) under the
/// login throttle and a hash slot: 429 before any hashing for a throttled
/// client, 503 `busy` when no slot frees up in time. A check that
/// succeeds takes its attempt back.
async fn throttled<T: Send + 'static>(
    state: &AppState,
    ClientAddr(ip): ClientAddr,
    account: &str,
    check: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, ApiError> {
    let throttle = state.login_throttle();
    let attempt: Attempt = throttle
        .begin(ip, account, Instant::now())
        .map_err(ApiError::rate_limited)?;
    let wait = Duration::from_millis(LOGIN_SLOT_WAIT_MILLIS);
    let _slot = match tokio::time::timeout(wait, state.login_slots().acquire()).await {
        Ok(Ok(slot)) => slot,
        Ok(Err(_)) => return Err(ApiError::internal()),
        Err(_) => {
            throttle.abandoned(attempt);
            return Err(ApiError::login_busy());
        }
    };
    let outcome = tokio::task::spawn_blocking(check)
        .await
        .map_err(|_| ApiError::internal())?;
    if outcome.is_ok() {
        throttle.succeeded(attempt);
    }
    Ok(outcome?)
}

/// Checks the password against the directory and issues a token.
pub async fn token(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(req): ApiJson<TokenRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    if !state.jwt().issues_tokens() {
        return Err(AuthError::IssuingDisabled.into());
    }
    let account = format!("{}/{}", req.tenant, req.username);
    let users = state.users().clone();
    let user = throttled(&state, client, &account, move || {
        users.authenticate(&req.tenant, &req.username, &req.password)
    })
    .await?;
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

/// The actor of a change a principal made themselves.
fn actor_of(p: &Principal) -> Actor {
    Actor {
        user_id: p.user_id,
        role: p.role,
    }
}

/// Milliseconds since the epoch now (revocation instants).
fn now_ms() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0)
}

/// Revokes the presented token (204). A token without `jti` (an outside
/// issuer's) revokes every token of its user issued until now.
pub async fn logout(
    State(state): State<AppState>,
    Session(token): Session,
) -> Result<StatusCode, ApiError> {
    let p = &token.principal;
    let revocations = state.revocations().clone();
    let probe = token.clone();
    let scope = tokio::task::spawn_blocking(move || revocations.revoke_token(&probe, now_ms()))
        .await
        .map_err(|_| ApiError::internal())??;
    state
        .service()
        .record_user_change(
            &p.tenant,
            actor_of(p),
            EventPayload::UserTokensRevoked {
                user: p.user_id,
                all: scope == RevocationScope::AllOfUser,
            },
        )
        .await?;
    state.feed().sessions_revoked();
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `POST /api/v1/me/password`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password now (never logged).
    pub current: String,
    /// The password from now on (never logged).
    pub new: String,
}

/// Changes the presenting user's password (throttled like a login: the
/// current password is guessable through it too) and revokes every token of
/// theirs issued until now, this one included (204). Wrong `current`: 403
/// `wrong_password`; a user of an outside issuer: 404.
pub async fn change_password(
    State(state): State<AppState>,
    client: ClientAddr,
    Session(token): Session,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let p = token.principal;
    crate::auth::password::validate_new_password(&req.new)?;
    let account = format!("{}/{}", p.tenant, p.user_id);
    let users = state.users().clone();
    let user_id = p.user_id;
    throttled(&state, client, &account, move || {
        if !users.check_password(user_id, &req.current)? {
            return match users.get(user_id)? {
                Some(_) => Err(AuthError::WrongCurrentPassword),
                None => Err(AuthError::UnknownUser),
            };
        }
        users.set_password(user_id, &req.new)
    })
    .await?;
    state.revocations().revoke_user(p.user_id, now_ms())?;
    state.feed().sessions_revoked();
    state
        .service()
        .record_user_change(
            &p.tenant,
            actor_of(&p),
            EventPayload::UserPasswordChanged {
                user: p.user_id,
                reset: false,
            },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
