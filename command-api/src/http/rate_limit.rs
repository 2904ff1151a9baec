//! Per-user rate limits on governor's keyed GCRA limiter: a user over
//! their rate gets 429 with `Retry-After`, other users are unaffected, and
//! the key map stays bounded.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::Quota;
use uuid::Uuid;

use super::error::ApiError;
use super::limits::{RATE_LIMIT_SWEEP_EVERY_CHECKS, RATE_LIMIT_USERS_MAX};

/// Rate and burst of one key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests replenished per second.
    pub per_second: f64,
    /// Requests allowed at once after idling.
    pub burst: f64,
}

impl RateLimit {
    /// The same limit as a governor quota: one request back every
    /// `1 / per_second` seconds (at least a nanosecond), `burst` at once.
    fn quota(self) -> Quota {
        let period = Duration::from_secs_f64(1.0 / self.per_second.max(f64::MIN_POSITIVE))
            .max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(self.burst.clamp(1.0, f64::from(u32::MAX)) as u32)
            .unwrap_or(NonZeroU32::MIN);
        Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst)
    }
}

type Keyed<C> =
    governor::RateLimiter<Uuid, DashMapStateStore<Uuid>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Rate limits keyed by user id.
pub struct RateLimiter<C: Clock + Clone = DefaultClock> {
    quota: Quota,
    clock: C,
    users_max: usize,
    checks: AtomicU64,
    /// Replaced whole when every tracked key is still in use at the cap.
    keyed: RwLock<Keyed<C>>,
}

impl RateLimiter {
    /// A limiter with `limit` per key, tracking at most about
    /// [`RATE_LIMIT_USERS_MAX`] keys.
    pub fn new(limit: RateLimit) -> Self {
        Self::with_clock(limit, RATE_LIMIT_USERS_MAX, DefaultClock::default())
    }
}

impl<C: Clock + Clone> std::fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("quota", &self.quota)
            .field("users_max", &self.users_max)
            .field("tracked", &self.tracked())
            .finish()
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    /// A limiter tracking at most `users_max` keys (plus the checks between
    /// two sweeps), timed by `clock` (tests pass a fake one).
    pub fn with_clock(limit: RateLimit, users_max: usize, clock: C) -> Self {
        let quota = limit.quota();
        RateLimiter {
            quota,
            keyed: RwLock::new(Keyed::dashmap_with_clock(quota, clock.clone())),
            clock,
            users_max: users_max.max(1),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one request from `key`'s allowance, or says how long to wait (429).
    pub fn check(&self, key: Uuid) -> Result<(), ApiError> {
        let n = self.checks.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(RATE_LIMIT_SWEEP_EVERY_CHECKS) {
            self.sweep();
        }
        let keyed = self.keyed.read().unwrap_or_else(|p| p.into_inner());
        keyed.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::rate_limited(wait.as_secs_f64().ceil().max(1.0) as u64)
        })
    }

    /// At the cap, forgets the keys whose allowance is full again
    /// (forgetting them changes nothing); if that is not enough, starts
    /// afresh so memory stays bounded (those users get their burst back).
    fn sweep(&self) {
        let full = {
            let keyed = self.keyed.read().unwrap_or_else(|p| p.into_inner());
            if keyed.len() < self.users_max {
                return;
            }
            keyed.retain_recent();
            keyed.shrink_to_fit();
            keyed.len() >= self.users_max
        };
        if full {
            *self.keyed.write().unwrap_or_else(|p| p.into_inner()) =
                Keyed::dashmap_with_clock(self.quota, self.clock.clone());
        }
    }

    /// Keys currently tracked.
    pub fn tracked(&self) -> usize {
        self.keyed.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn burst_then_refill_per_user() {
        let clock = FakeRelativeClock::default();
        let limit = RateLimit {
            per_second: 2.0,
            burst: 3.0,
        };
        let limiter = RateLimiter::with_clock(limit, RATE_LIMIT_USERS_MAX, clock.clone());
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        for _ in 0..3 {
            limiter.check(a).expect("within burst");
        }
        let e = limiter.check(a).expect_err("over burst");
        assert_eq!(e.status.as_u16(), 429);
        assert_eq!(e.retry_after_secs, Some(1));
        limiter.check(b).expect("other users unaffected");
        clock.advance(Duration::from_millis(500));
        limiter.check(a).expect("refilled one");
        assert!(limiter.check(a).is_err());
    }

    #[test]
    fn retry_after_rounds_the_wait_up() {
        let clock = FakeRelativeClock::default();
        let limit = RateLimit {
            per_second: 0.25,
            burst: 1.0,
        };
        let limiter = RateLimiter::with_clock(limit, RATE_LIMIT_USERS_MAX, clock.clone());
        let a = Uuid::now_v7();
        limiter.check(a).expect("burst of one");
        assert_eq!(
            limiter.check(a).expect_err("over").retry_after_secs,
            Some(4)
        );
        clock.advance(Duration::from_millis(2_500));
        assert_eq!(
            limiter.check(a).expect_err("over").retry_after_secs,
            Some(2)
        );
    }

    #[test]
    fn map_stays_bounded() {
        let users_max = 10;
        let limit = RateLimit {
            per_second: 1.0,
            burst: 1.0,
        };
        let limiter = RateLimiter::with_clock(limit, users_max, FakeRelativeClock::default());
        for _ in 0..10_000 {
            limiter.check(Uuid::now_v7()).expect("fresh user");
        }
        let bound = users_max + usize::try_from(RATE_LIMIT_SWEEP_EVERY_CHECKS).expect("small");
        assert!(limiter.tracked() <= bound, "{}", limiter.tracked());
    }

    #[test]
    fn a_sweep_keeps_the_users_still_limited() {
        let clock = FakeRelativeClock::default();
        let limit = RateLimit {
            per_second: 1.0,
            burst: 1.0,
        };
        let limiter = RateLimiter::with_clock(limit, 2, clock.clone());
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        limiter.check(a).expect("a's one");
        clock.advance(Duration::from_secs(5));
        limiter.check(b).expect("b's one");
        // a has refilled and is forgotten; b is still limited.
        limiter.sweep();
        assert_eq!(limiter.tracked(), 1);
        assert!(limiter.check(b).is_err());
    }
}
