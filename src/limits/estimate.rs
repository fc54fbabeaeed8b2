//! [`CostEstimates`]: what each key's turns really cost, for what an admitted turn holds of its
//! key's budget ([`HoldSizes`]). Per replica, in memory: each key keeps the costs of its last
//! [`WINDOW`] turns (of up to 10,000 keys), fed by the spend ledger as turns end; its estimate
//! is their [`PERCENTILE`]th percentile (nearest rank), computed when a cost is added, so
//! admission only reads one number.
//!
//! | | estimate (held far from the budget) | worst case (held near it) |
//! |---|---|---|
//! | with `max_cost_per_request` | the key's p95, at most the cap; `turn_cost_estimate` (at most the cap) before any turn | the cap |
//! | without | the key's p95; `turn_cost_estimate` before any turn | the larger of `turn_cost_estimate` and the estimate |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::store::HoldSizes;

/// How many of a key's most recent turn costs its estimate is taken from.
pub const WINDOW: usize = 64;
/// The percentile of those costs a turn holds far from its key's budget.
pub const PERCENTILE: f64 = 95.0;
/// Keys whose costs are kept (about 0.6 KB each) before all are forgotten; a forgotten key's
/// turns hold `limits.turn_cost_estimate` again until one of them ends.
const MAX_KEYS: usize = 10_000;

/// The last [`WINDOW`] turn costs of one key and their percentile.
#[derive(Debug, Clone)]
struct CostWindow {
    /// A ring of costs (USD); the first `len` are filled.
    costs: [f64; WINDOW],
    len: usize,
    /// Where the next cost goes.
    next: usize,
    /// [`PERCENTILE`] of the costs.
    percentile: f64,
}

impl CostWindow {
    fn new() -> Self {
        Self {
            costs: [0.0; WINDOW],
            len: 0,
            next: 0,
            percentile: 0.0,
        }
    }

    fn add(&mut self, usd: f64) {
        self.costs[self.next] = usd;
        self.next = (self.next + 1) % WINDOW;
        self.len = (self.len + 1).min(WINDOW);
        let mut sorted = self.costs;
        let filled = &mut sorted[..self.len];
        // Nearest rank: the smallest cost with at least PERCENTILE % of the costs at or below it.
        let rank = ((PERCENTILE / 100.0 * self.len as f64).ceil() as usize).clamp(1, self.len);
        let (_, nth, _) = filled.select_nth_unstable_by(rank - 1, f64::total_cmp);
        self.percentile = *nth;
    }
}

type Windows = Mutex<HashMap<Arc<str>, CostWindow>>;

/// Recent turn costs per key, and the holds they make.
#[derive(Debug)]
pub struct CostEstimates {
    windows: Windows,
    /// `limits.max_cost_per_request`, if any.
    cap: Option<f64>,
    /// `limits.turn_cost_estimate`: the estimate of a key without turns yet.
    default_estimate: f64,
}

impl CostEstimates {
    /// No history yet; `cap` is the per-request cap (`None`: none), `default_estimate` what a
    /// turn of a key without history is taken to cost.
    pub fn new(cap: Option<f64>, default_estimate: f64) -> Self {
        Self {
            windows: Mutex::default(),
            cap,
            default_estimate,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, CostWindow>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds what a turn of `key` cost (USD); negative or non-finite figures are ignored.
    pub fn observe(&self, key: &Arc<str>, usd: f64) {
        if !usd.is_finite() || usd < 0.0 {
            return;
        }
        let mut windows = self.lock();
        match windows.get_mut(key) {
            Some(w) => w.add(usd),
            None => {
                if windows.len() >= MAX_KEYS {
                    windows.clear();
                }
                let mut w = CostWindow::new();
                w.add(usd);
                windows.insert(key.clone(), w);
            }
        }
    }

    /// The [`PERCENTILE`] of `key`'s recent turn costs, if it has any.
    pub fn percentile(&self, key: &str) -> Option<f64> {
        self.lock().get(key).map(|w| w.percentile)
    }

    /// What a turn of `key` may hold (see the module's table).
    pub fn hold_sizes(&self, key: &str) -> HoldSizes {
        let seen = self.percentile(key).unwrap_or(self.default_estimate);
        match self.cap {
            Some(cap) => HoldSizes {
                estimate: seen.min(cap),
                worst: cap,
            },
            None => HoldSizes {
                estimate: seen,
                worst: self.default_estimate.max(seen),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Arc<str> {
        k.into()
    }

    #[test]
    fn a_key_without_turns_holds_the_configured_estimate_within_the_cap() {
        let e = CostEstimates::new(Some(5.0), 0.5);
        assert_eq!(e.percentile("k"), None);
        assert_eq!(
            e.hold_sizes("k"),
            HoldSizes {
                estimate: 0.5,
                worst: 5.0
            }
        );
        let small_cap = CostEstimates::new(Some(0.2), 0.5);
        assert_eq!(small_cap.hold_sizes("k"), HoldSizes::fixed(0.2));
        let no_cap = CostEstimates::new(None, 0.5);
        assert_eq!(no_cap.hold_sizes("k"), HoldSizes::fixed(0.5));
    }

    #[test]
    fn the_estimate_is_the_95th_percentile_of_the_last_64_turns() {
        let e = CostEstimates::new(Some(5.0), 0.5);
        let k = key("k");
        e.observe(&k, 0.02);
        assert_eq!(e.percentile("k"), Some(0.02));
        // 100 turns costing 0.01 ..= 1.00: the window keeps the last 64 (0.37 ..= 1.00); the
        // 61st of them in order (ceil(0.95 * 64)) is 0.97.
        for i in 1..=100 {
            e.observe(&k, f64::from(i) / 100.0);
        }
        assert!((e.percentile("k").unwrap() - 0.97).abs() < 1e-12);
        assert!((e.hold_sizes("k").estimate - 0.97).abs() < 1e-12);
        // One expensive turn in 64 does not move it much; the 95th percentile ignores it.
        for _ in 0..63 {
            e.observe(&k, 0.03);
        }
        e.observe(&k, 4.0);
        assert_eq!(e.percentile("k"), Some(0.03));
        // Other keys are apart.
        assert_eq!(e.percentile("other"), None);
        // Nonsense is ignored.
        e.observe(&k, f64::NAN);
        e.observe(&k, -1.0);
        assert_eq!(e.percentile("k"), Some(0.03));
    }

    #[test]
    fn the_estimate_is_bounded_by_the_cap() {
        let e = CostEstimates::new(Some(1.0), 0.5);
        let k = key("k");
        for _ in 0..10 {
            e.observe(&k, 3.0);
        }
        assert_eq!(e.hold_sizes("k"), HoldSizes::fixed(1.0));
        // Without a cap, a key costlier than the configured estimate holds what it costs.
        let no_cap = CostEstimates::new(None, 0.5);
        no_cap.observe(&k, 3.0);
        assert_eq!(no_cap.hold_sizes("k"), HoldSizes::fixed(3.0));
        no_cap.observe(&k, 0.1);
        no_cap.observe(&k, 0.1);
        no_cap.observe(&k, 0.1);
        assert_eq!(
            no_cap.hold_sizes("k"),
            HoldSizes {
                estimate: 3.0,
                worst: 3.0
            },
            "4 turns: the 95th percentile is the largest"
        );
    }
}
