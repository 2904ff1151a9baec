//! The contract's error format: `{"error":{"code","message","details"}}`
//! with the matching status, for every failure the API can produce. The
//! one table from errors to statuses and codes: domain, service, auth,
//! store and projection errors carry what went wrong; this file says how
//! the API answers it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::auth::AuthError;
use crate::domain::DomainError;
use crate::service::ServiceError;
use event_store::StoreError;

/// `Retry-After` of a 503 for a full disk: freeing space takes a person.
const STORAGE_FULL_RETRY_AFTER_SECS: u64 = 30;
/// `Retry-After` of a 503 when every password-hash slot stayed taken.
const LOGIN_BUSY_RETRY_AFTER_SECS: u64 = 1;

/// An error answer of the API.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// snake_case code, stable for clients.
    pub code: &'static str,
    /// For a person.
    pub message: String,
    /// Machine-readable specifics (field names, versions).
    pub details: Value,
    /// Seconds for `Retry-After` (429, 503 for a full disk).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error with empty details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: json!({}),
            retry_after_secs: None,
        }
    }

    /// Replaces the details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// 400 naming the offending field.
    pub fn invalid_field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let (field, reason) = (field.into(), reason.into());
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            format!("invalid {field}: {reason}"),
        )
        .with_details(json!({"field": field, "reason": reason}))
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 on a resource the principal can see.
    pub fn forbidden(permission: &str) -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("missing permission {permission}"),
        )
        .with_details(json!({"permission": permission}))
    }

    /// 408: the request body did not arrive within the body read timeout.
    pub fn body_timeout(timeout: std::time::Duration) -> Self {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} s",
                timeout.as_secs_f64()
            ),
        )
        .with_details(json!({"field": "body", "timeout_secs": timeout.as_secs_f64()}))
    }

    /// 408: a WebSocket upgrade request came after the handshake timeout.
    pub fn handshake_timeout(timeout: std::time::Duration) -> Self {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the WebSocket handshake did not complete within {} s",
                timeout.as_secs_f64()
            ),
        )
        .with_details(json!({"timeout_secs": timeout.as_secs_f64()}))
    }

    /// 404: unknown or not visible (never says which).
    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 409 optimistic-concurrency conflict.
    pub fn version_conflict(expected: u64, actual: u64) -> Self {
        ApiError::new(
            StatusCode::CONFLICT,
            "version_conflict",
            format!("expected version {expected}, but the ticket is at version {actual}"),
        )
        .with_details(json!({"expected": expected, "actual": actual}))
    }

    /// 422: the `Idempotency-Key` was first used for another request. The
    /// details name nothing of that request (not even its route).
    pub fn idempotency_key_reused() -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request; send a new key",
        )
        .with_details(json!({"header": "Idempotency-Key"}))
    }

    /// 413.
    pub fn payload_too_large(limit_bytes: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body over {limit_bytes} bytes"),
        )
        .with_details(json!({"limit_bytes": limit_bytes}))
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; retry after {retry_after_secs} s"),
        )
        .with_details(json!({"retry_after_secs": retry_after_secs}));
        e.retry_after_secs = Some(retry_after_secs);
        e
    }

    /// 503: the store could not take the write; nothing was appended.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            message,
        )
    }

    /// 503 when the connection to the database dropped during a commit that
    /// could not be looked up: the command may have been appended; a retry
    /// with the same `Idempotency-Key` is safe.
    pub fn outcome_unknown() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "outcome_unknown",
            "the event store lost its database during the commit; it may have been written, \
             retry with the same Idempotency-Key",
        )
    }

    /// 503 while the disk is below the store's reserve: worth retrying later.
    pub fn storage_full() -> Self {
        let mut e = ApiError::unavailable(
            "the event store's disk is full; nothing was written, retry once space is freed",
        )
        .with_details(json!({"reason": "storage_full"}));
        e.retry_after_secs = Some(STORAGE_FULL_RETRY_AFTER_SECS);
        e
    }

    /// 503 when every password-hash slot stayed taken for the whole wait:
    /// the server is busy, the client did nothing wrong (not a 429, and not
    /// counted against it).
    pub fn login_busy() -> Self {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many logins at once; retry shortly",
        );
        e.retry_after_secs = Some(LOGIN_BUSY_RETRY_AFTER_SECS);
        e
    }

    /// 503 while the read models cannot answer (not caught up, stopped).
    fn projections_unavailable(e: &projections::ProjectionError) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        )
    }

    /// 500 for what should not happen; the message stays generic.
    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ticketlog\""),
            );
        }
        if let Some(secs) = self.retry_after_secs {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { expected, actual } => {
                ApiError::version_conflict(expected, actual)
            }
            StoreError::Invalid(reason) => ApiError::invalid_field("body", reason),
            StoreError::CommandReused { .. } => ApiError::idempotency_key_reused(),
            StoreError::Unavailable(_) | StoreError::Closed | StoreError::Lagged { .. } => {
                tracing::warn!(error = %e, "store unavailable");
                ApiError::unavailable("the event store is unavailable; nothing was written")
            }
            StoreError::OutcomeUnknown(_) => {
                tracing::error!(error = %e, "commit outcome unknown");
                ApiError::outcome_unknown()
            }
            StoreError::StorageFull { .. } => {
                tracing::warn!(error = %e, "append refused: disk below its reserve");
                ApiError::storage_full()
            }
            StoreError::Corrupt { .. } => {
                tracing::error!(error = %e, "store integrity failure");
                ApiError::unavailable(
                    "the event store refused a damaged record; nothing was written",
                )
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::MissingToken => ApiError::unauthorized("missing bearer token"),
            // The reason goes to the log only: telling a prober which check
            // failed helps them.
            AuthError::InvalidToken(reason) => {
                tracing::debug!(%reason, "token rejected");
                ApiError::unauthorized("invalid or expired token")
            }
            AuthError::InvalidCredentials => {
                ApiError::unauthorized("invalid tenant, username or password")
            }
            AuthError::IssuingDisabled => ApiError::not_found("token endpoint").with_details(
                json!({"reason": "tokens are issued by the configured identity provider"}),
            ),
            AuthError::InvalidField { field, reason } => ApiError::invalid_field(field, reason),
            AuthError::UnknownUser => ApiError::not_found("user")
                .with_details(json!({"reason": "not a user of the built-in directory"})),
            // 403, not 401: the token is fine (a 401 would sign the console out).
            AuthError::WrongCurrentPassword => ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_password",
                "the current password does not match",
            )
            .with_details(json!({"field": "current"})),
            AuthError::UserExists { .. } => {
                ApiError::new(StatusCode::CONFLICT, "user_exists", e.to_string())
            }
            AuthError::Store(s) => ApiError::from(s),
            AuthError::Key(_) | AuthError::Hashing(_) => {
                tracing::error!(error = %e, "auth failure");
                ApiError::internal()
            }
        }
    }
}

impl From<projections::ProjectionError> for ApiError {
    fn from(e: projections::ProjectionError) -> Self {
        use projections::ProjectionError as P;
        match e {
            P::NotFound => ApiError::not_found("resource"),
            P::Forbidden { permission } => ApiError::forbidden(permission),
            P::BadRequest { field, message } => ApiError::invalid_field(field, message),
            P::Store(s) => ApiError::from(s),
            P::NotCaughtUp { wanted, reached } => ApiError::projections_unavailable(&e)
                .with_details(json!({"min_position": wanted, "position": reached})),
            P::Snapshot(_) | P::Stopped => ApiError::projections_unavailable(&e),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid { field, message } => ApiError::invalid_field(field, message),
            DomainError::Forbidden { message } => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            DomainError::NotFound => ApiError::not_found("resource"),
            DomainError::InvalidTransition { from, to } => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_transition",
                format!("cannot go from {from} to {to}"),
            )
            .with_details(json!({"from": from, "to": to})),
            DomainError::Conflict { message } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Domain(d) => ApiError::from(d),
            ServiceError::VersionConflict { expected, actual } => {
                ApiError::version_conflict(expected, actual)
            }
            ServiceError::Contended => ApiError::new(
                StatusCode::CONFLICT,
                "version_conflict",
                "the ticket kept changing; try again",
            ),
            ServiceError::IdempotencyKeyReused => ApiError::idempotency_key_reused(),
            ServiceError::Rejected(reason) => ApiError::invalid_field("body", reason),
            ServiceError::StorageFull(reason) => {
                tracing::warn!(%reason, "command not appended: disk below its reserve");
                ApiError::storage_full()
            }
            ServiceError::Unavailable(reason) => {
                tracing::warn!(%reason, "command not appended: store unavailable");
                ApiError::unavailable("the event store is unavailable; nothing was written")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_code(e: impl Into<ApiError>) -> (u16, &'static str) {
        let e = e.into();
        (e.status.as_u16(), e.code)
    }

    #[test]
    fn every_domain_and_service_error_has_its_status_and_code() {
        let cases = [
            (
                DomainError::invalid("title", "empty").into(),
                (400, "invalid_input"),
            ),
            (DomainError::forbidden("no").into(), (403, "forbidden")),
            (DomainError::NotFound.into(), (404, "not_found")),
            (
                DomainError::InvalidTransition {
                    from: "open".into(),
                    to: "closed".into(),
                }
                .into(),
                (409, "invalid_transition"),
            ),
            (DomainError::conflict("twice").into(), (409, "conflict")),
            (
                ServiceError::VersionConflict {
                    expected: 1,
                    actual: 2,
                },
                (409, "version_conflict"),
            ),
            (ServiceError::Contended, (409, "version_conflict")),
            (ServiceError::Rejected("big".into()), (400, "invalid_input")),
            (
                ServiceError::IdempotencyKeyReused,
                (422, "idempotency_key_reused"),
            ),
            (
                ServiceError::StorageFull("full".into()),
                (503, "store_unavailable"),
            ),
            (
                ServiceError::Unavailable("down".into()),
                (503, "store_unavailable"),
            ),
        ];
        for (error, expected) in cases {
            let shown = format!("{error:?}");
            assert_eq!(status_and_code(error), expected, "{shown}");
        }
    }

    #[test]
    fn every_projection_error_has_its_status_and_code() {
        use projections::ProjectionError as P;
        let caught = status_and_code(P::NotCaughtUp {
            wanted: 9,
            reached: 3,
        });
        assert_eq!(caught, (503, "unavailable"));
        assert_eq!(status_and_code(P::NotFound), (404, "not_found"));
        assert_eq!(
            status_and_code(P::Forbidden {
                permission: "stats.view"
            }),
            (403, "forbidden")
        );
        assert_eq!(status_and_code(P::Stopped), (503, "unavailable"));
        let details = ApiError::from(P::NotCaughtUp {
            wanted: 9,
            reached: 3,
        })
        .details;
        assert_eq!(details, json!({"min_position": 9, "position": 3}));
    }
}
