//! Per-key rate limits with `governor` (GCRA): a key's `rpm_limit` (requests per minute), else
//! the server default `limits.rate_limit_requests` per `limits.rate_limit_window` (0 = none).
//! Each decision carries what the `X-RateLimit-*` headers say: the limit, the requests left
//! right now, and the seconds until the allowance is full again.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// A key's limiter, with the rate it was built for (rebuilt when the rate changes).
type KeyLimiters = HashMap<Arc<str>, (Rate, Arc<Limiter>)>;

/// A limit: `requests` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed per window (also the burst).
    pub requests: NonZeroU32,
    /// The window.
    pub window: Duration,
}

impl Rate {
    /// `requests` per `window`; `None` when either is zero (no limit).
    pub fn new(requests: u32, window: Duration) -> Option<Self> {
        let requests = NonZeroU32::new(requests)?;
        (!window.is_zero()).then_some(Self { requests, window })
    }

    fn quota(self) -> Option<Quota> {
        let per_request = self.window / self.requests.get();
        Quota::with_period(per_request).map(|q| q.allow_burst(self.requests))
    }

    fn replenish_interval(self) -> Duration {
        self.window / self.requests.get()
    }

    /// GCRA parameters in milliseconds: one request per interval, a burst of `requests`.
    pub fn gcra_ms(self) -> (i64, i64) {
        let interval = i64::try_from(self.replenish_interval().as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        (interval, interval * i64::from(self.requests.get() - 1))
    }

    /// The decision for a request taken from the shared state at `now_ms`.
    pub fn shared_decision(self, now_ms: i64, take: crate::store::RateTake) -> Decision {
        let (interval, tolerance) = self.gcra_ms();
        let limit = self.requests.get();
        let ahead = (take.tat_ms - now_ms).max(0);
        if take.allowed {
            // Requests that still fit now.
            let used = u32::try_from((ahead + interval - 1) / interval).unwrap_or(limit);
            Decision {
                limit,
                remaining: limit.saturating_sub(used),
                reset_secs: ceil_secs(Duration::from_millis(ahead as u64)),
                window: self.window,
                retry_after: None,
            }
        } else {
            let wait = (ahead - tolerance).max(1);
            Decision {
                limit,
                remaining: 0,
                reset_secs: ceil_secs(Duration::from_millis(ahead as u64)),
                window: self.window,
                retry_after: Some(Duration::from_millis(wait as u64)),
            }
        }
    }
}

/// The outcome of a check, with the numbers for the response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// `X-RateLimit-Limit`.
    pub limit: u32,
    /// `X-RateLimit-Remaining`.
    pub remaining: u32,
    /// `X-RateLimit-Reset`: seconds until the allowance is full.
    pub reset_secs: u64,
    /// The limit's window.
    pub window: Duration,
    /// Set when the request is refused: when to retry.
    pub retry_after: Option<Duration>,
}

/// The rate limiters of all keys seen.
#[derive(Debug)]
pub struct RateLimits {
    default: Option<Rate>,
    limiters: Mutex<KeyLimiters>,
}

/// Whole seconds, rounded up (for headers that must not invite an early retry).
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl RateLimits {
    /// Limits with a server-wide default (`None` = unlimited unless a key sets its own).
    pub fn new(default: Option<Rate>) -> Self {
        Self {
            default,
            limiters: Mutex::new(HashMap::new()),
        }
    }

    /// The rate that applies to a key with this `rpm_limit`.
    pub fn rate_for(&self, rpm_limit: Option<u32>) -> Option<Rate> {
        match rpm_limit {
            Some(rpm) => Rate::new(rpm, Duration::from_secs(60)),
            None => self.default,
        }
    }

    /// Counts one request of `key` against `rate`; `None` when the key is unlimited.
    pub fn check(&self, key: &Arc<str>, rate: Option<Rate>) -> Option<Decision> {
        let rate = rate?;
        let limiter = {
            let mut map = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(key) {
                Some((r, l)) if *r == rate => l.clone(),
                _ => {
                    let quota = rate.quota()?;
                    let l = Arc::new(
                        RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>(),
                    );
                    map.insert(key.clone(), (rate, l.clone()));
                    l
                }
            }
        };
        let limit = rate.requests.get();
        let interval = rate.replenish_interval();
        Some(match limiter.check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision {
                    limit,
                    remaining,
                    reset_secs: ceil_secs(interval * (limit - remaining)),
                    window: rate.window,
                    retry_after: None,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Decision {
                    limit,
                    remaining: 0,
                    reset_secs: ceil_secs(interval * limit),
                    window: rate.window,
                    retry_after: Some(wait),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_decisions_follow_the_same_rule_as_local_ones() {
        let rate = Rate::new(3, Duration::from_secs(60)).unwrap();
        assert_eq!(rate.gcra_ms(), (20_000, 40_000));
        let take = |allowed, tat_ms| crate::store::RateTake { allowed, tat_ms };
        // The first of three: its arrival time is one interval ahead.
        let d = rate.shared_decision(0, take(true, 20_000));
        assert_eq!((d.remaining, d.reset_secs, d.retry_after), (2, 20, None));
        let d = rate.shared_decision(0, take(true, 60_000));
        assert_eq!((d.remaining, d.reset_secs), (0, 60));
        // Refused: retry once the arrival time is back within the burst.
        let d = rate.shared_decision(1_000, take(false, 60_000));
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_after, Some(Duration::from_secs(19)));
    }

    #[test]
    fn a_key_gets_its_burst_then_is_refused_with_a_retry_time() {
        let limits = RateLimits::new(Rate::new(3, Duration::from_secs(60)));
        let key: Arc<str> = "k".into();
        let rate = limits.rate_for(None);
        let seen: Vec<Decision> = (0..4).map(|_| limits.check(&key, rate).unwrap()).collect();
        assert_eq!(
            seen.iter().map(|d| d.remaining).collect::<Vec<_>>(),
            [2, 1, 0, 0]
        );
        assert!(
            seen[..3]
                .iter()
                .all(|d| d.retry_after.is_none() && d.limit == 3)
        );
        let refused = seen[3];
        let wait = refused.retry_after.unwrap();
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert_eq!(refused.reset_secs, 60);
        assert_eq!(seen[0].reset_secs, 20);
        // Another key has its own allowance; a key's own rpm_limit replaces the default.
        let other: Arc<str> = "o".into();
        assert_eq!(limits.check(&other, rate).unwrap().remaining, 2);
        assert_eq!(
            limits
                .check(&other, limits.rate_for(Some(10)))
                .unwrap()
                .remaining,
            9
        );
        assert!(
            limits
                .check(&other, RateLimits::new(None).rate_for(None))
                .is_none()
        );
    }
}
