//! Login throttling that stops guessing without locking out the owner.
//!
//! Two counters, both keyed by the client's address (the TCP peer, never a
//! forwarded header): per address, [`LOGIN_FAILURES_PER_ADDRESS_MAX`]
//! failures in a [`LOGIN_FAILURE_WINDOW_SECS`] window refuse that address
//! until the window ends (password spraying: many names, one client); per
//! (account, address) pair, failures beyond [`LOGIN_BACKOFF_FREE_FAILURES`]
//! wait exponentially longer (guessing one account). Nothing is keyed by the
//! account alone, so guesses from one address never refuse the owner at
//! another. An attempt counts as a failure from the moment it starts and is
//! taken back on success, so a burst of concurrent guesses cannot slip past
//! the counters while their hashes run. Pure: the caller passes the time.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins one address may make in a window before it is refused.
pub const LOGIN_FAILURES_PER_ADDRESS_MAX: u32 = 20;
/// Length of an address's failure window, from its first failure.
pub const LOGIN_FAILURE_WINDOW_SECS: u64 = 15 * 60;
/// Failures of one account from one address before backoff starts.
pub const LOGIN_BACKOFF_FREE_FAILURES: u32 = 3;
/// The first backoff; each further failure doubles it.
pub const LOGIN_BACKOFF_BASE_MILLIS: u64 = 1_000;
/// The longest backoff of an (account, address) pair.
pub const LOGIN_BACKOFF_MAX_SECS: u64 = 5 * 60;
/// Addresses tracked at once; past it the stalest is forgotten.
pub const LOGIN_ADDRESSES_TRACKED_MAX: usize = 100_000;
/// (account, address) pairs tracked at once; past it the stalest is forgotten.
pub const LOGIN_PAIRS_TRACKED_MAX: usize = 100_000;
/// IPv6 clients are counted per /64: one host usually holds a whole /64.
pub const LOGIN_IPV6_PREFIX_BITS: u32 = 64;

/// The address a client is counted under: IPv4 as is (also when mapped
/// into IPv6), IPv6 by its /64 prefix.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mask = u128::MAX << (128 - LOGIN_IPV6_PREFIX_BITS);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct AddressCount {
    window_start: Instant,
    failures: u32,
    last_seen: Instant,
}

#[derive(Debug, Clone, Copy)]
struct PairCount {
    failures: u32,
    last_failure: Instant,
}

#[derive(Default)]
struct Counts {
    addresses: HashMap<IpAddr, AddressCount>,
    pairs: HashMap<(String, IpAddr), PairCount>,
}

/// A login attempt admitted by [`LoginThrottle::begin`]: report how it
/// ended with [`LoginThrottle::succeeded`] or [`LoginThrottle::abandoned`];
/// dropped without either, it stays a failure.
#[derive(Debug)]
pub struct Attempt {
    address: IpAddr,
    account: String,
}

/// The throttle's counters.
pub struct LoginThrottle {
    counts: Mutex<Counts>,
    window: Duration,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle {
            counts: Mutex::new(Counts::default()),
            window: Duration::from_secs(LOGIN_FAILURE_WINDOW_SECS),
        }
    }
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts = self.lock();
        f.debug_struct("LoginThrottle")
            .field("addresses", &counts.addresses.len())
            .field("pairs", &counts.pairs.len())
            .finish()
    }
}

/// The wait after `failures` failures of one pair (zero while free).
pub fn backoff(failures: u32) -> Duration {
    if failures < LOGIN_BACKOFF_FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - LOGIN_BACKOFF_FREE_FAILURES).min(32);
    let millis = LOGIN_BACKOFF_BASE_MILLIS.saturating_mul(1u64 << doublings);
    Duration::from_millis(millis).min(Duration::from_secs(LOGIN_BACKOFF_MAX_SECS))
}

/// Whole seconds for `Retry-After`, at least one.
fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// Forgets the entry of `map` with the smallest `age` key when `map` is at
/// `max` and `key` is new.
fn make_room<K: std::hash::Hash + Eq + Clone, V>(
    map: &mut HashMap<K, V>,
    key: &K,
    max: usize,
    age: impl Fn(&V) -> Instant,
) {
    if map.len() < max || map.contains_key(key) {
        return;
    }
    if let Some(oldest) = map
        .iter()
        .min_by_key(|(_, v)| age(v))
        .map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
}

impl LoginThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits an attempt of `account` (tenant/name) from `ip` at `now`,
    /// counting it as a failure until told otherwise, or says how many
    /// seconds the client must wait (429).
    pub fn begin(&self, ip: IpAddr, account: &str, now: Instant) -> Result<Attempt, u64> {
        let address = address_key(ip);
        let window = self.window;
        let mut counts = self.lock();
        let pair_key = (account.to_string(), address);
        let mut addr = match counts.addresses.get(&address) {
            Some(c) if now.saturating_duration_since(c.window_start) < window => *c,
            _ => AddressCount {
                window_start: now,
                failures: 0,
                last_seen: now,
            },
        };
        if addr.failures >= LOGIN_FAILURES_PER_ADDRESS_MAX {
            return Err(retry_secs(
                (addr.window_start + window).saturating_duration_since(now),
            ));
        }
        let mut pair = match counts.pairs.get(&pair_key) {
            Some(p) if now.saturating_duration_since(p.last_failure) < window => *p,
            _ => PairCount {
                failures: 0,
                last_failure: now,
            },
        };
        let wait = (pair.last_failure + backoff(pair.failures)).saturating_duration_since(now);
        if !wait.is_zero() {
            return Err(retry_secs(wait));
        }
        addr.failures += 1;
        addr.last_seen = now;
        pair.failures += 1;
        pair.last_failure = now;
        make_room(
            &mut counts.addresses,
            &address,
            LOGIN_ADDRESSES_TRACKED_MAX,
            |c| c.last_seen,
        );
        counts.addresses.insert(address, addr);
        make_room(&mut counts.pairs, &pair_key, LOGIN_PAIRS_TRACKED_MAX, |p| {
            p.last_failure
        });
        counts.pairs.insert(pair_key, pair);
        Ok(Attempt {
            address,
            account: account.to_string(),
        })
    }

    /// The password was right: the attempt was no failure, and the pair
    /// starts afresh.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut counts = self.lock();
        counts.pairs.remove(&(attempt.account, attempt.address));
        Self::take_back(&mut counts, attempt.address);
    }

    /// The attempt never reached a password check (server busy): it was
    /// not a failure of the address. The pair keeps it: the next try of
    /// that account from there waits as if it had failed, which is harmless
    /// while free and fair beyond.
    pub fn abandoned(&self, attempt: Attempt) {
        Self::take_back(&mut self.lock(), attempt.address);
    }

    fn take_back(counts: &mut Counts, address: IpAddr) {
        if let Some(c) = counts.addresses.get_mut(&address) {
            c.failures = c.failures.saturating_sub(1);
        }
    }

    /// Addresses and pairs tracked now.
    pub fn tracked(&self) -> (usize, usize) {
        let counts = self.lock();
        (counts.addresses.len(), counts.pairs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn twenty_failures_refuse_the_address_until_its_window_ends() {
        let t = LoginThrottle::default();
        let start = Instant::now();
        for i in 0..LOGIN_FAILURES_PER_ADDRESS_MAX {
            t.begin(ip(1), &format!("demo/user{i}"), start)
                .expect("within the address's allowance");
        }
        let wait = t.begin(ip(1), "demo/another", start).expect_err("sprayed");
        assert_eq!(wait, LOGIN_FAILURE_WINDOW_SECS);
        let later = start + Duration::from_secs(600);
        assert_eq!(
            t.begin(ip(1), "demo/another", later).expect_err("still"),
            LOGIN_FAILURE_WINDOW_SECS - 600
        );
        // Another address is untouched, and the owner's account too.
        t.begin(ip(2), "demo/user0", start).expect("other address");
        let after = start + Duration::from_secs(LOGIN_FAILURE_WINDOW_SECS);
        t.begin(ip(1), "demo/another", after).expect("a new window");
    }

    #[test]
    fn one_account_from_one_address_backs_off_exponentially() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..LOGIN_BACKOFF_FREE_FAILURES {
            t.begin(ip(1), "demo/alice", now).expect("free tries");
        }
        assert_eq!(t.begin(ip(1), "demo/alice", now).expect_err("backoff"), 1);
        let now = now + Duration::from_secs(1);
        t.begin(ip(1), "demo/alice", now).expect("after the wait");
        assert_eq!(t.begin(ip(1), "demo/alice", now).expect_err("doubled"), 2);
        // The owner, elsewhere, is never refused for it.
        let owner = t.begin(ip(9), "demo/alice", now).expect("owner");
        t.succeeded(owner);
        assert_eq!(
            backoff(LOGIN_BACKOFF_FREE_FAILURES + 2),
            Duration::from_secs(4)
        );
        assert_eq!(
            backoff(u32::MAX),
            Duration::from_secs(LOGIN_BACKOFF_MAX_SECS)
        );
    }

    #[test]
    fn success_takes_the_attempt_back_and_resets_the_pair() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..LOGIN_BACKOFF_FREE_FAILURES - 1 {
            t.begin(ip(1), "demo/alice", now).expect("typo");
        }
        let ok = t.begin(ip(1), "demo/alice", now).expect("right password");
        t.succeeded(ok);
        for _ in 0..LOGIN_BACKOFF_FREE_FAILURES {
            t.begin(ip(1), "demo/alice", now).expect("fresh pair");
        }
        // Successes never fill the address's allowance.
        let t = LoginThrottle::default();
        for _ in 0..3 * LOGIN_FAILURES_PER_ADDRESS_MAX {
            let a = t.begin(ip(1), "demo/bob", now).expect("logins");
            t.succeeded(a);
        }
        let busy = t.begin(ip(1), "demo/carol", now).expect("admitted");
        t.abandoned(busy);
    }

    #[test]
    fn concurrent_attempts_count_before_they_finish() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let pending: Vec<Attempt> = (0..LOGIN_FAILURES_PER_ADDRESS_MAX)
            .map(|i| {
                t.begin(ip(1), &format!("demo/u{i}"), now)
                    .expect("admitted")
            })
            .collect();
        assert!(t.begin(ip(1), "demo/u99", now).is_err());
        drop(pending);
    }

    #[test]
    fn maps_stay_bounded() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..(LOGIN_ADDRESSES_TRACKED_MAX as u32 + 10) {
            let v6 = IpAddr::V6(Ipv6Addr::from(u128::from(i) << 64));
            let _ = t.begin(v6, "demo/x", now);
        }
        let (addresses, pairs) = t.tracked();
        assert!(addresses <= LOGIN_ADDRESSES_TRACKED_MAX, "{addresses}");
        assert!(pairs <= LOGIN_PAIRS_TRACKED_MAX, "{pairs}");
    }

    #[test]
    fn ipv6_counts_per_prefix_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        assert_eq!(address_key(a), address_key(b));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(address_key(mapped), ip(1));
    }
}
