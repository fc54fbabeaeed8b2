//! Restart policy for workers that fail to start: jittered exponential backoff plus a
//! restart-rate limit ("meltdown" guard): more than `max_restarts` within `window` holds the
//! delay at its maximum.
//!
//! The policy is kept per failing cause, i.e. per [`Profile`] ([`ProfileBackoffs`]): a bad
//! credential or model holds back only the workers of that profile, never the others nor the
//! `min_workers` floor of a healthy default profile. A worker that was warm and then died (a
//! crash, a kill, a hung process that was killed) says nothing about the next start and is
//! replaced at once; the first warm worker of a profile clears its backoff.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::config::BackoffConfig;
use crate::turn::Profile;

/// Backoff state of one failing cause.
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
    #[cfg(test)]
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

/// Why a profile's workers are not being started right now (for health and metrics).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SpawnTrouble {
    /// Which workers: the profile's label (model and credential kind, never a secret).
    pub profile: String,
    /// Failed starts in a row.
    pub failures: u32,
    /// The last start-up error.
    pub last_error: String,
    /// Time until the next attempt (zero when one may start now).
    pub retry_in: Duration,
}

/// One [`Backoff`] per profile whose workers failed to start.
#[derive(Debug)]
pub(crate) struct ProfileBackoffs {
    cfg: BackoffConfig,
    failing: HashMap<Profile, (Backoff, String)>,
}

impl ProfileBackoffs {
    pub(crate) fn new(cfg: BackoffConfig) -> Self {
        Self {
            cfg,
            failing: HashMap::new(),
        }
    }

    /// True when a worker of `profile` may be started at `now`.
    pub(crate) fn may_spawn(&mut self, profile: &Profile, now: Instant) -> bool {
        self.failing
            .get_mut(profile)
            .is_none_or(|(b, _)| b.may_spawn(now))
    }

    /// A worker of `profile` failed to start; returns the delay before the next attempt.
    pub(crate) fn start_failed(
        &mut self,
        profile: &Profile,
        error: &str,
        now: Instant,
    ) -> Duration {
        let (b, last) = self
            .failing
            .entry(profile.clone())
            .or_insert_with(|| (Backoff::new(self.cfg.clone()), String::new()));
        error.clone_into(last);
        b.record_failure(now)
    }

    /// A worker of `profile` is warm: its starts work again.
    pub(crate) fn started(&mut self, profile: &Profile) {
        self.failing.remove(profile);
    }

    /// Failed starts in a row of `profile` (0 when it starts fine).
    pub(crate) fn failures(&self, profile: &Profile) -> u32 {
        self.failing
            .get(profile)
            .map_or(0, |(b, _)| b.consecutive_failures)
    }

    /// The longest delay currently applied to any profile.
    pub(crate) fn current(&self) -> Duration {
        self.failing
            .values()
            .map(|(b, _)| b.current())
            .max()
            .unwrap_or_default()
    }

    /// Every profile whose starts are failing.
    pub(crate) fn troubles(&self, now: Instant) -> Vec<SpawnTrouble> {
        let mut out: Vec<SpawnTrouble> = self
            .failing
            .iter()
            .map(|(p, (b, last))| SpawnTrouble {
                profile: p.label(),
                failures: b.consecutive_failures,
                last_error: last.clone(),
                retry_in: b
                    .not_before
                    .map_or(Duration::ZERO, |t| t.saturating_duration_since(now)),
            })
            .collect();
        out.sort_by(|a, b| a.profile.cmp(&b.profile));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_back_off_alone_and_recover_on_a_warm_worker() {
        let mut b = ProfileBackoffs::new(cfg());
        let now = Instant::now();
        let bad = Profile {
            model: Some("bad".into()),
            ..Profile::default()
        };
        let good = Profile::default();
        assert_eq!(b.start_failed(&bad, "exit code 1", now).as_millis(), 100);
        assert!(!b.may_spawn(&bad, now));
        assert!(b.may_spawn(&good, now), "another profile is not held back");
        assert_eq!(b.failures(&bad), 1);
        let t = b.troubles(now);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].last_error, "exit code 1");
        b.started(&bad);
        assert!(b.may_spawn(&bad, now));
        assert!(b.troubles(now).is_empty());
    }

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
