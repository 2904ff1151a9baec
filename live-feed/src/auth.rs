//! Who is connecting: the token at the handshake and the browser's Origin.
//! Token verification itself belongs to the caller (command-api's JWT
//! verifier) behind [`Authenticate`].

use axum::http::{header, HeaderMap, HeaderValue, Uri};
use chrono::{DateTime, Utc};
use event_store::Principal;
use thiserror::Error;

use crate::config::OriginPolicy;

/// The subprotocol that marks the `bearer, <jwt>` pair; echoed to the client.
pub const BEARER_PROTOCOL: &str = "bearer";

/// The token was missing, malformed, expired or not ours. Deliberately
/// without detail: the client learns only that it is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("token rejected")]
pub struct AuthRejected;

/// Turns a bearer token into a principal; implemented by the HTTP server
/// with its JWT verifier.
pub trait Authenticate: Send + Sync + 'static {
    /// The principal the token stands for and when the token expires.
    fn principal(&self, token: &str) -> Result<(Principal, DateTime<Utc>), AuthRejected>;
}

/// Where the token came from; the subprotocol must be echoed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer <jwt>`.
    Header(String),
    /// `?token=<jwt>`.
    Query(String),
    /// `Sec-WebSocket-Protocol: bearer, <jwt>`.
    Subprotocol(String),
}

impl TokenSource {
    /// The token itself.
    pub fn token(&self) -> &str {
        match self {
            TokenSource::Header(t) | TokenSource::Query(t) | TokenSource::Subprotocol(t) => t,
        }
    }
}

/// Finds the token in the header, the query or the subprotocol list, in
/// that order. `protocols` are the client's requested subprotocols.
pub fn find_token<'a>(
    headers: &HeaderMap,
    uri: &Uri,
    protocols: impl Iterator<Item = &'a HeaderValue>,
) -> Option<TokenSource> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some((scheme, token)) = v.trim().split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
                return Some(TokenSource::Header(token.trim().to_string()));
            }
        }
    }
    if let Some(token) = query_token(uri) {
        return Some(TokenSource::Query(token));
    }
    let protocols: Vec<&str> = protocols
        .filter_map(|p| p.to_str().ok())
        .map(str::trim)
        .collect();
    if protocols
        .iter()
        .any(|p| p.eq_ignore_ascii_case(BEARER_PROTOCOL))
    {
        let others: Vec<&str> = protocols
            .into_iter()
            .filter(|p| !p.eq_ignore_ascii_case(BEARER_PROTOCOL) && !p.is_empty())
            .collect();
        if let [token] = others.as_slice() {
            return Some(TokenSource::Subprotocol((*token).to_string()));
        }
    }
    None
}

fn query_token(uri: &Uri) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        // JWTs are base64url with dots: nothing to percent-decode.
        (k == "token" && !v.is_empty()).then(|| v.to_string())
    })
}

/// Whether the handshake's `Origin` is acceptable under `policy`. Requests
/// without an `Origin` come from non-browser clients and are allowed.
pub fn origin_allowed(policy: &OriginPolicy, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    match policy {
        OriginPolicy::Any => true,
        OriginPolicy::SameOrigin => same_origin(origin, headers),
        OriginPolicy::AllowList(list) => {
            list.iter()
                .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
                || same_origin(origin, headers)
        }
    }
}

fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    normalize(authority, default_port) == normalize(host, default_port)
}

/// `host[:port]` lower-cased with the scheme's default port made explicit.
fn normalize(authority: &str, default_port: &str) -> String {
    let authority = authority.trim().trim_end_matches('/').to_ascii_lowercase();
    let has_port = match authority.rfind(':') {
        Some(i) => !authority[i..].contains(']'),
        None => false,
    };
    if has_port {
        authority
    } else {
        format!("{authority}:{default_port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).expect("valid header"));
        }
        h
    }

    #[test]
    fn token_from_header_query_or_subprotocol() {
        let uri: Uri = "/ws?x=1&token=abc.def".parse().expect("uri");
        let h = headers(&[(header::AUTHORIZATION, "Bearer hdr")]);
        assert_eq!(
            find_token(&h, &uri, std::iter::empty()),
            Some(TokenSource::Header("hdr".into()))
        );
        let none = HeaderMap::new();
        assert_eq!(
            find_token(&none, &uri, std::iter::empty()),
            Some(TokenSource::Query("abc.def".into()))
        );
        let plain: Uri = "/ws".parse().expect("uri");
        let protos = [
            HeaderValue::from_static("bearer"),
            HeaderValue::from_static("jwt.x.y"),
        ];
        assert_eq!(
            find_token(&none, &plain, protos.iter()),
            Some(TokenSource::Subprotocol("jwt.x.y".into()))
        );
        assert_eq!(find_token(&none, &plain, protos[..1].iter()), None);
        assert_eq!(find_token(&none, &plain, std::iter::empty()), None);
    }

    #[test]
    fn same_origin_compares_host_and_port() {
        let ok = headers(&[
            (header::HOST, "example.com"),
            (header::ORIGIN, "https://example.com"),
        ]);
        assert!(origin_allowed(&OriginPolicy::SameOrigin, &ok));
        let ok = headers(&[
            (header::HOST, "127.0.0.1:8080"),
            (header::ORIGIN, "http://127.0.0.1:8080"),
        ]);
        assert!(origin_allowed(&OriginPolicy::SameOrigin, &ok));
        let bad = headers(&[
            (header::HOST, "127.0.0.1:8080"),
            (header::ORIGIN, "http://evil.test:8080"),
        ]);
        assert!(!origin_allowed(&OriginPolicy::SameOrigin, &bad));
        let bad = headers(&[(header::HOST, "example.com"), (header::ORIGIN, "null")]);
        assert!(!origin_allowed(&OriginPolicy::SameOrigin, &bad));
        let list = OriginPolicy::AllowList(vec!["http://evil.test:8080".into()]);
        let listed = headers(&[
            (header::HOST, "127.0.0.1:8080"),
            (header::ORIGIN, "http://evil.test:8080"),
        ]);
        assert!(origin_allowed(&list, &listed));
        assert!(origin_allowed(&OriginPolicy::SameOrigin, &HeaderMap::new()));
    }
}
