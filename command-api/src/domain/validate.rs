//! Input checks shared by several commands.

use event_store::{GeoPoint, Location};

use super::error::DomainError;
use super::limits::{SHORT_TEXT_CHARS_MAX, TAGS_COUNT_MAX, TAG_CHARS_MAX, TITLE_CHARS_MAX};

/// Whether a text field may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// A label shown on one line (title, tag, site, note, ...): no control
    /// character at all.
    Single,
    /// Free text (description, comment body): line feed, carriage return
    /// and tab allowed, no other control character.
    Multi,
}

/// Refuses characters that are invisible or that change how the text
/// around them is shown: C0 and C1 control characters and DEL (except
/// `\n`, `\r`, `\t` in multi-line text), and the bidirectional
/// embeddings, overrides, isolates and marks, with which "evil" can be
/// made to show as "live" in a console or an e-mail. The one rule every
/// text field of a command goes through.
pub fn text(field: &str, raw: &str, lines: Lines) -> Result<(), DomainError> {
    let refused = raw.chars().enumerate().find(|&(_, c)| {
        let layout = matches!(c, '\n' | '\r' | '\t');
        (c.is_control() && !(lines == Lines::Multi && layout)) || is_bidi_control(c)
    });
    match refused {
        Some((at, c)) => Err(DomainError::invalid(
            field,
            format!(
                "must not contain control or bidirectional formatting characters \
                 (U+{:04X} at character {at})",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

/// Optional text through [`text`].
pub fn text_opt(field: &str, raw: Option<&str>, lines: Lines) -> Result<(), DomainError> {
    raw.map_or(Ok(()), |s| text(field, s, lines))
}

/// The Unicode bidirectional formatting characters (UAX #9): the marks
/// (ALM, LRM, RLM), embeddings and overrides (LRE..RLO), isolates (LRI..PDI).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// A title: trimmed, not empty, at most `TITLE_CHARS_MAX` characters,
/// plain single-line text.
pub fn title(field: &str, raw: &str) -> Result<String, DomainError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    text(field, t, Lines::Single)?;
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

/// Tags: at most `TAGS_COUNT_MAX` of them, each trimmed, non-empty, at
/// most `TAG_CHARS_MAX` characters and single-line; duplicates dropped
/// (first kept). A bad tag is named by its index (`tags[3]`).
pub fn tags(raw: &[String]) -> Result<Vec<String>, DomainError> {
    // Counted before duplicates are dropped, so a list of thousands of
    // copies is refused before the quadratic de-duplication below.
    if raw.len() > TAGS_COUNT_MAX {
        return Err(DomainError::invalid(
            "tags",
            format!("more than {TAGS_COUNT_MAX} tags"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, tag) in raw.iter().enumerate() {
        let field = format!("tags[{i}]");
        let t = tag.trim();
        if t.is_empty() {
            return Err(DomainError::invalid(&field, "a tag must not be empty"));
        }
        if t.chars().count() > TAG_CHARS_MAX {
            return Err(DomainError::invalid(
                &field,
                format!("a tag is longer than {TAG_CHARS_MAX} characters"),
            ));
        }
        text(&field, t, Lines::Single)?;
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
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
/// short texts bounded and single-line.
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
        text_opt(name, value.as_deref(), Lines::Single)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str, lines: Lines) -> bool {
        text("f", raw, lines).is_err()
    }

    #[test]
    fn text_refuses_controls_and_bidi_formatting() {
        for c in (0u32..0x20).chain(0x7f..0xa0) {
            let s = format!("a{}b", char::from_u32(c).expect("char"));
            assert!(refused(&s, Lines::Single), "U+{c:04X} single-line");
            let layout = matches!(c, 0x09 | 0x0a | 0x0d);
            assert_eq!(refused(&s, Lines::Multi), !layout, "U+{c:04X} multi-line");
        }
        for c in [
            0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068,
            0x2069,
        ] {
            let s = format!("a{}b", char::from_u32(c).expect("char"));
            assert!(refused(&s, Lines::Single), "U+{c:04X}");
            assert!(refused(&s, Lines::Multi), "U+{c:04X}");
        }
        // Zero-width joiners are part of emoji and scripts: allowed.
        for ok in ["plain", "é 打 🧑‍🔧 عربي", "\u{200d}", "\u{a0}"] {
            assert!(!refused(ok, Lines::Single), "{ok:?}");
        }
        let e = text("title", "ev\u{202e}il", Lines::Single).expect_err("refused");
        assert_eq!(
            e,
            DomainError::invalid(
                "title",
                "must not contain control or bidirectional formatting characters \
                 (U+202E at character 2)"
            )
        );
    }
}
