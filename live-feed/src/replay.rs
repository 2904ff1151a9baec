//! Replaying a room from the log: every event after the client's position
//! up to the position where live delivery took over, filtered by the one
//! visibility rule.

use std::collections::HashMap;

use event_store::schema::{StreamId, StreamKind};
use event_store::{can_see, EventStore, RecordedEvent, StoreError, StreamAudience};

use crate::audience;
use crate::conn::ConnHandle;
use crate::frames;
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
    let replay = Replay {
        store,
        conn,
        room,
        after,
        upto,
    };
    match (room, ticket_audience) {
        (RoomId::Ticket(ticket), Some(audience)) => replay.ticket(ticket, audience).await,
        (RoomId::Ticket(_), None) => Ok(()),
        (RoomId::Tickets | RoomId::User(_), _) => replay.log(hub).await,
    }
}

/// One replay: the events of `room` with `after < position <= upto`, for
/// `conn`.
struct Replay<'a> {
    store: &'a dyn EventStore,
    conn: &'a ConnHandle,
    room: RoomId,
    after: u64,
    upto: u64,
}

impl Replay<'_> {
    /// A ticket room: the ticket's stream, seen with the audience the
    /// subscription was authorized with.
    async fn ticket(&self, ticket: StreamId, audience: &StreamAudience) -> Result<(), StoreError> {
        let mut pages = Pages::new(self.store, Source::Stream(ticket), self.upto);
        while let Some(page) = pages.next().await? {
            for event in &page {
                if event.position > self.after
                    && can_see(&self.conn.principal, event, audience)
                    && !self.conn.send(frames::event(self.room, event)).await
                {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// A `tickets` or `user:` room: the log, each event seen with its
    /// stream's audience (from the hub, else loaded once per stream).
    async fn log(&self, hub: &Hub) -> Result<(), StoreError> {
        let (store, conn, room) = (self.store, self.conn, self.room);
        let mut audiences: HashMap<StreamId, StreamAudience> = HashMap::new();
        let mut pages = Pages::new(store, Source::Log { after: self.after }, self.upto);
        while let Some(page) = pages.next().await? {
            for event in &page {
                if !belongs(room, event) || event.tenant != conn.principal.tenant {
                    // The tenant test only saves loading audiences of other
                    // tenants' streams; `can_see` below still decides.
                    continue;
                }
                let audience = match audiences.get(&event.stream_id) {
                    Some(a) => a,
                    None => {
                        let a = match hub.audience(event.stream_id) {
                            Some(a) => a,
                            None => audience::load(store, event.stream_id, None).await?,
                        };
                        audiences.entry(event.stream_id).or_insert(a)
                    }
                };
                if can_see(&conn.principal, event, audience)
                    && !conn.send(frames::event(room, event)).await
                {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// What a replay reads.
#[derive(Clone, Copy)]
enum Source {
    /// One ticket's stream, from its first event.
    Stream(StreamId),
    /// The whole log, after a position.
    Log {
        /// The last position the client has.
        after: u64,
    },
}

/// Reads a [`Source`] page by page, in log order, up to and including
/// position `upto` (where live delivery took over).
struct Pages<'a> {
    store: &'a dyn EventStore,
    source: Source,
    /// The stream version or log position the next page starts at.
    next: u64,
    upto: u64,
    /// Whether `upto` (or the end of the source) is reached.
    done: bool,
}

impl<'a> Pages<'a> {
    fn new(store: &'a dyn EventStore, source: Source, upto: u64) -> Self {
        let (next, done) = match source {
            Source::Stream(_) => (1, false),
            Source::Log { after } => (after + 1, after >= upto),
        };
        Pages {
            store,
            source,
            next,
            upto,
            done,
        }
    }

    /// The next page, without events past `upto`; `None` once done.
    async fn next(&mut self) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let mut page = match self.source {
            Source::Stream(stream) => {
                self.store
                    .read_stream(stream, self.next, REPLAY_PAGE_EVENTS)
                    .await?
            }
            Source::Log { .. } => self.store.read_all(self.next, REPLAY_PAGE_EVENTS).await?,
        };
        let Some(last) = page.last() else {
            self.done = true;
            return Ok(None);
        };
        self.next = match self.source {
            Source::Stream(_) => last.stream_version + 1,
            Source::Log { .. } => last.position + 1,
        };
        // Positions rise along a stream as along the log, so the events
        // past `upto` are the page's tail in both.
        self.done = last.position >= self.upto;
        page.retain(|e| e.position <= self.upto);
        Ok(Some(page))
    }
}

/// Whether a `tickets` or `user:` room carries the event (before visibility).
fn belongs(room: RoomId, event: &RecordedEvent) -> bool {
    if event.payload.stream_kind() != StreamKind::Ticket {
        return false;
    }
    match room {
        RoomId::Tickets => is_list_change(&event.payload),
        RoomId::User(user) => notified_user(&event.payload) == Some(user),
        RoomId::Ticket(ticket) => event.stream_id == ticket,
    }
}
