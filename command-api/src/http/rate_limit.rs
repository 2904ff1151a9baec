//! Per-user token buckets in a bounded map: a user over their rate gets 429
//! with `Retry-After`, other users are unaffected.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use uuid::Uuid;

use super::error::ApiError;
use super::limits::RATE_LIMIT_USERS_MAX;

/// Rate and burst of one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size: requests allowed at once after idling.
    pub burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

/// Token buckets keyed by user id.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    users_max: usize,
    buckets: Mutex<HashMap<Uuid, Bucket>>,
}

impl RateLimiter {
    /// A limiter with `limit` per key, tracking at most [`RATE_LIMIT_USERS_MAX`] keys.
    pub fn new(limit: RateLimit) -> Self {
        Self::with_capacity(limit, RATE_LIMIT_USERS_MAX)
    }

    /// A limiter tracking at most `users_max` keys.
    pub fn with_capacity(limit: RateLimit, users_max: usize) -> Self {
        RateLimiter {
            limit: RateLimit {
                per_second: limit.per_second.max(f64::MIN_POSITIVE),
                burst: limit.burst.max(1.0),
            },
            users_max: users_max.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how long to wait (429).
    pub fn check(&self, key: Uuid) -> Result<(), ApiError> {
        self.check_at(key, Instant::now())
    }

    /// [`Self::check`] at a given instant (tests drive the clock).
    pub fn check_at(&self, key: Uuid, now: Instant) -> Result<(), ApiError> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(&key) && buckets.len() >= self.users_max {
            self.evict(&mut buckets, now);
        }
        let limit = self.limit;
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: limit.burst,
            refilled_at: now,
        });
        let elapsed = now
            .saturating_duration_since(bucket.refilled_at)
            .as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.per_second).min(limit.burst);
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait_secs = ((1.0 - bucket.tokens) / limit.per_second).ceil();
            Err(ApiError::rate_limited((wait_secs as u64).max(1)))
        }
    }

    /// Drops buckets that have refilled completely (forgetting them changes
    /// nothing); if none has, drops an arbitrary one so the map stays bounded.
    fn evict(&self, buckets: &mut HashMap<Uuid, Bucket>, now: Instant) {
        let limit = self.limit;
        buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.refilled_at).as_secs_f64();
            b.tokens + elapsed * limit.per_second < limit.burst
        });
        if buckets.len() >= self.users_max {
            if let Some(key) = buckets.keys().next().copied() {
                buckets.remove(&key);
            }
        }
    }

    /// Keys currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill_per_user() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 3.0,
        });
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check_at(a, t0).expect("within burst");
        }
        let e = limiter.check_at(a, t0).expect_err("over burst");
        assert_eq!(e.status.as_u16(), 429);
        assert_eq!(e.retry_after_secs, Some(1));
        limiter.check_at(b, t0).expect("other users unaffected");
        limiter
            .check_at(a, t0 + Duration::from_millis(500))
            .expect("refilled one");
        assert!(limiter
            .check_at(a, t0 + Duration::from_millis(500))
            .is_err());
    }

    #[test]
    fn map_stays_bounded() {
        let limiter = RateLimiter::with_capacity(
            RateLimit {
                per_second: 1.0,
                burst: 1.0,
            },
            10,
        );
        let t0 = Instant::now();
        for _ in 0..100 {
            limiter.check_at(Uuid::now_v7(), t0).expect("fresh user");
        }
        assert!(limiter.tracked() <= 10);
    }
}
