//! Replaying a room from the log: every event after the client's position
//! up to the position where live delivery took over, filtered by the one
//! visibility rule.

use std::collections::HashMap;

use event_store::schema::{StreamId, StreamKind};
use event_store::{can_see, EventStore, Pages, RecordedEvent, StoreError, StreamAudience};

use crate::conn::ConnHandle;
use crate::frames;
use crate::heads::audience_of;
use crate::hub::Hub;
use crate::limits::REPLAY_PAGE_EVENTS;
use crate::room::RoomId;
use crate::routing::{is_list_change, notified_user};

/// Sends the room's visible events with `after < position <= upto` to
/// `conn`, in order. `ticket_audience` is the audience the subscription was
/// authorized with (ticket rooms).
pub async fn replay(
    store: &dyn EventStore,
    hub: &Hub,
    conn: &ConnHandle,
    room: RoomId,
    after: u64,
    upto: u64,
    ticket_audience: Option<&StreamAudience>,
) -> Result<(), StoreError> {
    match (room, ticket_audience) {
        (RoomId::Ticket(ticket), Some(audience)) => {
            replay_ticket(store, conn, ticket, after, upto, audience).await
        }
        (RoomId::Ticket(_), None) => Ok(()),
        (RoomId::Tickets | RoomId::User(_), _) => {
            replay_log(store, hub, conn, room, after, upto).await
        }
    }
}

async fn replay_ticket(
    store: &dyn EventStore,
    conn: &ConnHandle,
    ticket: StreamId,
    after: u64,
    upto: u64,
    audience: &StreamAudience,
) -> Result<(), StoreError> {
    let room = RoomId::Ticket(ticket);
    let mut pages = Pages::stream(store, ticket, 1).page_size(REPLAY_PAGE_EVENTS);
    while let Some(page) = pages.next_page().await? {
        for event in &page {
            if event.position > upto {
                return Ok(());
            }
            if event.position > after
                && can_see(&conn.principal, event, audience)
                && !conn
                    .send(frames::event(room, event, conn.principal.sees_versions()))
                    .await
            {
                return Ok(());
            }
        }
    }
    Ok(())
}

async fn replay_log(
    store: &dyn EventStore,
    hub: &Hub,
    conn: &ConnHandle,
    room: RoomId,
    after: u64,
    upto: u64,
) -> Result<(), StoreError> {
    let mut audiences: HashMap<StreamId, StreamAudience> = HashMap::new();
    let mut pages = Pages::log(store, after + 1)
        .page_size(REPLAY_PAGE_EVENTS)
        .until(upto);
    while let Some(page) = pages.next_page().await? {
        for event in &page {
            if !belongs(room, event) || event.tenant != conn.principal.tenant {
                // The tenant test only saves loading audiences of other
                // tenants' streams; `can_see` below still decides.
                continue;
            }
            let audience = audience_of(store, hub, &mut audiences, event).await?;
            if can_see(&conn.principal, event, audience)
                && !conn
                    .send(frames::event(room, event, conn.principal.sees_versions()))
                    .await
            {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Whether a room carries the event (before visibility).
pub(crate) fn belongs(room: RoomId, event: &RecordedEvent) -> bool {
    if event.payload.stream_kind() != StreamKind::Ticket {
        return false;
    }
    match room {
        RoomId::Tickets => is_list_change(&event.payload),
        RoomId::User(user) => notified_user(&event.payload) == Some(user),
        RoomId::Ticket(ticket) => event.stream_id == ticket,
    }
}
