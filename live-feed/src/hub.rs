//! The hub follows the log once and fans each event out to the rooms that
//! want it. It never waits on a connection: a full queue closes that
//! connection (4008), it does not slow the hub or anyone else.
//!
//! One lock guards rooms, audiences and the cursor together. That is what
//! makes resume seamless: a member joins at the cursor, under the lock, so
//! every event after it is delivered live and every event up to it comes
//! from the replay, never both and never neither.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use event_store::schema::{StreamId, StreamKind};
use event_store::{
    can_see, can_see_visibility, EventStore, Principal, RecordedEvent, StoreError, StreamAudience,
    Visibility,
};
use futures::StreamExt;
use tokio::sync::watch;

use crate::audience;
use crate::conn::{ConnHandle, ConnId};
use crate::frames;
use crate::limits::{
    AUDIENCE_CACHE_STREAMS_MAX, PRESENCE_ROUND_MS, REPLAY_BUFFER_EVENTS_MAX, STORE_RETRY_BACKOFF_MS,
};
use crate::room::RoomId;
use crate::routing::{is_list_change, notified_user};
use crate::stats::FeedStats;

/// Fans the log out to rooms.
pub struct Hub {
    store: Arc<dyn EventStore>,
    state: Mutex<HubState>,
    ready: watch::Sender<bool>,
    stats: Arc<FeedStats>,
}

#[derive(Default)]
struct HubState {
    /// Position of the last event fanned out.
    cursor: u64,
    rooms: HashMap<RoomId, Room>,
    /// Ticket rooms whose membership changed since presence was last sent.
    presence_due: HashSet<RoomId>,
    /// Audiences of ticket streams, folded up to `cursor`.
    audiences: HashMap<StreamId, StreamAudience>,
}

#[derive(Default)]
struct Room {
    members: HashMap<ConnId, Member>,
    /// Bumped on every join and leave; members remember the one they saw.
    presence_version: u64,
}

struct Member {
    conn: Arc<ConnHandle>,
    /// Events at or before this position are not delivered live: the
    /// client has them already or gets them from its replay.
    after: u64,
    /// Live event frames held back while this member's replay runs.
    held: Option<Vec<Utf8Bytes>>,
    /// The room's presence version of the last presence frame it got.
    presence_seen: u64,
    /// Whether it got `subscribed`: nothing else of the room comes before.
    welcomed: bool,
}

/// What joining a room gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    /// The position live delivery starts after.
    pub head: u64,
    /// Whether events up to `head` must be replayed from the log.
    pub replay: bool,
}

impl Hub {
    /// Starts following the log from its current head.
    pub fn start(
        store: Arc<dyn EventStore>,
        stats: Arc<FeedStats>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            store,
            state: Mutex::new(HubState::default()),
            ready: watch::channel(false).0,
            stats,
        });
        tokio::spawn(Arc::clone(&hub).send_presence(shutdown.clone()));
        tokio::spawn(Arc::clone(&hub).follow(shutdown));
        hub
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock cannot leave rooms half-updated in a
        // way that leaks events: every update is a single insert or remove.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the hub knows the log's head.
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// Position of the last event fanned out.
    pub fn cursor(&self) -> u64 {
        self.lock().cursor
    }

    /// The audience of a ticket stream as folded so far, if the hub has it.
    pub fn audience(&self, stream: StreamId) -> Option<StreamAudience> {
        self.lock().audiences.get(&stream).cloned()
    }

    /// Adds `conn` to `room` at the cursor. Live events after it are held
    /// until [`Hub::finish_replay`], so that [`Hub::welcome`] (once the
    /// subscriber's room head is known) and the replay precede them. The
    /// others hear of the newcomer with the next coalesced presence round:
    /// sending every join to everyone would cost m² frames while a room fills.
    pub fn join(&self, room: RoomId, conn: &Arc<ConnHandle>, after: Option<u64>) -> Joined {
        let mut state = self.lock();
        let head = state.cursor;
        let replay = after.is_some_and(|a| a < head);
        let r = state.rooms.entry(room).or_default();
        r.presence_version += 1;
        let member = Member {
            conn: Arc::clone(conn),
            after: after.unwrap_or(head).max(head),
            held: Some(Vec::new()),
            presence_seen: r.presence_version,
            welcomed: false,
        };
        r.members.insert(conn.id, member);
        if matches!(room, RoomId::Ticket(_)) {
            state.presence_due.insert(room);
        }
        Joined { head, replay }
    }

    /// Sends a member `subscribed` with its room head `position` (the last
    /// position in the room it may see, `heads::room_head`) and, in ticket
    /// rooms, who is there: the first frames of the room it gets.
    pub fn welcome(&self, room: RoomId, conn: ConnId, position: u64) {
        let mut state = self.lock();
        let Some(r) = state.rooms.get_mut(&room) else {
            return;
        };
        let version = r.presence_version;
        let presence = matches!(room, RoomId::Ticket(_)).then(|| presence_frame(room, &r.members));
        let Some(member) = r.members.get_mut(&conn) else {
            return;
        };
        member.welcomed = true;
        member.conn.offer(frames::subscribed(room, position));
        if let Some(frame) = presence {
            member.presence_seen = version;
            member.conn.offer(frame);
        }
    }

    /// Ends a member's replay: releases the live events held meanwhile.
    pub fn finish_replay(&self, room: RoomId, conn: ConnId) {
        let mut state = self.lock();
        let Some(member) = state
            .rooms
            .get_mut(&room)
            .and_then(|r| r.members.get_mut(&conn))
        else {
            return;
        };
        for frame in member.held.take().unwrap_or_default() {
            if !member.conn.offer(frame) {
                break;
            }
        }
    }

    /// Removes `conn` from `room`.
    pub fn leave(&self, room: RoomId, conn: ConnId) {
        let mut state = self.lock();
        let Some(r) = state.rooms.get_mut(&room) else {
            return;
        };
        if r.members.remove(&conn).is_none() {
            return;
        }
        r.presence_version += 1;
        if r.members.is_empty() {
            state.rooms.remove(&room);
        } else if matches!(room, RoomId::Ticket(_)) {
            state.presence_due.insert(room);
        }
    }

    /// Every `PRESENCE_ROUND_MS`, sends the rooms whose membership changed
    /// their user list, to the members who have not seen it yet.
    async fn send_presence(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(Duration::from_millis(PRESENCE_ROUND_MS));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = ticks.tick() => {}
            }
            let mut state = self.lock();
            let state = &mut *state;
            for room in state.presence_due.drain() {
                let Some(r) = state.rooms.get_mut(&room) else {
                    continue;
                };
                let version = r.presence_version;
                if r.members.values().all(|m| m.presence_seen == version) {
                    continue;
                }
                let frame = presence_frame(room, &r.members);
                for m in r.members.values_mut().filter(|m| m.welcomed) {
                    if m.presence_seen != version {
                        m.presence_seen = version;
                        m.conn.offer(frame.clone());
                    }
                }
            }
        }
    }

    /// Tells everyone else in the room who may see a message of
    /// `visibility` there that `from` is (not) typing one: typing an
    /// internal note must not reveal that one is being written (issue 14).
    /// `joined_with` is the stream's audience as `from` joined with it,
    /// for streams the hub has not folded (yet, or any more).
    pub fn typing(
        &self,
        room: RoomId,
        from: &ConnHandle,
        typing: bool,
        visibility: Visibility,
        joined_with: &StreamAudience,
    ) {
        let state = self.lock();
        let Some(r) = state.rooms.get(&room) else {
            return;
        };
        let audience = state.audience_of(room, joined_with);
        let frame = frames::typing(room, &from.principal, typing);
        for m in r.members.values().filter(|m| {
            m.welcomed
                && m.conn.id != from.id
                && can_see_visibility(&m.conn.principal, visibility, audience)
        }) {
            m.conn.offer(frame.clone());
        }
    }

    /// Tells everyone in the room who may see the event at `position`
    /// (of `visibility`) that `reader` read up to it: a receipt of an
    /// internal note must not reveal the note. `joined_with` as for
    /// [`Hub::typing`].
    pub fn read(
        &self,
        room: RoomId,
        reader: &Principal,
        position: u64,
        visibility: Visibility,
        joined_with: &StreamAudience,
    ) {
        let state = self.lock();
        let Some(r) = state.rooms.get(&room) else {
            return;
        };
        let audience = state.audience_of(room, joined_with);
        let frame = frames::read(room, reader, position);
        for m in r
            .members
            .values()
            .filter(|m| m.welcomed && can_see_visibility(&m.conn.principal, visibility, audience))
        {
            m.conn.offer(frame.clone());
        }
    }

    async fn follow(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let head = loop {
            match self.store.head().await {
                Ok(head) => break head,
                Err(e) => {
                    tracing::warn!(error = %e, "live feed: cannot read the log head; retrying");
                    if backoff(&mut shutdown).await {
                        return;
                    }
                }
            }
        };
        self.lock().cursor = head;
        self.ready.send_replace(true);
        loop {
            let from = self.cursor() + 1;
            let mut events = self.store.subscribe(from);
            loop {
                let item = tokio::select! {
                    _ = shutdown.wait_for(|stop| *stop) => return,
                    item = events.next() => item,
                };
                match item {
                    Some(Ok(event)) => {
                        let expected = self.cursor() + 1;
                        if event.position < expected {
                            continue;
                        }
                        if event.position > expected {
                            tracing::error!(
                                expected,
                                got = event.position,
                                "live feed: gap in subscription; resubscribing"
                            );
                            break;
                        }
                        if !self.fan_out(&event, &mut shutdown).await {
                            return;
                        }
                    }
                    Some(Err(StoreError::Lagged { .. })) => break,
                    Some(Err(StoreError::Closed)) => return,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "live feed: subscription failed; resubscribing");
                        if backoff(&mut shutdown).await {
                            return;
                        }
                        break;
                    }
                    None => {
                        if backoff(&mut shutdown).await {
                            return;
                        }
                        break;
                    }
                }
            }
        }
    }

    /// Delivers one event; false if shutdown came while the store was down.
    async fn fan_out(&self, event: &RecordedEvent, shutdown: &mut watch::Receiver<bool>) -> bool {
        if event.payload.stream_kind() != StreamKind::Ticket {
            self.lock().cursor = event.position;
            return true;
        }
        let known =
            event.stream_version == 1 || self.lock().audiences.contains_key(&event.stream_id);
        let loaded = if known {
            None
        } else {
            loop {
                match audience::load(
                    self.store.as_ref(),
                    event.stream_id,
                    Some(event.stream_version),
                )
                .await
                {
                    Ok(a) => break Some(a),
                    Err(e) => {
                        tracing::warn!(error = %e, "live feed: cannot load a stream's audience; retrying");
                        if backoff(shutdown).await {
                            return false;
                        }
                    }
                }
            }
        };
        let mut guard = self.lock();
        let HubState {
            cursor,
            rooms,
            audiences,
            ..
        } = &mut *guard;
        let audience = audiences
            .entry(event.stream_id)
            .or_insert_with(|| loaded.unwrap_or_default());
        audience.apply(event);
        let mut frames = deliver(rooms, RoomId::Ticket(event.stream_id), event, audience);
        if is_list_change(&event.payload) {
            frames += deliver(rooms, RoomId::Tickets, event, audience);
        }
        if let Some(user) = notified_user(&event.payload) {
            frames += deliver(rooms, RoomId::User(user), event, audience);
        }
        *cursor = event.position;
        if audiences.len() > AUDIENCE_CACHE_STREAMS_MAX {
            audiences.retain(|stream, _| rooms.contains_key(&RoomId::Ticket(*stream)));
        }
        drop(guard);
        self.stats.fanned_out(frames);
        true
    }
}

impl HubState {
    /// The audience of `room`'s stream as folded, else as a member joined
    /// with it (`joined_with`).
    fn audience_of<'a>(
        &'a self,
        room: RoomId,
        joined_with: &'a StreamAudience,
    ) -> &'a StreamAudience {
        match room {
            RoomId::Ticket(stream) => self.audiences.get(&stream).unwrap_or(joined_with),
            RoomId::User(_) | RoomId::Tickets => joined_with,
        }
    }
}

/// Hands the event to every member of `room` allowed to see it; the frame
/// is serialized once for the room per form (with and without `version`),
/// not once per member.
fn deliver(
    rooms: &mut HashMap<RoomId, Room>,
    room: RoomId,
    event: &RecordedEvent,
    audience: &StreamAudience,
) -> u64 {
    let Some(r) = rooms.get_mut(&room) else {
        return 0;
    };
    let mut forms: [Option<Utf8Bytes>; 2] = [None, None];
    let mut delivered = 0;
    for m in r.members.values_mut() {
        if event.position <= m.after
            || m.conn.is_closing()
            || !can_see(&m.conn.principal, event, audience)
        {
            continue;
        }
        let with_version = m.conn.principal.sees_versions();
        let f = forms[usize::from(with_version)]
            .get_or_insert_with(|| frames::event(room, event, with_version))
            .clone();
        match &mut m.held {
            Some(held) if held.len() >= REPLAY_BUFFER_EVENTS_MAX => {
                m.conn.close_slow();
            }
            Some(held) => held.push(f),
            None => {
                m.conn.offer(f);
            }
        }
        delivered += 1;
    }
    delivered
}

/// The room's current users (one entry per user, however many connections).
fn presence_frame(room: RoomId, members: &HashMap<ConnId, Member>) -> Utf8Bytes {
    let mut seen = HashSet::new();
    let mut users: Vec<&Principal> = members
        .values()
        .map(|m| &m.conn.principal)
        .filter(|p| seen.insert(p.user_id))
        .collect();
    users.sort_by(|a, b| (&a.name, a.user_id).cmp(&(&b.name, b.user_id)));
    frames::presence(room, users.into_iter().map(frames::user_json).collect())
}

/// Waits before a retry; true if shutdown came first.
async fn backoff(shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = shutdown.wait_for(|stop| *stop) => true,
        _ = tokio::time::sleep(Duration::from_millis(STORE_RETRY_BACKOFF_MS)) => false,
    }
}
