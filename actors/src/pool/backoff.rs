//! Restart policy for crashed workers: jittered exponential backoff plus a restart-rate limit
//! ("meltdown" guard): more than `max_restarts` within `window` holds the delay at its maximum.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::BackoffConfig;

/// Backoff state of the pool (one for all workers: crashes usually share one cause).
#[derive(Debug)]
pub(crate) struct Backoff {
    cfg: BackoffConfig,
    consecutive_failures: u32,
    recent: VecDeque<Instant>,
    not_before: Option<Instant>,
    current: Duration,
}

impl Backoff {
    pub(crate) fn new(cfg: BackoffConfig) -> Self {
        Self {
            cfg,
            consecutive_failures: 0,
            recent: VecDeque::new(),
            not_before: None,
            current: Duration::ZERO,
        }
    }

    /// Records a failure (crash, failed spawn or start-up) and returns the delay before the
    /// next spawn may happen.
    pub(crate) fn record_failure(&mut self, now: Instant) -> Duration {
        self.recent.push_back(now);
        while let Some(&t) = self.recent.front() {
            if now.duration_since(t) > self.cfg.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let base = if self.recent.len() > self.cfg.max_restarts as usize {
            self.cfg.max_delay
        } else {
            let exp = self.consecutive_failures.saturating_sub(1).min(31);
            self.cfg
                .min_delay
                .saturating_mul(1u32 << exp)
                .min(self.cfg.max_delay)
        };
        let jitter = self.cfg.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (fastrand::f64() * 2.0 - 1.0);
        let delay = base.mul_f64(factor).min(self.cfg.max_delay);
        self.current = delay;
        self.not_before = Some(now + delay);
        delay
    }

    /// A worker proved healthy (served a turn): the next crash starts from the minimum again.
    pub(crate) fn record_success(&mut self) {
        self.consecutive_failures = 0;
    }

    /// True when a spawn is allowed at `now`.
    pub(crate) fn may_spawn(&mut self, now: Instant) -> bool {
        match self.not_before {
            Some(t) if now < t => false,
            Some(_) => {
                self.not_before = None;
                self.current = Duration::ZERO;
                true
            }
            None => true,
        }
    }

    /// The delay currently being applied (zero when none).
    pub(crate) fn current(&self) -> Duration {
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BackoffConfig {
        BackoffConfig {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            jitter: 0.0,
            max_restarts: 5,
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn grows_exponentially_and_caps() {
        let mut b = Backoff::new(cfg());
        let now = Instant::now();
        let delays: Vec<u128> = (0..6).map(|_| b.record_failure(now).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1600, 2000]);
        assert!(!b.may_spawn(now));
        assert!(b.may_spawn(now + Duration::from_secs(3)));
        assert_eq!(b.current(), Duration::ZERO);
    }

    #[test]
    fn success_resets_growth_but_rate_limit_holds() {
        let mut b = Backoff::new(cfg());
        let now = Instant::now();
        for _ in 0..3 {
            b.record_failure(now);
        }
        b.record_success();
        assert_eq!(b.record_failure(now).as_millis(), 100);
        // 4 failures so far in the window; two more exceed max_restarts = 5.
        b.record_success();
        b.record_failure(now);
        b.record_success();
        assert_eq!(b.record_failure(now), Duration::from_secs(2));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let mut c = cfg();
        c.jitter = 0.5;
        let mut b = Backoff::new(c);
        let now = Instant::now();
        let d = b.record_failure(now);
        assert!(
            d >= Duration::from_millis(50) && d <= Duration::from_millis(150),
            "{d:?}"
        );
    }
}
