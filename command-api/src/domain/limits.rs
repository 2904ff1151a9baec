//! Limits of command input, named with units last.

/// Longest ticket title.
pub const TITLE_CHARS_MAX: usize = 200;
/// Longest ticket description.
pub const DESCRIPTION_BYTES_MAX: usize = 16 * 1024;
/// Most tags on one ticket (as sent, before duplicates are dropped).
pub const TAGS_COUNT_MAX: usize = 20;
/// Longest tag.
pub const TAG_CHARS_MAX: usize = 50;
/// Longest short free-text field (device, site, building, floor, address).
pub const SHORT_TEXT_CHARS_MAX: usize = 200;
/// Longest comment body (the contract's 8 KiB).
pub const COMMENT_BYTES_MAX: usize = 8 * 1024;
/// Longest note on a status change or reason on a decline.
pub const NOTE_CHARS_MAX: usize = 2_000;
/// Default dispatch search radius (the contract's 50 km).
pub const DISPATCH_RADIUS_KM_DEFAULT: f64 = 50.0;
/// Largest dispatch search radius (half the Earth's circumference).
pub const DISPATCH_RADIUS_KM_MAX: f64 = 20_040.0;
/// Default average travel speed for ETAs.
pub const TRAVEL_SPEED_KMH_DEFAULT: f64 = 40.0;
/// Most candidates recorded in a dispatch event (nearest first), so the
/// event stays small whatever the number of technicians.
pub const DISPATCH_CANDIDATES_RECORDED_MAX: usize = 10;
/// Default time a technician has to answer a dispatch request before it
/// times out and goes to the next nearest technician.
pub const DISPATCH_ANSWER_TIMEOUT_SECS_DEFAULT: u64 = 120;
/// The reason recorded when a dispatch request times out.
pub const DISPATCH_TIMEOUT_REASON: &str = "timeout";
