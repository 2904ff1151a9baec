//! Query-string parameters parsed one by one, so a malformed one is a 400
//! that names it (axum's `Query` rejection does not say which).

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::ApiError;

/// Most parameters accepted in one query string.
pub const QUERY_PARAMS_MAX: usize = 32;

/// The query string as name → value (a repeated name keeps its last value).
#[derive(Debug, Clone, Default)]
pub struct QueryParams(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid_field("query", e.body_text()))?;
        if pairs.len() > QUERY_PARAMS_MAX {
            return Err(ApiError::invalid_field(
                "query",
                format!("at most {QUERY_PARAMS_MAX} parameters"),
            ));
        }
        Ok(QueryParams(pairs.into_iter().collect()))
    }
}

impl QueryParams {
    /// A non-empty text parameter.
    pub fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// A non-negative integer parameter.
    pub fn u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.parse(name, "a non-negative integer", |v| v.parse::<u64>().ok())
    }

    /// A page size parameter.
    pub fn usize(&self, name: &str) -> Result<Option<usize>, ApiError> {
        self.parse(name, "a non-negative integer", |v| v.parse::<usize>().ok())
    }

    /// A UUID parameter.
    pub fn uuid(&self, name: &str) -> Result<Option<Uuid>, ApiError> {
        self.parse(name, "a UUID", |v| Uuid::parse_str(v).ok())
    }

    /// An RFC 3339 time parameter.
    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.parse(name, "an RFC 3339 time", |v| {
            DateTime::parse_from_rfc3339(v)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
    }

    /// A snake_case enum parameter (any serde enum of unit variants).
    pub fn variant<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.parse(name, "one of the documented values", |v| {
            serde_json::from_value(serde_json::Value::String(v.to_string())).ok()
        })
    }

    fn parse<T>(
        &self,
        name: &str,
        expected: &str,
        f: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        match self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => f(v)
                .map(Some)
                .ok_or_else(|| ApiError::invalid_field(name, format!("expected {expected}"))),
        }
    }
}
