//! Sign-in throttling that a burst of simultaneous guesses cannot slip past.
//!
//! Every attempt is *counted before its password is checked*: [`LoginThrottle::begin`]
//! reserves a place under the map entry's lock, and only a reserved attempt may run
//! argon2. Forty wrong passwords and the right one sent at the same instant therefore
//! get at most `max_failures` verifications between them, not forty-one; the rest are
//! told `429` without the password ever being looked at.
//!
//! Three keys, each answering a different attack:
//! * **account + address**: consecutive failures; past `max_failures` each further
//!   failure locks this pair for `backoff_base · 2ⁿ`, capped at `backoff_max`. Keying
//!   by the pair is what stops an attacker who knows a nurse's email from locking her
//!   out: the lock holds the attacker's address, not her workstation's, and even the
//!   attacker's own lock never lasts longer than the cap.
//! * **address** (across accounts): failures drain from a leaky bucket of
//!   `address_max_failures` per `window`, so password spraying (a couple of guesses at
//!   each of many accounts) is throttled too.
//! * **account** (across addresses): the same bucket per email with
//!   `account_max_failures`, so guesses spread over many addresses still slow down.
//!
//! Why not `governor` here (it meters the per-user limits in [`crate::limits`]): GCRA
//! counts an event when it happens and can neither look without counting nor give a
//! cell back, so an attempt could only be counted before the password check if every
//! successful sign-in cost a cell too, and a hospital whose nurses share one NAT
//! address would lock itself out at shift change. Here a reservation that turns out to
//! be the right password is simply released. The state is in memory: a restart
//! forgets it, which errs towards letting people in.
//!
//! Pure logic over an explicit `now`, so it is tested without sleeping.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Attempts refused because other attempts for the same key are still being checked
/// are told to come back after this long: the check takes milliseconds.
pub const IN_FLIGHT_RETRY: Duration = Duration::from_secs(1);
/// How many attempts pass between two sweeps of forgotten entries.
const SWEEP_EVERY: u64 = 1024;
/// The longest exponent the backoff doubles to (2³⁰ times the base is already years).
const MAX_DOUBLINGS: u32 = 30;

#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Failures in a row per account + address before the backoff starts.
    pub max_failures: u32,
    /// How long failures are remembered, and what the buckets drain over.
    pub window: Duration,
    /// First lock of an account + address past `max_failures`; doubles per failure.
    pub backoff_base: Duration,
    /// Longest lock of an account + address.
    pub backoff_max: Duration,
    /// Failures per account (all addresses) per `window`.
    pub account_max_failures: u32,
    /// Failures per address (all accounts) per `window`.
    pub address_max_failures: u32,
}

/// Which limit refused an attempt; the message tells the person which one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// This account from this address: the backoff.
    AccountFromAddress,
    /// This account from everywhere.
    Account,
    /// This address, whatever the account.
    Address,
}

impl Limit {
    pub fn message(self) -> &'static str {
        match self {
            Limit::AccountFromAddress => {
                "too many failed sign-ins for this account from this address; wait and try again"
            }
            Limit::Account => "too many failed sign-ins for this account; wait and try again",
            Limit::Address => "too many failed sign-ins from this address; wait and try again",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub limit: Limit,
    pub retry_after: Duration,
}

impl Refused {
    /// `Retry-After` in whole seconds, rounded up and at least one.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }
}

/// Consecutive failures of one account from one address.
#[derive(Debug, Clone)]
struct Pair {
    failures: u32,
    in_flight: u32,
    last_failure: Option<Instant>,
    locked_until: Option<Instant>,
}

/// A leaky bucket of failures: `level` drains at `max / window`.
#[derive(Debug, Clone)]
struct Bucket {
    level: f64,
    in_flight: u32,
    at: Instant,
}

pub struct LoginThrottle {
    config: ThrottleConfig,
    pairs: DashMap<(String, IpAddr), Pair>,
    accounts: DashMap<String, Bucket>,
    addresses: DashMap<IpAddr, Bucket>,
    attempts: AtomicU64,
}

/// A reserved attempt. Settle it with [`Attempt::failed`] or [`Attempt::succeeded`]
/// once the password is checked; dropping it unsettled (the database failed) releases
/// the reservation without counting anything.
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    email: String,
    address: IpAddr,
    settled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Failed,
    Succeeded,
    Abandoned,
}

impl Attempt<'_> {
    /// Wrong password or unknown email: counts against all three keys.
    pub fn failed(mut self, now: Instant) {
        self.settled = true;
        self.throttle
            .settle(&self.email, self.address, Outcome::Failed, now);
    }

    /// The right password: this account + address starts afresh.
    pub fn succeeded(mut self, now: Instant) {
        self.settled = true;
        self.throttle
            .settle(&self.email, self.address, Outcome::Succeeded, now);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.throttle.settle(
                &self.email,
                self.address,
                Outcome::Abandoned,
                Instant::now(),
            );
        }
    }
}

impl LoginThrottle {
    pub fn new(config: ThrottleConfig) -> LoginThrottle {
        let config = ThrottleConfig {
            max_failures: config.max_failures.max(1),
            account_max_failures: config.account_max_failures.max(1),
            address_max_failures: config.address_max_failures.max(1),
            window: config.window.max(Duration::from_secs(1)),
            ..config
        };
        LoginThrottle {
            config,
            pairs: DashMap::new(),
            accounts: DashMap::new(),
            addresses: DashMap::new(),
            attempts: AtomicU64::new(0),
        }
    }

    /// Reserves an attempt for `email` from `address`, or says which limit refuses it
    /// and for how long. `email` must already be normalised (trimmed, lower case).
    pub fn begin(
        &self,
        email: &str,
        address: IpAddr,
        now: Instant,
    ) -> Result<Attempt<'_>, Refused> {
        if self.attempts.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep(now);
        }
        let address = throttle_key(address);
        self.reserve_pair(email, address, now)?;
        if let Err(refused) = reserve_bucket(
            &self.accounts,
            email.to_string(),
            self.config.account_max_failures,
            self.config.window,
            now,
            Limit::Account,
        ) {
            self.release_pair(email, address);
            return Err(refused);
        }
        if let Err(refused) = reserve_bucket(
            &self.addresses,
            address,
            self.config.address_max_failures,
            self.config.window,
            now,
            Limit::Address,
        ) {
            self.release_pair(email, address);
            settle_bucket(&self.accounts, &email.to_string(), Outcome::Abandoned);
            return Err(refused);
        }
        Ok(Attempt {
            throttle: self,
            email: email.to_string(),
            address,
            settled: false,
        })
    }

    /// An admin's unlock: forgets every failure of this account, from every address.
    /// Returns whether there was anything to forget.
    pub fn unlock(&self, email: &str) -> bool {
        let had_account = self.accounts.remove(email).is_some();
        let before = self.pairs.len();
        self.pairs.retain(|(owner, _), _| owner != email);
        had_account || self.pairs.len() != before
    }

    fn reserve_pair(&self, email: &str, address: IpAddr, now: Instant) -> Result<(), Refused> {
        let config = &self.config;
        let mut pair = self
            .pairs
            .entry((email.to_string(), address))
            .or_insert_with(|| Pair {
                failures: 0,
                in_flight: 0,
                last_failure: None,
                locked_until: None,
            });
        let refused = |retry_after| Refused {
            limit: Limit::AccountFromAddress,
            retry_after,
        };
        if let Some(until) = pair.locked_until.filter(|until| *until > now) {
            return Err(refused(until - now));
        }
        // A quiet window forgets the failures (the backoff starts over).
        if pair
            .last_failure
            .is_some_and(|at| now.saturating_duration_since(at) >= config.window)
        {
            pair.failures = 0;
            pair.last_failure = None;
        }
        // Below the limit, as many attempts as are left may be checked at once; past it,
        // one probe at a time after each lock.
        let allowed = if pair.failures < config.max_failures {
            pair.failures + pair.in_flight < config.max_failures
        } else {
            pair.in_flight == 0
        };
        if !allowed {
            return Err(refused(IN_FLIGHT_RETRY));
        }
        pair.in_flight += 1;
        Ok(())
    }

    fn release_pair(&self, email: &str, address: IpAddr) {
        if let Some(mut pair) = self.pairs.get_mut(&(email.to_string(), address)) {
            pair.in_flight = pair.in_flight.saturating_sub(1);
        }
    }

    fn settle(&self, email: &str, address: IpAddr, outcome: Outcome, now: Instant) {
        let key = (email.to_string(), address);
        match outcome {
            Outcome::Succeeded => {
                self.pairs.remove(&key);
            }
            Outcome::Abandoned => self.release_pair(email, address),
            Outcome::Failed => {
                if let Some(mut pair) = self.pairs.get_mut(&key) {
                    pair.in_flight = pair.in_flight.saturating_sub(1);
                    pair.failures = pair.failures.saturating_add(1);
                    pair.last_failure = Some(now);
                    if pair.failures >= self.config.max_failures {
                        let lock = backoff(
                            pair.failures - self.config.max_failures,
                            self.config.backoff_base,
                            self.config.backoff_max,
                        );
                        pair.locked_until = Some(now + lock);
                    }
                }
            }
        }
        settle_bucket(&self.accounts, &email.to_string(), outcome);
        settle_bucket(&self.addresses, &address, outcome);
    }

    /// Drops entries that remember nothing any more, so guessed emails cannot grow
    /// the maps without end.
    fn sweep(&self, now: Instant) {
        let window = self.config.window;
        self.pairs.retain(|_, pair| {
            pair.in_flight > 0
                || pair.locked_until.is_some_and(|until| until > now)
                || pair
                    .last_failure
                    .is_some_and(|at| now.saturating_duration_since(at) < window)
        });
        let account_max = self.config.account_max_failures;
        self.accounts.retain(|_, bucket| {
            bucket.in_flight > 0 || drained(bucket, account_max, window, now) > 0.0
        });
        let address_max = self.config.address_max_failures;
        self.addresses.retain(|_, bucket| {
            bucket.in_flight > 0 || drained(bucket, address_max, window, now) > 0.0
        });
    }
}

/// The lock after the `excess`-th failure past the limit (0 for the first).
pub fn backoff(excess: u32, base: Duration, max: Duration) -> Duration {
    let factor = 1u32 << excess.min(MAX_DOUBLINGS);
    base.checked_mul(factor).unwrap_or(max).min(max)
}

/// Addresses as the throttle keys them: an IPv6 client usually holds a whole /64, so
/// its addresses share one key; IPv4-mapped IPv6 counts as the IPv4 address.
pub fn throttle_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

/// The client's address: the peer's, unless the server sits behind a proxy that is
/// configured to name the client in a header (`TRUSTED_PROXY_HEADER`). Only that one
/// header is read, and only its last entry, which is the one the proxy itself added
/// (`X-Forwarded-For: <whatever the client claimed>, <what the proxy saw>`). A missing
/// or unreadable header falls back to the peer, so a client cannot pick its own key.
pub fn client_address(peer: Option<IpAddr>, trusted_header: Option<&str>) -> IpAddr {
    let fallback = peer.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let Some(value) = trusted_header else {
        return fallback;
    };
    value
        .rsplit(',')
        .next()
        .and_then(parse_address)
        .unwrap_or(fallback)
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:443`, or a `Forwarded` element `for=…`.
fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text
        .split(';')
        .find_map(|part| {
            let part = part.trim();
            part.get(..4)
                .filter(|key| key.eq_ignore_ascii_case("for="))
                .map(|_| &part[4..])
        })
        .unwrap_or(text)
        .trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = text.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    let inner = text.strip_prefix('[')?.split(']').next()?;
    inner.parse().ok()
}

fn drained(bucket: &Bucket, max: u32, window: Duration, now: Instant) -> f64 {
    let rate = f64::from(max) / window.as_secs_f64();
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.level - elapsed * rate).max(0.0)
}

fn reserve_bucket<K: std::hash::Hash + Eq>(
    map: &DashMap<K, Bucket>,
    key: K,
    max: u32,
    window: Duration,
    now: Instant,
    limit: Limit,
) -> Result<(), Refused> {
    let mut bucket = map.entry(key).or_insert_with(|| Bucket {
        level: 0.0,
        in_flight: 0,
        at: now,
    });
    bucket.level = drained(&bucket, max, window, now);
    bucket.at = now;
    let wanted = bucket.level + f64::from(bucket.in_flight) + 1.0;
    if wanted > f64::from(max) {
        let rate = f64::from(max) / window.as_secs_f64();
        let wait = if bucket.level + 1.0 > f64::from(max) {
            Duration::from_secs_f64((bucket.level + 1.0 - f64::from(max)) / rate)
        } else {
            IN_FLIGHT_RETRY
        };
        return Err(Refused {
            limit,
            retry_after: wait,
        });
    }
    bucket.in_flight += 1;
    Ok(())
}

fn settle_bucket<K: std::hash::Hash + Eq>(map: &DashMap<K, Bucket>, key: &K, outcome: Outcome) {
    if let Some(mut bucket) = map.get_mut(key) {
        bucket.in_flight = bucket.in_flight.saturating_sub(1);
        if outcome == Outcome::Failed {
            bucket.level += 1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NURSE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));
    const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 66));

    fn throttle() -> LoginThrottle {
        throttle_with(100)
    }

    fn throttle_with(address_max_failures: u32) -> LoginThrottle {
        LoginThrottle::new(ThrottleConfig {
            max_failures: 3,
            window: Duration::from_secs(300),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(60),
            account_max_failures: 10,
            address_max_failures,
        })
    }

    fn fail(t: &LoginThrottle, email: &str, from: IpAddr, now: Instant) -> Result<(), Refused> {
        t.begin(email, from, now).map(|a| a.failed(now))
    }

    #[test]
    fn simultaneous_attempts_cannot_overrun_the_limit() {
        let t = throttle();
        let now = Instant::now();
        let mut held = Vec::new();
        let mut refused = 0;
        for _ in 0..41 {
            match t.begin("n@h.org", NURSE, now) {
                Ok(attempt) => held.push(attempt),
                Err(r) => {
                    assert_eq!(r.limit, Limit::AccountFromAddress);
                    refused += 1;
                }
            }
        }
        assert_eq!(
            held.len(),
            3,
            "only max_failures attempts are checked at once"
        );
        assert_eq!(refused, 38);
        for attempt in held {
            attempt.failed(now);
        }
        let r = t.begin("n@h.org", NURSE, now).err().expect("locked");
        assert_eq!(r.retry_after, Duration::from_secs(10));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_success_starts_afresh() {
        let t = throttle();
        let mut now = Instant::now();
        for _ in 0..3 {
            fail(&t, "n@h.org", NURSE, now).unwrap();
        }
        let mut locks = Vec::new();
        for _ in 0..4 {
            let lock = t
                .begin("n@h.org", NURSE, now)
                .err()
                .expect("locked")
                .retry_after;
            locks.push(lock.as_secs());
            now += lock;
            fail(&t, "n@h.org", NURSE, now).unwrap();
        }
        assert_eq!(locks, vec![10, 20, 40, 60]);
        now += Duration::from_secs(60);
        t.begin("n@h.org", NURSE, now).unwrap().succeeded(now);
        fail(&t, "n@h.org", NURSE, now).unwrap();
        fail(&t, "n@h.org", NURSE, now).unwrap();
        assert!(
            t.begin("n@h.org", NURSE, now).is_ok(),
            "the count started over"
        );
    }

    #[test]
    fn an_attacker_locks_only_their_own_address() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..3 {
            fail(&t, "n@h.org", ATTACKER, now).unwrap();
        }
        assert!(t.begin("n@h.org", ATTACKER, now).is_err());
        t.begin("n@h.org", NURSE, now).unwrap().succeeded(now);
    }

    #[test]
    fn spraying_many_accounts_from_one_address_is_throttled() {
        let t = throttle_with(6);
        let now = Instant::now();
        let mut checked = 0;
        for i in 0..60 {
            if fail(&t, &format!("user{}@h.org", i % 30), ATTACKER, now).is_ok() {
                checked += 1;
            }
        }
        assert_eq!(checked, 6, "address_max_failures guesses, then 429");
        let r = t.begin("fresh@h.org", ATTACKER, now).err().unwrap();
        assert_eq!(r.limit, Limit::Address);
        assert_eq!(
            r.retry_after,
            Duration::from_secs(50),
            "one failure drains per 300/6 s"
        );
        assert!(
            t.begin("fresh@h.org", NURSE, now).is_ok(),
            "other addresses are unaffected"
        );
    }

    #[test]
    fn many_addresses_against_one_account_are_throttled_and_unlock_clears_it() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..10u8 {
            let from = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, i));
            fail(&t, "n@h.org", from, now).unwrap();
        }
        let r = t.begin("n@h.org", NURSE, now).err().unwrap();
        assert_eq!(r.limit, Limit::Account);
        assert!(t.unlock("n@h.org"));
        assert!(t.begin("n@h.org", NURSE, now).is_ok());
        assert!(!t.unlock("nobody@h.org"));
    }

    #[test]
    fn an_abandoned_attempt_counts_nothing() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..10 {
            drop(t.begin("n@h.org", NURSE, now).unwrap());
        }
        for _ in 0..2 {
            fail(&t, "n@h.org", NURSE, now).unwrap();
        }
        assert!(t.begin("n@h.org", NURSE, now).is_ok());
    }

    #[test]
    fn a_quiet_window_forgets_failures() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..3 {
            fail(&t, "n@h.org", NURSE, now).unwrap();
        }
        let later = now + Duration::from_secs(301);
        for _ in 0..2 {
            fail(&t, "n@h.org", NURSE, later).unwrap();
        }
        assert!(t.begin("n@h.org", NURSE, later).is_ok());
        t.sweep(later + Duration::from_secs(10_000));
        assert!(t.pairs.is_empty() || t.pairs.iter().all(|p| p.in_flight > 0));
    }

    #[test]
    fn the_client_address_comes_only_from_the_trusted_header() {
        let local = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let peer = Some(local);
        assert_eq!(client_address(peer, None), local);
        assert_eq!(
            client_address(peer, Some("198.51.100.1, 203.0.113.9")),
            "203.0.113.9".parse::<IpAddr>().unwrap(),
            "the proxy's own entry, not what the client claimed"
        );
        assert_eq!(
            client_address(peer, Some("[2001:db8::1]:443")),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_address(peer, Some("for=\"203.0.113.5:1234\";proto=https")),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_address(peer, Some("not an address")), local);
        let a = throttle_key("2001:db8::1".parse().unwrap());
        let b = throttle_key("2001:db8::ffff:1".parse().unwrap());
        assert_eq!(a, b, "one /64, one key");
        assert_eq!(throttle_key("::ffff:198.51.100.7".parse().unwrap()), NURSE);
    }

    #[test]
    fn backoff_never_overflows() {
        let max = Duration::from_secs(300);
        assert_eq!(
            backoff(0, Duration::from_secs(15), max),
            Duration::from_secs(15)
        );
        assert_eq!(backoff(u32::MAX, Duration::from_secs(15), max), max);
        assert_eq!(backoff(40, Duration::MAX, max), max);
    }
}
