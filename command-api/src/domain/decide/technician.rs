//! A technician's own location stream.

use event_store::{EventPayload, Permission, Principal, StreamKind};

use super::{own_stream, require, DomainError};
use crate::domain::command::ReportLocation;
use crate::domain::limits::SHORT_TEXT_CHARS_MAX;
use crate::domain::state::TicketState;
use crate::domain::validate;

/// `TechnicianLocationReported` for the principal itself, on the
/// technician's own stream (`state` is that stream's, not a ticket's).
pub(super) fn report_location(
    state: &TicketState,
    principal: &Principal,
    c: &ReportLocation,
) -> Result<Vec<EventPayload>, DomainError> {
    require(principal, Permission::DispatchRespond)?;
    // The stream is named by the user id alone: refuse to write into a
    // stream that is not this technician's own (a user of another tenant
    // with the same id from an outside identity provider, or a ticket).
    own_stream(state, principal, StreamKind::Technician)?;
    let point = validate::point("lat", c.lat, "lon", c.lon)?;
    for (name, value) in [
        ("site", &c.site),
        ("building", &c.building),
        ("floor", &c.floor),
    ] {
        validate::chars_at_most(name, value.as_deref(), SHORT_TEXT_CHARS_MAX)?;
        validate::text_opt(name, value.as_deref(), validate::Lines::Single)?;
    }
    Ok(vec![EventPayload::TechnicianLocationReported {
        technician: principal.user_id,
        point,
        site: c.site.clone(),
        building: c.building.clone(),
        floor: c.floor.clone(),
    }])
}
