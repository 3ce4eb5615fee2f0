//! Failed-login throttling. `governor` counts failures per email (a GCRA bucket of
//! `max_failures` refilled over the window); once a bucket is empty the email is
//! locked until governor says a new attempt would be allowed, and attempts during
//! the lock are refused before the password is even checked.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct LoginThrottle {
    failures: DefaultKeyedRateLimiter<String>,
    locked_until: DashMap<String, Instant>,
    clock: DefaultClock,
}

impl LoginThrottle {
    pub fn new(max_failures: u32, window: Duration) -> LoginThrottle {
        let burst = NonZeroU32::new(max_failures.max(1)).unwrap_or(NonZeroU32::MIN);
        let period = window / burst.get();
        let quota = Quota::with_period(period.max(Duration::from_millis(1)))
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        LoginThrottle {
            failures: RateLimiter::keyed(quota),
            locked_until: DashMap::new(),
            clock: DefaultClock::default(),
        }
    }

    /// Seconds left on this email's lock, if it is locked.
    pub fn locked(&self, email: &str) -> Option<u64> {
        let now = Instant::now();
        let until = *self.locked_until.get(email)?;
        if until > now {
            Some((until - now).as_secs().max(1))
        } else {
            self.locked_until.remove(email);
            None
        }
    }

    /// Counts a failure; returns the lock length when this failure used up the budget.
    pub fn record_failure(&self, email: &str) -> Option<u64> {
        match self.failures.check_key(&email.to_string()) {
            Ok(()) => None,
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                self.locked_until
                    .insert(email.to_string(), Instant::now() + wait);
                Some(wait.as_secs().max(1))
            }
        }
    }
}
