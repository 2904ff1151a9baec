//! Input checks shared by several commands.

use event_store::{GeoPoint, Location};

use super::error::DomainError;
use super::limits::{SHORT_TEXT_CHARS_MAX, TAGS_MAX, TAG_CHARS_MAX, TITLE_CHARS_MAX};

/// A title: trimmed, not empty, at most `TITLE_CHARS_MAX` characters.
pub fn title(field: &str, raw: &str) -> Result<String, DomainError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if t.chars().count() > TITLE_CHARS_MAX {
        return Err(DomainError::invalid(
            field,
            format!("longer than {TITLE_CHARS_MAX} characters"),
        ));
    }
    Ok(t.to_string())
}

/// Text of at most `max` bytes.
pub fn bytes_at_most(field: &str, raw: &str, max: usize) -> Result<(), DomainError> {
    if raw.len() > max {
        return Err(DomainError::invalid(
            field,
            format!("longer than {max} bytes"),
        ));
    }
    Ok(())
}

/// Optional text of at most `max` characters.
pub fn chars_at_most(field: &str, raw: Option<&str>, max: usize) -> Result<(), DomainError> {
    match raw {
        Some(s) if s.chars().count() > max => Err(DomainError::invalid(
            field,
            format!("longer than {max} characters"),
        )),
        _ => Ok(()),
    }
}

/// Tags: each trimmed and non-empty, duplicates dropped (first kept).
pub fn tags(raw: &[String]) -> Result<Vec<String>, DomainError> {
    let mut out: Vec<String> = Vec::new();
    for tag in raw {
        let t = tag.trim();
        if t.is_empty() {
            return Err(DomainError::invalid("tags", "a tag must not be empty"));
        }
        if t.chars().count() > TAG_CHARS_MAX {
            return Err(DomainError::invalid(
                "tags",
                format!("a tag is longer than {TAG_CHARS_MAX} characters"),
            ));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    if out.len() > TAGS_MAX {
        return Err(DomainError::invalid(
            "tags",
            format!("more than {TAGS_MAX} tags"),
        ));
    }
    Ok(out)
}

/// A coordinate pair in range; errors name `lat_field` or `lon_field`.
pub fn point(
    lat_field: &str,
    lat: f64,
    lon_field: &str,
    lon: f64,
) -> Result<GeoPoint, DomainError> {
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return Err(DomainError::invalid(
            lat_field,
            "must be between -90 and 90",
        ));
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        return Err(DomainError::invalid(
            lon_field,
            "must be between -180 and 180",
        ));
    }
    Ok(GeoPoint { lat, lon })
}

/// A ticket location: coordinates both present or both absent and in range,
/// short texts bounded.
pub fn location(loc: &Location) -> Result<(), DomainError> {
    match (loc.lat, loc.lon) {
        (Some(lat), Some(lon)) => {
            point("location.lat", lat, "location.lon", lon)?;
        }
        (None, None) => {}
        _ => return Err(DomainError::invalid("location", "lat and lon go together")),
    }
    for (name, value) in [
        ("location.site", &loc.site),
        ("location.building", &loc.building),
        ("location.floor", &loc.floor),
        ("location.address", &loc.address),
    ] {
        chars_at_most(name, value.as_deref(), SHORT_TEXT_CHARS_MAX)?;
    }
    Ok(())
}
