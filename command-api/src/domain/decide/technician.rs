//! A technician's own location stream.

use event_store::{EventPayload, Permission, Principal};

use super::{require, DomainError};
use crate::domain::command::ReportLocation;
use crate::domain::limits::SHORT_TEXT_CHARS_MAX;
use crate::domain::validate;

/// `TechnicianLocationReported` for the principal itself (the stream is
/// the technician's own, so no ticket state is involved).
pub(super) fn report_location(
    principal: &Principal,
    c: &ReportLocation,
) -> Result<Vec<EventPayload>, DomainError> {
    require(principal, Permission::DispatchRespond)?;
    let point = validate::point("lat", c.lat, "lon", c.lon)?;
    for (name, value) in [
        ("site", &c.site),
        ("building", &c.building),
        ("floor", &c.floor),
    ] {
        validate::chars_at_most(name, value.as_deref(), SHORT_TEXT_CHARS_MAX)?;
    }
    Ok(vec![EventPayload::TechnicianLocationReported {
        technician: principal.user_id,
        point,
        site: c.site.clone(),
        building: c.building.clone(),
        floor: c.floor.clone(),
    }])
}
