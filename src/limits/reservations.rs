//! [`Reservations`]: budget held by a key's admitted turns on this replica. An admitted turn
//! holds its key's cost estimate while the key is far from its budget, its worst case (the
//! per-request cap) near it, by the rule of [`BudgetHold::decide`] (where the overshoot bound
//! is stated): a turn is admitted only while the key's spend plus what its turns hold is under
//! its budget, so far from the budget a key runs many turns at once, and near it concurrent
//! turns overshoot the budget by at most about one cap. A reservation is released once the
//! turn's real cost is durably recorded (and counted in the key's spend); a turn that finds the
//! budget held waits for a release ([`Reservations::released`]) rather than failing at once:
//! many concurrent turns of one key queue instead of erroring.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::store::{BudgetHold, HoldSizes};

#[derive(Debug, Default, Clone, Copy)]
struct Held {
    usd: f64,
    turns: u32,
}

type Table = Arc<Mutex<HashMap<Arc<str>, Held>>>;

/// Reserved budget per key.
#[derive(Debug, Default)]
pub struct Reservations {
    held: Table,
    released: Arc<Notify>,
}

/// One turn's reservation; dropping it releases it.
#[derive(Debug)]
pub struct Reservation {
    held: Table,
    released: Arc<Notify>,
    key: Arc<str>,
    usd: f64,
    /// The same amount held in the store for replicas sharing it (released with this one).
    store_hold: Option<(Arc<dyn crate::store::Store>, String)>,
}

impl Reservation {
    /// Ties a hold in the store (id `hold_id`) to this reservation: it is released with it.
    pub fn with_store_hold(mut self, store: Arc<dyn crate::store::Store>, hold_id: String) -> Self {
        self.store_hold = Some((store, hold_id));
        self
    }

    /// What this turn holds (USD).
    pub fn usd(&self) -> f64 {
        self.usd
    }

    /// Holds `usd` instead, if that is more (the store decided, seeing other replicas' turns,
    /// that the key is near its budget).
    pub fn raise_to(&mut self, usd: f64) {
        if usd <= self.usd {
            return;
        }
        if let Some(h) = lock(&self.held).get_mut(&self.key) {
            h.usd += usd - self.usd;
        }
        self.usd = usd;
    }
}

/// Why a turn was not admitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    /// The key has spent its budget.
    Spent {
        /// Spend so far.
        spend: f64,
        /// The budget.
        budget: f64,
    },
    /// What is left is held by running turns; retry when they end.
    Held {
        /// Spend so far.
        spend: f64,
        /// Held by running turns.
        held: f64,
        /// How many turns hold it.
        turns: u32,
        /// The budget.
        budget: f64,
    },
}

impl Refusal {
    /// What a budget decision ([`BudgetHold::decide`], or the store's) holds (USD), or why it
    /// refuses.
    pub fn of(hold: BudgetHold, budget: f64) -> Result<f64, Refusal> {
        match hold {
            BudgetHold::Taken { usd } => Ok(usd),
            BudgetHold::Spent { spend } => Err(Refusal::Spent { spend, budget }),
            BudgetHold::Held { spend, held, turns } => Err(Refusal::Held {
                spend,
                held,
                turns,
                budget,
            }),
        }
    }
}

fn lock(t: &Table) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Held>> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

impl Reservations {
    /// Reserves budget for a turn of `key`, which has spent `spend` of `budget`: the estimate
    /// of `sizes` far from the budget, its worst case near it.
    pub fn reserve(
        &self,
        key: &Arc<str>,
        spend: f64,
        budget: f64,
        sizes: HoldSizes,
    ) -> Result<Reservation, Refusal> {
        let mut held = lock(&self.held);
        let h = held.entry(key.clone()).or_default();
        let decision = BudgetHold::decide(spend, h.usd, h.turns, budget, sizes);
        let usd = match Refusal::of(decision, budget) {
            Ok(usd) => usd,
            Err(refusal) => {
                if h.turns == 0 {
                    held.remove(key);
                }
                return Err(refusal);
            }
        };
        h.usd += usd;
        h.turns += 1;
        Ok(Reservation {
            held: self.held.clone(),
            released: self.released.clone(),
            key: key.clone(),
            usd,
            store_hold: None,
        })
    }

    /// Notified whenever a reservation is released (create it, `enable` it, then check).
    pub fn released(&self) -> tokio::sync::futures::Notified<'_> {
        self.released.notified()
    }

    /// USD held for `key` now.
    pub fn held(&self, key: &str) -> f64 {
        lock(&self.held).get(key).map_or(0.0, |h| h.usd)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut held = lock(&self.held);
        if let Some(h) = held.get_mut(&self.key) {
            h.usd -= self.usd;
            h.turns = h.turns.saturating_sub(1);
            if h.turns == 0 {
                held.remove(&self.key);
            }
        }
        drop(held);
        self.released.notify_waiters();
        if let Some((store, id)) = self.store_hold.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = store.release_budget(&id).await {
                        tracing::warn!(error = %e, "cannot release a budget hold; it lapses on its own");
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(usd: f64) -> HoldSizes {
        HoldSizes::fixed(usd)
    }

    #[test]
    fn running_turns_hold_the_budget_until_released() {
        let r = Reservations::default();
        let k: Arc<str> = "k".into();
        // $1 left, each turn may cost up to $0.30: four turns fit (0, .3, .6, .9 < 1).
        let held: Vec<_> = (0..4)
            .map(|_| r.reserve(&k, 0.0, 1.0, fixed(0.3)).unwrap())
            .collect();
        match r.reserve(&k, 0.0, 1.0, fixed(0.3)) {
            Err(Refusal::Held { turns: 4, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!((r.held("k") - 1.2).abs() < 1e-9);
        drop(held);
        assert_eq!(r.held("k"), 0.0);
        assert!(matches!(
            r.reserve(&k, 1.0, 1.0, fixed(0.3)),
            Err(Refusal::Spent { .. })
        ));
        // A turn larger than what is left still runs alone (the cap bounds the overshoot).
        assert!(r.reserve(&k, 0.9, 1.0, fixed(5.0)).is_ok());
    }

    #[test]
    fn far_from_the_budget_turns_hold_their_estimate_and_near_it_their_cap() {
        let r = Reservations::default();
        let k: Arc<str> = "k".into();
        let sizes = HoldSizes {
            estimate: 0.05,
            worst: 5.0,
        };
        // $50 with $0.02 spent: 64 turns at $0.05 leave far more than a cap.
        let far: Vec<_> = (0..64)
            .map(|_| r.reserve(&k, 0.02, 50.0, sizes).unwrap())
            .collect();
        assert!(far.iter().all(|t| t.usd() == 0.05));
        assert!((r.held("k") - 3.2).abs() < 1e-9);
        // $10 left, estimate $0.25: turns hold it while 10 - held - 0.25 >= 5 (20 turns), then
        // the cap, until spend + held reaches the budget.
        let other: Arc<str> = "other".into();
        let quarter = HoldSizes {
            estimate: 0.25,
            worst: 5.0,
        };
        let mut holds = Vec::new();
        while let Ok(t) = r.reserve(&other, 40.0, 50.0, quarter) {
            holds.push(t);
        }
        let amounts: Vec<f64> = holds.iter().map(Reservation::usd).collect();
        assert_eq!(amounts, [vec![0.25; 20], vec![5.0]].concat());
        // Raising a hold (the store saw the key near its budget) moves the key's total.
        let mut t = r.reserve(&k, 0.02, 50.0, sizes).unwrap();
        t.raise_to(5.0);
        assert_eq!(t.usd(), 5.0);
        assert!((r.held("k") - 8.2).abs() < 1e-9);
        drop(t);
        drop(far);
        assert_eq!(r.held("k"), 0.0);
    }

    #[tokio::test]
    async fn a_release_wakes_a_waiting_turn() {
        let r = Arc::new(Reservations::default());
        let k: Arc<str> = "k".into();
        let first = r.reserve(&k, 0.0, 1.0, fixed(1.0)).unwrap();
        let waiter = {
            let (r, k) = (r.clone(), k.clone());
            tokio::spawn(async move {
                loop {
                    let released = r.released();
                    tokio::pin!(released);
                    released.as_mut().enable();
                    match r.reserve(&k, 0.0, 1.0, fixed(1.0)) {
                        Ok(res) => return res.usd,
                        Err(_) => released.await,
                    }
                }
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(first);
        assert_eq!(waiter.await.unwrap(), 1.0);
    }
}
