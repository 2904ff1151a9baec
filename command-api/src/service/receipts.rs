//! Read receipts from the live feed: checked at once, stored coalesced.
//!
//! A client marks a room read as messages arrive, so receipts come in
//! bursts. Each one is checked when it arrives (its answer and the room's
//! `read` frame go out at once), but at most one per reader and ticket is
//! stored per interval: a receipt arriving inside the interval waits in
//! memory, and the latest one waiting is stored when the interval ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use event_store::{Principal, Tenant, TicketId, UserId, Visibility};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use uuid::Uuid;

use super::error::ServiceError;
use super::execute::CommandService;
use crate::domain::decide::read::NOT_READABLE;
use crate::domain::{Action, DomainError, RecordRead};

/// Default shortest time between two stored receipts of one reader for
/// one ticket.
pub const RECEIPT_STORE_INTERVAL_MS: u64 = 5_000;

/// Most (reader, ticket) pairs remembered at once; beyond it, pairs whose
/// interval is over are forgotten, and if none is, a new pair's receipt is
/// refused as unavailable (the client sends it again later).
pub const RECEIPT_SLOTS_MAX: usize = 10_000;

/// How long the desk's shutdown may take to store what is waiting.
pub const RECEIPT_FLUSH_ON_STOP_SECS: u64 = 5;

type Key = (Tenant, UserId, TicketId);

/// One reader's receipts for one ticket.
struct Slot {
    /// Who read (the receipt is stored as them).
    principal: Principal,
    /// When a receipt was last stored (or its store began).
    stored_at: Instant,
    /// The latest position accepted, stored or waiting.
    last: u64,
    /// Whether `last` waits to be stored when the interval ends.
    waiting: bool,
}

/// Checks and stores read receipts, coalesced per reader and ticket.
pub struct ReceiptDesk {
    service: Arc<CommandService>,
    interval: Duration,
    slots: Mutex<HashMap<Key, Slot>>,
    /// Woken when a receipt starts waiting, so the flusher re-plans.
    wake: Notify,
    stop: watch::Sender<bool>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

impl ReceiptDesk {
    /// A desk storing through `service` at most one receipt per reader and
    /// ticket per `interval`; starts its flusher task.
    pub fn start(service: Arc<CommandService>, interval: Duration) -> Arc<ReceiptDesk> {
        let desk = Arc::new(ReceiptDesk {
            service,
            interval,
            slots: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            stop: watch::channel(false).0,
            flusher: Mutex::new(None),
        });
        let task = tokio::spawn(Arc::clone(&desk).flush_loop(desk.stop.subscribe()));
        *lock(&desk.flusher) = Some(task);
        desk
    }

    /// Checks that `principal` may say it read `ticket` up to `position`
    /// and stores the receipt now, or when the interval since the last
    /// stored one ends. Answers the visibility of the event read.
    pub async fn record(
        &self,
        principal: &Principal,
        ticket: TicketId,
        position: u64,
    ) -> Result<Visibility, ServiceError> {
        let key = (principal.tenant.clone(), principal.user_id, ticket);
        let accepted = lock(&self.slots).get(&key).map_or(0, |s| s.last);
        let c = RecordRead {
            ticket_id: ticket,
            position,
        };
        let visibility = self.service.check_read(principal, &c, accepted).await?;
        let now = Instant::now();
        let store_now = {
            let mut slots = lock(&self.slots);
            match slots.get_mut(&key) {
                // A later receipt of the same reader was accepted meanwhile.
                Some(slot) if position <= slot.last => {
                    return Err(DomainError::invalid("position", NOT_READABLE).into())
                }
                Some(slot) if now >= slot.stored_at + self.interval => {
                    slot.last = position;
                    slot.stored_at = now;
                    slot.waiting = false;
                    true
                }
                Some(slot) => {
                    slot.last = position;
                    // The flusher re-plans only when a pair starts waiting;
                    // a later receipt of a waiting pair keeps its due time.
                    if !slot.waiting {
                        slot.waiting = true;
                        self.wake.notify_one();
                    }
                    false
                }
                None => {
                    if slots.len() >= RECEIPT_SLOTS_MAX {
                        forget_idle(&mut slots, now, self.interval);
                    }
                    if slots.len() >= RECEIPT_SLOTS_MAX {
                        return Err(ServiceError::Unavailable(
                            "too many read receipts in flight".into(),
                        ));
                    }
                    slots.insert(
                        key.clone(),
                        Slot {
                            principal: principal.clone(),
                            stored_at: now,
                            last: position,
                            waiting: false,
                        },
                    );
                    true
                }
            }
        };
        if store_now {
            if let Err(e) = self.store(principal, ticket, position).await {
                // Forget what was not stored, unless a later one waits.
                let mut slots = lock(&self.slots);
                if slots.get(&key).is_some_and(|s| !s.waiting) {
                    slots.remove(&key);
                }
                return Err(e);
            }
        }
        Ok(visibility)
    }

    /// Stores every waiting receipt and stops the flusher. Call before the
    /// store closes.
    pub async fn stop(&self) {
        self.stop.send_replace(true);
        let task = lock(&self.flusher).take();
        if let Some(task) = task {
            let wait = Duration::from_secs(RECEIPT_FLUSH_ON_STOP_SECS);
            if tokio::time::timeout(wait, task).await.is_err() {
                tracing::warn!("read receipts: stopping timed out; waiting ones are lost");
            }
        }
    }

    async fn store(
        &self,
        principal: &Principal,
        ticket: TicketId,
        position: u64,
    ) -> Result<(), ServiceError> {
        let action = Action::RecordRead(RecordRead {
            ticket_id: ticket,
            position,
        });
        self.service
            .execute(principal, action, Uuid::now_v7(), None)
            .await
            .map(|_| ())
    }

    /// Stores waiting receipts as their intervals end, until stopped; then
    /// stores every one still waiting.
    async fn flush_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let next = lock(&self.slots)
                .values()
                .filter(|s| s.waiting)
                .map(|s| s.stored_at + self.interval)
                .min();
            let due = async {
                match next {
                    Some(at) => sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let stopping = tokio::select! {
                _ = stop.wait_for(|s| *s) => true,
                () = self.wake.notified() => continue,
                () = due => false,
            };
            self.flush(stopping).await;
            if stopping {
                return;
            }
        }
    }

    /// Stores the waiting receipts whose interval is over (all of them
    /// when `everything`), then forgets the pairs with nothing to do.
    async fn flush(&self, everything: bool) {
        let now = Instant::now();
        let due: Vec<(Principal, TicketId, u64)> = {
            let mut slots = lock(&self.slots);
            let due = slots
                .iter_mut()
                .filter(|(_, s)| s.waiting && (everything || now >= s.stored_at + self.interval))
                .map(|((_, _, ticket), s)| {
                    s.waiting = false;
                    s.stored_at = now;
                    (s.principal.clone(), *ticket, s.last)
                })
                .collect();
            forget_idle(&mut slots, now, self.interval);
            due
        };
        for (principal, ticket, position) in due {
            if let Err(error) = self.store(&principal, ticket, position).await {
                tracing::warn!(%ticket, position, %error, "read receipt not stored");
                // Try again when the next interval ends, unless stopping.
                let key = (principal.tenant.clone(), principal.user_id, ticket);
                if let Some(slot) = lock(&self.slots).get_mut(&key) {
                    slot.waiting = !everything;
                }
            }
        }
    }
}

/// Forgets the pairs with nothing waiting whose interval is over: their
/// next receipt may be stored at once, and their last one is in the log.
fn forget_idle(slots: &mut HashMap<Key, Slot>, now: Instant, interval: Duration) {
    slots.retain(|_, s| s.waiting || now < s.stored_at + interval);
}

/// Every write under these locks is a single insert, update or removal, so
/// a lock poisoned by a panic elsewhere still holds consistent entries.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
