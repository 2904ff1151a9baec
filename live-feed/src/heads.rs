//! A room's head for one subscriber: the last position, at or before where
//! live delivery takes over, of an event of the room that the subscriber
//! may see. The hub's cursor itself may be a hidden note's position (or
//! another tenant's), so `subscribed` must not carry it (issue 14).

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use event_store::schema::StreamId;
use event_store::{can_see, EventStore, Principal, RecordedEvent, StoreError, StreamAudience};

use crate::audience;
use crate::hub::Hub;
use crate::limits::{HEAD_SCAN_EVENTS_MAX, REPLAY_PAGE_EVENTS};
use crate::replay::belongs;
use crate::room::RoomId;

/// The last position `<= upto` in `room` that `principal` may see, found by
/// reading the room backwards; 0 when there is none within
/// [`HEAD_SCAN_EVENTS_MAX`] events (a value that depends on nothing the
/// principal may not see). `ticket_audience` is the audience a ticket
/// room's subscription was authorized with.
pub async fn room_head(
    store: &dyn EventStore,
    hub: &Hub,
    principal: &Principal,
    room: RoomId,
    upto: u64,
    ticket_audience: Option<&StreamAudience>,
) -> Result<u64, StoreError> {
    match (room, ticket_audience) {
        (RoomId::Ticket(ticket), Some(audience)) => {
            ticket_head(store, principal, ticket, upto, audience).await
        }
        (RoomId::Ticket(_), None) => Ok(0),
        (RoomId::Tickets | RoomId::User(_), _) => log_head(store, hub, principal, room, upto).await,
    }
}

/// Pages of `[from, top]` going down: the `from` of the page ending at `top`.
fn page_start(top: u64) -> u64 {
    top.saturating_sub(REPLAY_PAGE_EVENTS as u64 - 1).max(1)
}

async fn ticket_head(
    store: &dyn EventStore,
    principal: &Principal,
    ticket: StreamId,
    upto: u64,
    audience: &StreamAudience,
) -> Result<u64, StoreError> {
    let mut top = store.stream_version(ticket).await?;
    let mut scanned = 0;
    while top > 0 && scanned < HEAD_SCAN_EVENTS_MAX {
        let from = page_start(top);
        let page = store
            .read_stream(ticket, from, (top - from + 1) as usize)
            .await?;
        scanned += page.len();
        let found = page
            .iter()
            .rev()
            .find(|e| e.position <= upto && can_see(principal, e, audience));
        if let Some(e) = found {
            return Ok(e.position);
        }
        top = from - 1;
    }
    Ok(0)
}

async fn log_head(
    store: &dyn EventStore,
    hub: &Hub,
    principal: &Principal,
    room: RoomId,
    upto: u64,
) -> Result<u64, StoreError> {
    let mut audiences: HashMap<StreamId, StreamAudience> = HashMap::new();
    let mut top = upto;
    let mut scanned = 0;
    while top > 0 && scanned < HEAD_SCAN_EVENTS_MAX {
        let from = page_start(top);
        let page = store.read_all(from, (top - from + 1) as usize).await?;
        scanned += page.len();
        for event in page.iter().rev().filter(|e| e.position <= upto) {
            if !belongs(room, event) || event.tenant != principal.tenant {
                continue;
            }
            if can_see(
                principal,
                event,
                audience_of(store, hub, &mut audiences, event).await?,
            ) {
                return Ok(event.position);
            }
        }
        top = from - 1;
    }
    Ok(0)
}

/// The audience of `event`'s stream: from `cache`, the hub, or the log.
pub(crate) async fn audience_of<'a>(
    store: &dyn EventStore,
    hub: &Hub,
    cache: &'a mut HashMap<StreamId, StreamAudience>,
    event: &RecordedEvent,
) -> Result<&'a StreamAudience, StoreError> {
    Ok(match cache.entry(event.stream_id) {
        Entry::Occupied(known) => known.into_mut(),
        Entry::Vacant(slot) => slot.insert(match hub.audience(event.stream_id) {
            Some(a) => a,
            None => audience::load(store, event.stream_id, None).await?,
        }),
    })
}
