//! Limits per user and per connection, so one account or one socket cannot take the
//! server's attention from everyone else. Each limit is configurable (README.md,
//! "Security") and refuses with a clear error: `429 rate_limited` with `Retry-After`
//! over HTTP, close code 1008 (policy violation) with a reason on a WebSocket.
//!
//! * support requests and cancels per minute per requester ([`Limits::support_request`],
//!   [`Limits::cancel`]), so a request/cancel loop cannot broadcast issue after issue to
//!   every consultant;
//! * sockets per user ([`Limits::open_socket`]): a permit held for the socket's life;
//! * frames per second per socket ([`FrameBudget`]): past the burst the socket closes;
//! * how long a request body may take to arrive ([`body::deadline`]).
//!
//! The rates are GCRA buckets from `governor`. Keyed buckets keep one small cell per
//! user id, a number bounded by the user table, so they are never swept.

pub mod body;

use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use dashmap::DashMap;
use futures_util::Stream;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::ServeArgs;
use crate::error::ApiError;
use crate::model::UserId;

/// A user over their socket limit is told to retry after this long: sockets close
/// when tabs do, which the server cannot predict.
pub const SOCKET_RETRY_SECS: u64 = 5;

pub struct Limits {
    support_requests: DefaultKeyedRateLimiter<UserId>,
    cancels: DefaultKeyedRateLimiter<UserId>,
    sockets: Arc<DashMap<UserId, usize>>,
    max_sockets: usize,
    clock: DefaultClock,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(nonzero(n))
}

impl Limits {
    pub fn new(config: &ServeArgs) -> Limits {
        Limits {
            support_requests: RateLimiter::keyed(per_minute(config.support_requests_per_min)),
            cancels: RateLimiter::keyed(per_minute(config.support_cancels_per_min)),
            sockets: Arc::new(DashMap::new()),
            max_sockets: config.ws_max_sockets_per_user.max(1),
            clock: DefaultClock::default(),
        }
    }

    /// One `POST /api/support/request` by this requester.
    pub fn support_request(&self, user_id: UserId) -> Result<(), ApiError> {
        self.check(&self.support_requests, user_id, "support requests")
    }

    /// One `POST /api/support/cancel/:id` by this user.
    pub fn cancel(&self, user_id: UserId) -> Result<(), ApiError> {
        self.check(&self.cancels, user_id, "cancels")
    }

    fn check(
        &self,
        limiter: &DefaultKeyedRateLimiter<UserId>,
        user_id: UserId,
        what: &str,
    ) -> Result<(), ApiError> {
        limiter.check_key(&user_id).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::RateLimited {
                message: format!("too many {what} in a minute; wait and try again"),
                retry_after_secs: round_up_secs(wait),
            }
        })
    }

    /// A place for one more socket of this user, held until the permit is dropped.
    /// Counting and checking happen under one map entry's lock, so a burst of
    /// simultaneous upgrades cannot overshoot the limit.
    pub fn open_socket(&self, user_id: UserId) -> Result<SocketPermit, ApiError> {
        let mut open = self.sockets.entry(user_id).or_insert(0);
        if *open >= self.max_sockets {
            return Err(ApiError::RateLimited {
                message: format!(
                    "this account already has {} sockets open, the most allowed; close a tab",
                    self.max_sockets
                ),
                retry_after_secs: SOCKET_RETRY_SECS,
            });
        }
        *open += 1;
        Ok(SocketPermit {
            sockets: self.sockets.clone(),
            user_id,
        })
    }

    /// Sockets this user holds permits for.
    pub fn sockets_of(&self, user_id: UserId) -> usize {
        self.sockets.get(&user_id).map_or(0, |n| *n)
    }
}

fn round_up_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// One socket's place in its user's allowance; dropping it frees the place.
pub struct SocketPermit {
    sockets: Arc<DashMap<UserId, usize>>,
    user_id: UserId,
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        if let Some(mut open) = self.sockets.get_mut(&self.user_id) {
            *open = open.saturating_sub(1);
        }
        self.sockets.remove_if(&self.user_id, |_, open| *open == 0);
    }
}

/// A socket's incoming byte stream with its permit attached: the WebSocket context
/// owns its input stream until the actor is gone, so the permit lives exactly as long
/// as the socket without the session actor knowing about it.
pub struct PermitStream<S> {
    inner: S,
    _permit: SocketPermit,
}

impl<S> PermitStream<S> {
    pub fn new(inner: S, permit: SocketPermit) -> PermitStream<S> {
        PermitStream {
            inner,
            _permit: permit,
        }
    }
}

impl<S: Stream + Unpin> Stream for PermitStream<S> {
    type Item = S::Item;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

/// Frames one socket may send: `rate` per second on average, `burst` at once.
pub struct FrameBudget {
    limiter: DefaultDirectRateLimiter,
    rate: u32,
}

impl FrameBudget {
    pub fn new(config: &ServeArgs) -> FrameBudget {
        let rate = config.ws_frames_per_sec.max(1);
        let burst = config.ws_frame_burst.max(rate);
        FrameBudget {
            limiter: RateLimiter::direct(
                Quota::per_second(nonzero(rate)).allow_burst(nonzero(burst)),
            ),
            rate,
        }
    }

    /// Counts one incoming frame; `Err` carries the close reason once the socket has
    /// used up its burst.
    pub fn admit(&self) -> Result<(), String> {
        self.limiter
            .check()
            .map_err(|_| format!("more than {} frames per second", self.rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServeArgs {
        let mut c = ServeArgs::defaults();
        c.ws_max_sockets_per_user = 2;
        c.support_requests_per_min = 3;
        c.ws_frames_per_sec = 5;
        c.ws_frame_burst = 10;
        c
    }

    #[test]
    fn socket_permits_are_counted_and_given_back() {
        let limits = Limits::new(&config());
        let a = limits.open_socket(UserId(7)).unwrap();
        let _b = limits.open_socket(UserId(7)).unwrap();
        let refused = limits.open_socket(UserId(7)).err().unwrap();
        assert_eq!(refused.code(), "rate_limited");
        assert!(limits.open_socket(UserId(8)).is_ok(), "per user");
        drop(a);
        assert_eq!(limits.sockets_of(UserId(7)), 1);
        assert!(limits.open_socket(UserId(7)).is_ok());
    }

    #[test]
    fn requests_per_minute_are_metered_per_requester() {
        let limits = Limits::new(&config());
        for _ in 0..3 {
            limits.support_request(UserId(1)).unwrap();
        }
        match limits.support_request(UserId(1)) {
            Err(ApiError::RateLimited {
                retry_after_secs, ..
            }) => {
                assert!((1..=60).contains(&retry_after_secs))
            }
            other => panic!("not limited: {other:?}"),
        }
        assert!(limits.support_request(UserId(2)).is_ok());
        assert!(
            limits.cancel(UserId(1)).is_ok(),
            "cancels have their own budget"
        );
    }

    #[test]
    fn a_frame_burst_is_allowed_and_then_refused() {
        let budget = FrameBudget::new(&config());
        let admitted = (0..100).take_while(|_| budget.admit().is_ok()).count();
        assert!(
            (10..100).contains(&admitted),
            "the burst passes, then frames are refused: {admitted}"
        );
        assert!(budget.admit().unwrap_err().contains("5 frames per second"));
    }
}
