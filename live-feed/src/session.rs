//! One WebSocket connection: reads client frames, writes queued frames,
//! pings, and closes with the right code. Reader and writer run as two
//! futures of one task, so an idle connection costs one task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use chrono::{DateTime, Utc};
use event_store::{
    can_see_stream, can_see_visibility, Permission, Principal, StoreError, StreamAudience,
    Visibility,
};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{interval_at, sleep, sleep_until, timeout, Instant, MissedTickBehavior};

use crate::audience;
use crate::auth::AuthRejected;
use crate::conn::ConnHandle;
use crate::frames::{self, ClientFrame, ErrorCode};
use crate::heads::room_head;
use crate::limits::{
    CLIENT_FRAMES_BURST, CLIENT_FRAMES_PER_SECOND, CLOSE_FLUSH_MS, CLOSE_GOING_AWAY,
    CLOSE_LINGER_MS, CLOSE_NORMAL, CLOSE_NOT_AUTHENTICATED, CLOSE_PROTOCOL_ERROR, CLOSE_TOO_BIG,
    CLOSE_TOO_SLOW, PONGS_MISSED_MAX, READ_FRAMES_BURST, READ_FRAMES_PER_SECOND,
    ROOMS_PER_CONNECTION_MAX, TYPING_INTERVAL_MS,
};
use crate::rate::TokenBucket;
use crate::receipts::ReceiptError;
use crate::replay::replay;
use crate::room::RoomId;
use crate::state::FeedState;

/// Serves one upgraded socket until it closes. `auth` is the principal,
/// the token's expiry and the token itself (checked again when sessions
/// are revoked).
pub async fn run(
    socket: WebSocket,
    feed: FeedState,
    auth: Result<(Principal, DateTime<Utc>, String), AuthRejected>,
) {
    let (principal, expires_at, token) = match auth {
        Ok((p, exp, token)) if exp > Utc::now() => (p, exp, token),
        _ => return refuse(socket, CLOSE_NOT_AUTHENTICATED).await,
    };
    let mut shutdown = feed.shutdown_signal();
    if *shutdown.borrow_and_update() {
        return refuse(socket, CLOSE_GOING_AWAY).await;
    }
    let _open = feed.connection_opened();
    let (conn, outbound) = ConnHandle::new(
        feed.next_conn_id(),
        principal,
        feed.config().outbound_queue_frames,
        feed.stats_handle(),
    );
    let expiry = Instant::now() + (expires_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    let (sink, mut stream) = socket.split();
    let missed_pongs = AtomicU32::new(0);
    let mut session = Session {
        feed: feed.clone(),
        conn: Arc::clone(&conn),
        rooms: HashMap::new(),
        bucket: TokenBucket::new(CLIENT_FRAMES_PER_SECOND, CLIENT_FRAMES_BURST),
        reads: TokenBucket::new(READ_FRAMES_PER_SECOND, READ_FRAMES_BURST),
    };
    {
        let reader = read_loop(&mut stream, &mut session, &missed_pongs);
        let revoked = revoked_watch(&feed, &token);
        let writer = write_loop(
            sink,
            outbound,
            &conn,
            shutdown,
            expiry,
            feed.config().ping_interval,
            &missed_pongs,
            revoked,
        );
        tokio::pin!(reader, writer);
        tokio::select! {
            end = &mut reader => {
                if end == ReaderEnd::Closing {
                    // The writer was asked to close; let it send the frame.
                    let _ = timeout(Duration::from_millis(CLOSE_FLUSH_MS), &mut writer).await;
                }
            }
            () = &mut writer => {
                // Our close frame is out: wait briefly for the client's answer
                // so that unread input does not turn the close into a reset.
                let _ = timeout(Duration::from_millis(CLOSE_LINGER_MS), &mut reader).await;
            }
        }
    }
    drop(session);
}

/// Upgrades only to say why not, then closes.
async fn refuse(mut socket: WebSocket, code: u16) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(close_reason(code)),
    };
    let _ = timeout(
        Duration::from_millis(CLOSE_FLUSH_MS),
        socket.send(Message::Close(Some(frame))),
    )
    .await;
    let linger = async { while let Some(Ok(_)) = socket.recv().await {} };
    let _ = timeout(Duration::from_millis(CLOSE_LINGER_MS), linger).await;
}

fn close_reason(code: u16) -> &'static str {
    match code {
        CLOSE_NOT_AUTHENTICATED => "not authenticated",
        CLOSE_TOO_SLOW => "too slow; resume with after",
        CLOSE_TOO_BIG => "frame too big",
        CLOSE_GOING_AWAY => "server shutting down",
        CLOSE_PROTOCOL_ERROR => "protocol error",
        _ => "closing",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReaderEnd {
    /// The client closed or the connection broke.
    PeerGone,
    /// We asked the writer to close the connection.
    Closing,
}

/// A room this connection is in.
#[derive(Debug, Default)]
struct RoomSub {
    /// Whether the others were told this connection is typing, and of a
    /// message of which visibility: the stop goes to the same members.
    typing: Option<Visibility>,
    last_typing_at: Option<Instant>,
    /// The stream's audience this subscription was authorized with (ticket
    /// rooms; empty for others): the sender's check, and the hub's fallback
    /// where it has not folded the stream.
    audience: StreamAudience,
}

struct Session {
    feed: FeedState,
    conn: Arc<ConnHandle>,
    rooms: HashMap<RoomId, RoomSub>,
    bucket: TokenBucket,
    /// `read` frames, on top of `bucket`.
    reads: TokenBucket,
}

impl Drop for Session {
    fn drop(&mut self) {
        for (room, sub) in self.rooms.drain() {
            leave(&self.feed, &self.conn, room, &sub);
        }
    }
}

/// Takes `conn` out of `room`; a typing indicator it left on is turned off
/// first, or the others would see it typing until they reload.
fn leave(feed: &FeedState, conn: &ConnHandle, room: RoomId, sub: &RoomSub) {
    if let Some(shown) = sub.typing {
        feed.hub().typing(room, conn, false, shown, &sub.audience);
    }
    feed.hub().leave(room, conn.id);
}

async fn read_loop(
    stream: &mut SplitStream<WebSocket>,
    session: &mut Session,
    missed_pongs: &AtomicU32,
) -> ReaderEnd {
    while let Some(msg) = stream.next().await {
        if session.conn.is_closing() {
            // Draining until the client answers our close frame.
            match msg {
                Ok(Message::Close(_)) | Err(_) => return ReaderEnd::PeerGone,
                Ok(_) => continue,
            }
        }
        match msg {
            // Over the rate, the writer sends 4008 while this loop keeps
            // draining: a flooding client blocked on its own sends could
            // not read the close frame otherwise, and a socket dropped with
            // its input unread answers with a TCP reset that destroys the
            // frame (issue 15).
            Ok(Message::Text(text)) => {
                if !session.admit(Instant::now()) {
                    continue;
                }
                session.handle_text(text.as_str()).await;
            }
            Ok(Message::Binary(_)) => {
                if !session.admit(Instant::now()) {
                    continue;
                }
                session.reply(frames::error(
                    ErrorCode::BadRequest,
                    None,
                    "binary frames are not supported",
                ));
            }
            Ok(Message::Pong(_)) => missed_pongs.store(0, Ordering::Release),
            // tungstenite answers pings itself.
            Ok(Message::Ping(_)) => {}
            Ok(Message::Close(_)) => {
                // tungstenite queued the answer; the writer flushes it.
                session.conn.close(CLOSE_NORMAL);
                return ReaderEnd::Closing;
            }
            Err(e) => {
                let code = match error_close_code(e) {
                    Some(code) => code,
                    None => return ReaderEnd::PeerGone,
                };
                session.conn.close(code);
                return ReaderEnd::Closing;
            }
        }
    }
    ReaderEnd::PeerGone
}

/// The close code a read error deserves; `None` when the peer is gone.
fn error_close_code(e: axum::Error) -> Option<u16> {
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>()? {
        tungstenite::Error::Capacity(_) => Some(CLOSE_TOO_BIG),
        tungstenite::Error::Protocol(_) | tungstenite::Error::Utf8(_) => Some(CLOSE_PROTOCOL_ERROR),
        _ => None,
    }
}

/// Resolves once the connection's token is no longer accepted after a
/// revocation (never, if it stays accepted or the feed goes away).
async fn revoked_watch(feed: &FeedState, token: &str) {
    let mut revocations = feed.revocation_signal();
    while revocations.changed().await.is_ok() {
        if feed.authenticator().principal(token).is_err() {
            return;
        }
    }
    std::future::pending::<()>().await;
}

#[allow(clippy::too_many_arguments)]
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut outbound: mpsc::Receiver<Utf8Bytes>,
    conn: &ConnHandle,
    mut shutdown: watch::Receiver<bool>,
    expiry: Instant,
    ping_every: Duration,
    missed_pongs: &AtomicU32,
    revoked: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(revoked);
    let mut ping = interval_at(Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let stuck_after = ping_every * PONGS_MISSED_MAX;
    let code = loop {
        let msg = tokio::select! {
            biased;
            code = conn.closed() => break code,
            _ = shutdown.wait_for(|stop| *stop) => break CLOSE_GOING_AWAY,
            () = sleep_until(expiry) => break CLOSE_NOT_AUTHENTICATED,
            () = &mut revoked => break CLOSE_NOT_AUTHENTICATED,
            _ = ping.tick() => {
                if missed_pongs.fetch_add(1, Ordering::AcqRel) >= PONGS_MISSED_MAX {
                    break CLOSE_TOO_SLOW;
                }
                Message::Ping(Bytes::new())
            }
            frame = outbound.recv() => match frame {
                Some(frame) => Message::Text(frame),
                None => break CLOSE_GOING_AWAY,
            },
        };
        // A client that does not read blocks this send; stay responsive.
        tokio::select! {
            biased;
            code = conn.closed() => break code,
            _ = shutdown.wait_for(|stop| *stop) => break CLOSE_GOING_AWAY,
            () = sleep_until(expiry) => break CLOSE_NOT_AUTHENTICATED,
            () = &mut revoked => break CLOSE_NOT_AUTHENTICATED,
            () = sleep(stuck_after) => break CLOSE_TOO_SLOW,
            sent = sink.send(msg) => if sent.is_err() {
                conn.close(CLOSE_GOING_AWAY);
                return;
            },
        }
    };
    conn.close(code);
    if code == CLOSE_NORMAL {
        let _ = timeout(Duration::from_millis(CLOSE_FLUSH_MS), sink.flush()).await;
        return;
    }
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(close_reason(code)),
    };
    let _ = timeout(
        Duration::from_millis(CLOSE_FLUSH_MS),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
}

impl Session {
    fn reply(&self, frame: Utf8Bytes) {
        self.conn.offer(frame);
    }

    /// Counts a client frame against the rate; closes with 4008 beyond it.
    fn admit(&mut self, now: Instant) -> bool {
        if self.bucket.take(now) {
            return true;
        }
        self.conn.close(CLOSE_TOO_SLOW);
        false
    }

    async fn handle_text(&mut self, text: &str) {
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(_) => {
                self.reply(frames::error(
                    ErrorCode::BadRequest,
                    None,
                    "expected a JSON object with a known \"type\" and its fields",
                ));
                return;
            }
        };
        match frame {
            ClientFrame::Subscribe { room, after } => self.subscribe(&room, after).await,
            ClientFrame::Unsubscribe { room } => self.unsubscribe(&room),
            ClientFrame::Typing {
                room,
                typing,
                internal,
            } => self.typing(&room, typing, internal),
            ClientFrame::Read { room, position } => self.read(&room, position).await,
            ClientFrame::Ping => self.reply(frames::pong()),
        }
    }

    fn error(&self, code: ErrorCode, room: &str, message: &str) {
        self.reply(frames::error(code, Some(room), message));
    }

    async fn subscribe(&mut self, name: &str, after: Option<u64>) {
        let Some(room) = RoomId::parse(name) else {
            return self.error(ErrorCode::BadRequest, name, "unknown room name");
        };
        if self.rooms.contains_key(&room) {
            return self.error(ErrorCode::BadRequest, name, "already subscribed");
        }
        if self.rooms.len() >= ROOMS_PER_CONNECTION_MAX {
            return self.error(ErrorCode::BadRequest, name, "too many rooms");
        }
        let audience = match self.authorize(room).await {
            Ok(a) => a,
            Err((code, message)) => return self.error(code, name, message),
        };
        let hub = self.feed.hub();
        hub.wait_ready().await;
        let joined = hub.join(room, &self.conn, after);
        let sub = RoomSub {
            audience: audience.clone().unwrap_or_default(),
            ..RoomSub::default()
        };
        self.rooms.insert(room, sub);
        let store = self.feed.store();
        let principal = &self.conn.principal;
        let started = async {
            let position = room_head(
                store.as_ref(),
                &hub,
                principal,
                room,
                joined.head,
                audience.as_ref(),
            )
            .await?;
            hub.welcome(room, self.conn.id, position);
            if joined.replay {
                let from = after.unwrap_or(0);
                replay(
                    store.as_ref(),
                    &hub,
                    &self.conn,
                    room,
                    from,
                    joined.head,
                    audience.as_ref(),
                )
                .await?;
            }
            Ok::<(), StoreError>(())
        };
        match started.await {
            Ok(()) => hub.finish_replay(room, self.conn.id),
            Err(e) => {
                tracing::warn!(error = %e, %room, "live feed: subscribe failed");
                self.rooms.remove(&room);
                hub.leave(room, self.conn.id);
                self.error(
                    ErrorCode::Unavailable,
                    name,
                    "could not replay; subscribe again",
                );
            }
        }
    }

    /// Whether the principal may join; for ticket rooms, the audience the
    /// decision was made with. Invisible and nonexistent tickets get the
    /// same answer.
    async fn authorize(
        &self,
        room: RoomId,
    ) -> Result<Option<StreamAudience>, (ErrorCode, &'static str)> {
        let principal = &self.conn.principal;
        match room {
            RoomId::Ticket(ticket) => {
                if let Some(a) = self.feed.hub().audience(ticket) {
                    if can_see_stream(principal, &a) {
                        return Ok(Some(a));
                    }
                }
                // Not folded yet, or folded before a change the log already has.
                let store = self.feed.store();
                let a = audience::load(store.as_ref(), ticket, None)
                    .await
                    .map_err(|_| (ErrorCode::Unavailable, "store unavailable; try again"))?;
                if can_see_stream(principal, &a) {
                    Ok(Some(a))
                } else {
                    Err((ErrorCode::NotFound, "room not found"))
                }
            }
            RoomId::User(user) if user == principal.user_id => Ok(None),
            RoomId::User(_) => Err((ErrorCode::Forbidden, "only your own notifications")),
            RoomId::Tickets if principal.has(Permission::TicketsView) => Ok(None),
            RoomId::Tickets => Err((ErrorCode::Forbidden, "tickets.view is required")),
        }
    }

    fn unsubscribe(&mut self, name: &str) {
        let left = RoomId::parse(name).and_then(|r| self.rooms.remove(&r).map(|sub| (r, sub)));
        match left {
            Some((room, sub)) => {
                leave(&self.feed, &self.conn, room, &sub);
                self.reply(frames::unsubscribed(room));
            }
            None => self.error(ErrorCode::BadRequest, name, "not subscribed"),
        }
    }

    /// The ticket room `name` if this connection is in it.
    fn joined_ticket_room(&self, name: &str) -> Option<RoomId> {
        RoomId::parse(name).filter(|r| matches!(r, RoomId::Ticket(_)) && self.rooms.contains_key(r))
    }

    /// A typing frame; `internal` when what is typed is an internal note,
    /// which only members who may see the room's internal events hear of.
    fn typing(&mut self, name: &str, typing: bool, internal: bool) {
        let Some(room) = self.joined_ticket_room(name) else {
            return self.error(
                ErrorCode::BadRequest,
                name,
                "not subscribed to this ticket room",
            );
        };
        let now = Instant::now();
        let hub = self.feed.hub();
        let Some(sub) = self.rooms.get_mut(&room) else {
            return;
        };
        let visibility = if internal {
            Visibility::Internal
        } else {
            Visibility::Public
        };
        // The audience this subscription was authorized with decides what
        // the sender may type; the hub decides who hears it on the stream's
        // current audience (no second lookup and clone here per frame).
        if !can_see_visibility(&self.conn.principal, visibility, &sub.audience) {
            // One who may not read internal notes cannot be writing one.
            return self.error(
                ErrorCode::Forbidden,
                name,
                "may not type internal notes here",
            );
        }
        if !typing {
            // The stop goes to those who were told of the start.
            if let Some(shown) = sub.typing.take() {
                hub.typing(room, &self.conn, false, shown, &sub.audience);
            }
            return;
        }
        if let Some(shown) = sub.typing.filter(|v| *v != visibility) {
            // Switching between a public message and an internal note: the
            // old indicator stops first, whatever the rate limit says, so a
            // customer never watches an agent "typing" a note.
            sub.typing = None;
            hub.typing(room, &self.conn, false, shown, &sub.audience);
        }
        let interval = Duration::from_millis(TYPING_INTERVAL_MS);
        if sub
            .last_typing_at
            .is_some_and(|at| now.duration_since(at) < interval)
        {
            return self.error(
                ErrorCode::RateLimited,
                name,
                "typing indicators are rate limited",
            );
        }
        sub.last_typing_at = Some(now);
        sub.typing = Some(visibility);
        hub.typing(room, &self.conn, true, visibility, &sub.audience);
    }

    async fn read(&mut self, name: &str, position: u64) {
        if !self.reads.take(Instant::now()) {
            return self.error(
                ErrorCode::RateLimited,
                name,
                "read receipts are rate limited",
            );
        }
        let Some(room @ RoomId::Ticket(ticket)) = self.joined_ticket_room(name) else {
            return self.error(
                ErrorCode::BadRequest,
                name,
                "not subscribed to this ticket room",
            );
        };
        // Whether the position is one of this room's, visible to the
        // reader and after its last, is the write side's check: a position
        // beyond the log gets the same answer as any other refused one.
        match self
            .feed
            .receipts()
            .record(&self.conn.principal, ticket, position)
            .await
        {
            Ok(visibility) => {
                if let Some(sub) = self.rooms.get(&room) {
                    let hub = self.feed.hub();
                    hub.read(
                        room,
                        &self.conn.principal,
                        position,
                        visibility,
                        &sub.audience,
                    );
                }
            }
            Err(ReceiptError::Forbidden(_)) => {
                self.error(ErrorCode::Forbidden, name, "may not record read receipts")
            }
            Err(ReceiptError::Invalid(m)) => self.error(ErrorCode::BadRequest, name, &m),
            Err(ReceiptError::Unavailable(_)) => {
                self.error(ErrorCode::Unavailable, name, "could not record; try again")
            }
        }
    }
}
