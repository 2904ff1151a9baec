//! Extractors that answer in the contract's error format: JSON bodies,
//! the authenticated principal, `If-Match`, `Idempotency-Key`, path ids.

use axum::body::Bytes;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use event_store::Principal;
use serde::de::{DeserializeOwned, IgnoredAny};
use uuid::Uuid;

use super::body_deadline::BodyTimeout;
use super::error::ApiError;
use super::limits::BODY_BYTES_MAX;
use super::observe::RequestContext;
use super::state::AppState;
use crate::auth::{AuthError, VerifiedToken};
use crate::request::RequestBody;

/// A JSON body; failures name the field (400) or the limit (413).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// A command route's JSON body: as [`ApiJson`], except that a blank body
/// is the route's default body when its body is optional.
#[derive(Debug, Clone)]
pub struct CommandJson<B>(pub B);

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if let Some(timeout) = body_timeout(&rejection) {
            ApiError::body_timeout(timeout)
        } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(BODY_BYTES_MAX)
        } else {
            ApiError::invalid_field("body", rejection.body_text())
        }
    })
}

/// The body read timeout, if that is why the body could not be read.
fn body_timeout(rejection: &BytesRejection) -> Option<std::time::Duration> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = cause {
        if let Some(timeout) = e.downcast_ref::<BodyTimeout>() {
            return Some(timeout.0);
        }
        cause = e.source();
    }
    None
}

/// Parses `bytes` as `T`, naming the failing field on error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let is_json = || serde_json::from_slice::<IgnoredAny>(bytes);
    // Every body is an object; saying so beats serde's "expected struct
    // CreateTicketBody", which names a type of ours.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        is_json().map_err(|e| malformed(&e))?;
        return Err(ApiError::invalid_field("body", "expected a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => {
            de.end().map_err(|e| malformed(&e))?;
            Ok(value)
        }
        Err(e) if e.inner().is_syntax() || e.inner().is_eof() => {
            // serde_json reports some type errors as syntax errors (a
            // number or an object where an enum's string belongs is
            // "expected value"): in a body that is valid JSON, the field
            // the typed pass stopped at is the one at fault.
            match is_json() {
                Ok(_) => Err(data_error(&e)),
                Err(_) => Err(malformed(e.inner())),
            }
        }
        Err(e) => Err(data_error(&e)),
    }
}

fn malformed(inner: &serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "malformed_json",
        format!("malformed JSON: {inner}"),
    )
    .with_details(serde_json::json!({
        "field": "body", "line": inner.line(), "column": inner.column()
    }))
}

fn data_error(e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = e.inner();
    let message = inner.to_string();
    let path = e.path().to_string();
    // serde reports a missing field at its parent; name the field itself.
    let field = match missing_field(&message) {
        Some(name) if path == "." => name.to_string(),
        Some(name) => format!("{path}.{name}"),
        None if path == "." => "body".to_string(),
        None => path,
    };
    let reason = message.split(" at line ").next().unwrap_or(&message);
    ApiError::invalid_field(field, plain_reason(reason))
}

/// serde's reason in the words of JSON, without the names of our Rust
/// types (`expected struct Location`, `expected enum TicketKind`, `f64`).
/// "unknown variant `x`, expected one of ..." and the like stay as they
/// are: they list the valid values.
fn plain_reason(reason: &str) -> String {
    // What serde_json says when an enum gets a number, an object or an
    // array (the syntax is known to be fine by now).
    if reason == "expected value" {
        return "invalid type, expected a string".to_string();
    }
    if let Some(rest) = reason.strip_prefix("invalid type: ") {
        if let Some((unexpected, expected)) = rest.split_once(", expected ") {
            return format!(
                "invalid type: {}, expected {}",
                plain_unexpected(unexpected),
                plain_expected(expected)
            );
        }
    }
    if let Some(rest) = reason.strip_prefix("invalid value: ") {
        if let Some((unexpected, expected)) = rest.split_once(", expected ") {
            return format!(
                "invalid value: {}, expected {}",
                plain_unexpected(unexpected),
                plain_expected(expected)
            );
        }
    }
    if let Some(rest) = reason.strip_prefix("invalid length ") {
        if let Some((_, expected)) = rest.split_once(", expected ") {
            // An array where a struct belongs ("expected struct X with 2
            // elements"): the array is the fault, not its length.
            if expected.starts_with("struct ") {
                return "invalid type: array, expected a JSON object".to_string();
            }
        }
    }
    reason.to_string()
}

/// serde's name of what was found, as JSON names it.
fn plain_unexpected(unexpected: &str) -> &str {
    match unexpected {
        "sequence" => "array",
        "map" => "object",
        "unit value" => "null",
        other => other,
    }
}

/// serde's name of what was expected, as JSON names it.
fn plain_expected(expected: &str) -> &str {
    let first = expected.split_whitespace().next().unwrap_or(expected);
    match first {
        "struct" | "map" => "a JSON object",
        "enum" => "a string",
        "f32" | "f64" => "a number",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
        "tuple" | "unit" | "newtype" => "a value of another type",
        _ => match expected {
            "a sequence" => "an array",
            "a map" => "a JSON object",
            other => other,
        },
    }
}

fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// Parses a body: `when_empty` if given and the body is blank, else JSON
/// (an empty body is a 400 asking for a JSON object).
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8], when_empty: Option<T>) -> Result<T, ApiError> {
    if let Some(default) = when_empty {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(default);
        }
    }
    if bytes.is_empty() {
        return Err(ApiError::invalid_field("body", "a JSON object is required"));
    }
    parse_json(bytes)
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        parse_body(&bytes, None).map(ApiJson)
    }
}

impl<S: Send + Sync, B: RequestBody> FromRequest<S> for CommandJson<B> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        parse_body(&bytes, B::when_empty()).map(CommandJson)
    }
}

/// The verified principal of a request (401 without a valid token or
/// with a revoked one, 429 when the user is over their rate).
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

/// The presented token itself, verified as for [`Auth`] (logout and a
/// password change need its id and issue time).
#[derive(Debug, Clone)]
pub struct Session(pub VerifiedToken);

/// The client's address: the TCP peer as the server saw it (never a
/// forwarded header, which any client can write). Routers driven without a
/// socket (`oneshot` tests) have none and count as the unspecified address.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |c| c.0.ip());
        Ok(ClientAddr(ip))
    }
}

/// The bearer token of `headers`, if any.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::MissingToken)?
        .to_str()
        .map_err(|_| AuthError::InvalidToken("authorization header is not text".into()))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        AuthError::InvalidToken("authorization header is not a bearer token".into())
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::InvalidToken(
            "authorization scheme is not Bearer".into(),
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token)
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)?;
        let verified = state.verify_session(token)?;
        if !state.jwt().issues_tokens() {
            // An outside issuer's users become known on first use, so they
            // can be assigned work (`UserDirectory::record_outside`).
            state.users().record_outside(&verified.principal)?;
        }
        if let Some(ctx) = parts.extensions.get::<RequestContext>() {
            ctx.set_user(verified.principal.user_id);
        }
        state.limiter().check(verified.principal.user_id)?;
        Ok(Session(verified))
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Session(verified) = Session::from_request_parts(parts, state).await?;
        Ok(Auth(verified.principal))
    }
}

/// `If-Match: <version>` (quotes allowed, as in an ETag): the expected version.
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = value.to_str().unwrap_or("").trim();
        let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
        text.parse::<u64>()
            .map(|v| IfMatch(Some(v)))
            .map_err(|_| ApiError::invalid_field("If-Match", "expected a stream version number"))
    }
}

/// Name of the idempotency header.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// `Idempotency-Key: <uuid>`: the command id, so a retry appends nothing.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyKey(pub Option<Uuid>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(IDEMPOTENCY_KEY_HEADER) else {
            return Ok(IdempotencyKey(None));
        };
        value
            .to_str()
            .ok()
            .and_then(|s| Uuid::parse_str(s.trim()).ok())
            .map(|id| IdempotencyKey(Some(id)))
            .ok_or_else(|| ApiError::invalid_field("Idempotency-Key", "expected a UUID"))
    }
}

/// A UUID path segment (`{id}`); a malformed one is a 400 naming `id`.
#[derive(Debug, Clone, Copy)]
pub struct PathId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::invalid_field("id", "expected a UUID"))?;
        Uuid::parse_str(&raw)
            .map(PathId)
            .map_err(|_| ApiError::invalid_field("id", "expected a UUID"))
    }
}

/// The `{id}` path segment, if the route has one (a malformed one is a
/// 400 naming `id`).
#[derive(Debug, Clone, Copy)]
pub struct PathTarget(pub Option<Uuid>);

impl<S: Send + Sync> FromRequestParts<S> for PathTarget {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let invalid = || ApiError::invalid_field("id", "expected a UUID");
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| invalid())?;
        let Some((_, raw)) = params.iter().find(|(name, _)| *name == "id") else {
            return Ok(PathTarget(None));
        };
        Uuid::parse_str(raw)
            .map(|id| PathTarget(Some(id)))
            .map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        title: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        lat: f64,
    }

    fn field(bytes: &[u8]) -> (String, String) {
        let e = parse_json::<Body>(bytes).expect_err("must fail");
        (
            e.code.to_string(),
            e.details["field"].as_str().unwrap_or("").to_string(),
        )
    }

    #[test]
    fn names_the_failing_field() {
        assert_eq!(field(b"{}"), ("invalid_input".into(), "title".into()));
        assert_eq!(
            field(br#"{"title": 3}"#),
            ("invalid_input".into(), "title".into())
        );
        assert_eq!(
            field(br#"{"title": "x", "inner": {}}"#),
            ("invalid_input".into(), "inner.lat".into())
        );
        assert_eq!(
            field(br#"{"title": "x", "inner": {"lat": "n"}}"#),
            ("invalid_input".into(), "inner.lat".into())
        );
        assert_eq!(
            field(br#"{"title": "#),
            ("malformed_json".into(), "body".into())
        );
        assert_eq!(
            field(br#"{"title": "x"} trailing"#),
            ("malformed_json".into(), "body".into())
        );
        assert_eq!(field(b"[]"), ("invalid_input".into(), "body".into()));
    }
}

#[cfg(test)]
mod plain_errors {
    use super::*;
    use crate::request::{CreateTicketBody, DispatchBody, ProgressBody, StatusBody};

    /// Code, field and reason of the refusal of `body` as `T`.
    fn refusal<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> (String, String, String) {
        let e = parse_json::<T>(body.as_bytes()).expect_err("must fail");
        let reason = e.details["reason"].as_str().unwrap_or("").to_string();
        // No answer names a Rust type or serde's words for JSON's.
        for word in [
            "struct", "enum ", "Body", "Location", "GeoPoint", "Ticket", "f64", "sequence",
        ] {
            assert!(!e.message.contains(word), "{word} in {}", e.message);
        }
        (
            e.code.to_string(),
            e.details["field"].as_str().unwrap_or("").to_string(),
            reason,
        )
    }

    fn invalid(field: &str, reason: &str) -> (String, String, String) {
        ("invalid_input".into(), field.into(), reason.into())
    }

    const T: &str = r#""title": "x", "priority": "high", "kind": "incident""#;

    #[test]
    fn a_body_that_is_not_an_object() {
        let not_object = invalid("body", "expected a JSON object");
        for body in ["[]", "[1]", "5", "\"x\"", "null", " true "] {
            assert_eq!(refusal::<CreateTicketBody>(body), not_object, "{body}");
        }
        assert_eq!(refusal::<ProgressBody>("[]"), not_object);
        // Broken JSON stays malformed_json, whatever its first character.
        let (code, field, _) = refusal::<CreateTicketBody>("[1,");
        assert_eq!((code.as_str(), field.as_str()), ("malformed_json", "body"));
    }

    #[test]
    fn a_wrong_type_names_its_field_in_json_words() {
        let create = |extra: &str| refusal::<CreateTicketBody>(&format!("{{{T}, {extra}}}"));
        assert_eq!(
            refusal::<CreateTicketBody>(r#"{"title": "x", "priority": 5, "kind": "incident"}"#),
            invalid("priority", "invalid type: integer `5`, expected a string")
        );
        assert_eq!(
            refusal::<CreateTicketBody>(r#"{"title": "x", "priority": "high", "kind": {}}"#),
            invalid("kind", "invalid type: object, expected a string")
        );
        assert_eq!(
            refusal::<ProgressBody>(r#"{"status": 5}"#),
            invalid("status", "invalid type: integer `5`, expected a string")
        );
        assert_eq!(
            create(r#""location": 5"#),
            invalid(
                "location",
                "invalid type: integer `5`, expected a JSON object"
            )
        );
        assert_eq!(
            create(r#""location": []"#),
            invalid("location", "invalid type: array, expected a JSON object")
        );
        assert_eq!(
            create(r#""location": {"lat": "a"}"#),
            invalid(
                "location.lat",
                "invalid type: string \"a\", expected a number"
            )
        );
        assert_eq!(
            create(r#""location": {"lat": 1e999}"#),
            invalid("location.lat", "number out of range")
        );
        assert_eq!(
            create(r#""tags": "a""#),
            invalid("tags", "invalid type: string \"a\", expected an array")
        );
        assert_eq!(
            create(r#""tags": {}"#),
            invalid("tags", "invalid type: object, expected an array")
        );
        assert_eq!(
            refusal::<ProgressBody>(r#"{"status": "en_route", "location": [1]}"#),
            invalid("location", "invalid type: array, expected a JSON object")
        );
        assert_eq!(
            refusal::<DispatchBody>(r#"{"radius_km": "far"}"#),
            invalid(
                "radius_km",
                "invalid type: string \"far\", expected a number"
            )
        );
        // The list of valid values is kept: it is the useful part.
        assert_eq!(
            refusal::<StatusBody>(r#"{"status": "gone"}"#),
            invalid(
                "status",
                "unknown variant `gone`, expected one of `open`, `assigned`, `in_progress`, \
                 `resolved`, `closed`"
            )
        );
    }
}
