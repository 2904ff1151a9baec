//! The "hot" tickets: the latest ones, which comments target and WebSocket
//! clients subscribe to. Bounded, so the share of events that reach a
//! subscriber stays the same over the whole run while tickets keep being
//! created.

use std::collections::VecDeque;
use std::sync::Mutex;

use rand::Rng;
use uuid::Uuid;

/// The latest tickets, overall and per reporting customer.
pub struct TicketPool {
    inner: Mutex<Inner>,
    hot_max: usize,
    per_customer_max: usize,
}

struct Inner {
    hot: VecDeque<Uuid>,
    by_customer: Vec<VecDeque<Uuid>>,
}

impl TicketPool {
    /// An empty pool keeping the latest `hot_max` tickets.
    pub fn new(customers: usize, hot_max: usize) -> Self {
        TicketPool {
            inner: Mutex::new(Inner {
                hot: VecDeque::new(),
                by_customer: vec![VecDeque::new(); customers],
            }),
            hot_max: hot_max.max(1),
            per_customer_max: (hot_max / customers.max(1)).max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new ticket reported by customer `customer`.
    pub fn add(&self, id: Uuid, customer: usize) {
        let mut inner = self.lock();
        inner.hot.push_back(id);
        if inner.hot.len() > self.hot_max {
            inner.hot.pop_front();
        }
        if let Some(own) = inner.by_customer.get_mut(customer) {
            own.push_back(id);
            if own.len() > self.per_customer_max {
                own.pop_front();
            }
        }
    }

    /// A random hot ticket.
    pub fn random(&self, rng: &mut impl Rng) -> Option<Uuid> {
        let inner = self.lock();
        if inner.hot.is_empty() {
            return None;
        }
        inner.hot.get(rng.random_range(0..inner.hot.len())).copied()
    }

    /// A random recent ticket reported by `customer`.
    pub fn random_of(&self, customer: usize, rng: &mut impl Rng) -> Option<Uuid> {
        let inner = self.lock();
        let own = inner.by_customer.get(customer)?;
        if own.is_empty() {
            return None;
        }
        own.get(rng.random_range(0..own.len())).copied()
    }
}
