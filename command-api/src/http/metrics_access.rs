//! Who may read `/metrics` (issue 15: it was open to anyone, and it shows
//! the log head, which moves when an internal note is posted: issue 14).
//!
//! - With a separate listener (`--metrics-listen`), `/metrics` is served
//!   there only; the API's listener answers 404 for it. The separate
//!   address is the credential (a private interface), unless a metrics
//!   token is configured: then the token is required there too.
//! - Otherwise `/metrics` on the API's listener requires
//!   `Authorization: Bearer <metrics token>` (`--metrics-token`, for
//!   scrapers) or the JWT of an admin.

use axum::http::HeaderMap;
use event_store::Role;

use super::error::ApiError;
use super::extract::bearer_token;
use super::state::AppState;

/// Where `/metrics` is served and with which credential.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsAccess {
    /// `/metrics` is served on its own listener, not on the API's.
    pub separate_listener: bool,
    /// A bearer token that reads `/metrics` (`--metrics-token`).
    pub token: Option<String>,
}

/// Which listener a `/metrics` request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsListener {
    /// The API's listener.
    Api,
    /// The separate metrics listener.
    Separate,
}

/// Whether a request on `listener` with `headers` may read `/metrics`:
/// `Ok`, or the error to answer (404 on the API's listener when metrics
/// live elsewhere, 401 without a credential, 403 for a non-admin JWT).
pub fn check(
    state: &AppState,
    listener: MetricsListener,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let access = state.metrics_access();
    if listener == MetricsListener::Api && access.separate_listener {
        return Err(ApiError::not_found("route"));
    }
    let presented = bearer_token(headers);
    if let (Some(expected), Ok(given)) = (&access.token, &presented) {
        if same_secret(expected.as_bytes(), given.as_bytes()) {
            return Ok(());
        }
    }
    match listener {
        MetricsListener::Separate if access.token.is_none() => Ok(()),
        MetricsListener::Separate => Err(ApiError::unauthorized("the metrics token is required")),
        MetricsListener::Api => {
            let principal = state.jwt().verify(presented?)?;
            if principal.role == Role::Admin {
                Ok(())
            } else {
                Err(ApiError::forbidden("admin"))
            }
        }
    }
}

/// Equality of two secrets in time that does not depend on where they
/// first differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn same_secret_compares_whole_values() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }
}
