//! Parameters and answers of the list queries.

use event_store::{Priority, TicketKind, TicketStatus, UserId};
use serde::{Deserialize, Serialize};

use crate::error::ProjectionError;
use crate::limits::{PAGE_ITEMS_DEFAULT, PAGE_ITEMS_MAX, SEARCH_QUERY_CHARS_MAX};

/// `GET /api/v1/tickets`: every filter optional, combined with AND.
/// Deserializable straight from the query string.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TicketQuery {
    /// Current status.
    pub status: Option<TicketStatus>,
    /// Current priority.
    pub priority: Option<Priority>,
    /// Current assignee.
    pub assignee: Option<UserId>,
    /// Kind of work.
    pub kind: Option<TicketKind>,
    /// Location site, exact match.
    pub site: Option<String>,
    /// Case-insensitive text search in title and description.
    pub q: Option<String>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1..=500 (default 50; larger values are capped at 500).
    pub limit: Option<usize>,
}

/// A page of a list: `{"items": [...], "next_cursor": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Cursor of the next page; `null` when this is the last one.
    pub next_cursor: Option<String>,
}

/// The page size a client asked for, capped; zero is malformed.
pub fn page_limit(limit: Option<usize>) -> Result<usize, ProjectionError> {
    match limit {
        None => Ok(PAGE_ITEMS_DEFAULT),
        Some(0) => Err(ProjectionError::bad("limit", "must be at least 1")),
        Some(n) => Ok(n.min(PAGE_ITEMS_MAX)),
    }
}

/// The search text lower-cased, checked for length.
pub fn search_text(q: Option<&str>) -> Result<Option<String>, ProjectionError> {
    match q.map(str::trim).filter(|q| !q.is_empty()) {
        None => Ok(None),
        Some(q) if q.chars().count() > SEARCH_QUERY_CHARS_MAX => Err(ProjectionError::bad(
            "q",
            format!("at most {SEARCH_QUERY_CHARS_MAX} characters"),
        )),
        Some(q) => Ok(Some(q.to_lowercase())),
    }
}

/// The instant (or position) an audit answer is taken at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AsOf {
    /// Events recorded at or before this instant.
    Time(chrono::DateTime<chrono::Utc>),
    /// Events at or before this global position.
    Position(u64),
}

impl AsOf {
    /// Parses the `as_of` parameter: a position (digits) or an RFC 3339 time.
    pub fn parse(s: &str) -> Result<AsOf, ProjectionError> {
        if let Ok(p) = s.parse::<u64>() {
            return Ok(AsOf::Position(p));
        }
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| AsOf::Time(t.with_timezone(&chrono::Utc)))
            .map_err(|_| ProjectionError::bad("as_of", "expected a position or an RFC 3339 time"))
    }

    /// Whether an event at `position`, recorded at `at`, is included.
    pub fn includes(&self, position: u64, at: &chrono::DateTime<chrono::Utc>) -> bool {
        match self {
            AsOf::Time(t) => at <= t,
            AsOf::Position(p) => position <= *p,
        }
    }
}
