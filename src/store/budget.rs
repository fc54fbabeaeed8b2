//! The budget rule for running turns, the same whether one replica's holds decide
//! ([`crate::limits::Reservations`]) or the store's, shared by replicas
//! ([`super::Store::hold_budget`]).
//!
//! A turn of a key with a budget is admitted only while the key's spend plus what its running
//! turns hold is under the budget (a turn always starts while none holds anything). What an
//! admitted turn holds until its cost is recorded depends on how far the key is from its
//! budget ([`HoldSizes::for_left`]): while what is left (budget − spend − held) still covers
//! the turn's estimate plus a full worst case (the per-request cap), the turn holds only its
//! estimate (what the key's turns really cost); closer to the budget it holds the worst case.
//!
//! **Overshoot bound.** Let `C` be the worst case (`limits.max_cost_per_request`; a turn is
//! interrupted once its cost passes it, and what it spends past `C` before it stops adds to
//! the overshoot under any rule). Every turn counts in `spend` once settled and in
//! `held` (at what it holds, `hᵢ`) until then, so when the last turn is admitted, spend +
//! held < budget, and the key's final spend is below
//!
//! > budget + C + Σ (cᵢ − hᵢ)⁺ over the turns that hold their estimate and are still running
//! > at that moment (cᵢ: what such a turn costs in the end).
//!
//! Turns holding the worst case add nothing to the sum. So near the budget the overshoot is at
//! most one cap; turns admitted far from it add what they cost beyond their estimate. With the
//! estimate at the 95th percentile of the key's recent turns ([`crate::limits::CostEstimates`])
//! that excess is small while the key's costs are steady; if every such turn cost the full
//! cap, it would be `C − estimate` per turn.

/// What an admitted turn may hold of its key's budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HoldSizes {
    /// What the key's turns really cost (USD), held far from the budget.
    pub estimate: f64,
    /// The most one turn may cost (USD), held near the budget.
    pub worst: f64,
}

/// Rounding slack in comparisons of USD sums.
const SLACK: f64 = 1e-9;

impl HoldSizes {
    /// A hold of `usd` whatever is left.
    pub fn fixed(usd: f64) -> Self {
        Self {
            estimate: usd,
            worst: usd,
        }
    }

    /// What a turn holds when `left` USD of the budget is neither spent nor held: its estimate
    /// while `left` covers the estimate plus a full worst case, else the worst case.
    pub fn for_left(&self, left: f64) -> f64 {
        if left - self.estimate + SLACK >= self.worst {
            self.estimate
        } else {
            self.worst.max(self.estimate)
        }
    }
}

/// The outcome of [`super::Store::hold_budget`] (and of a replica's own holds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BudgetHold {
    /// The turn holds `usd` until released.
    Taken {
        /// What it holds (USD).
        usd: f64,
    },
    /// The key has spent its budget.
    Spent {
        /// Spend so far.
        spend: f64,
    },
    /// What is left is held by running turns (on any replica).
    Held {
        /// Spend so far.
        spend: f64,
        /// Held by running turns.
        held: f64,
        /// How many turns hold it.
        turns: u32,
    },
}

impl BudgetHold {
    /// The budget rule (see the module's documentation): refused once the key has spent its
    /// budget, or while running turns (`turns` of them, holding `held`) hold the rest of it;
    /// otherwise taken, holding what [`HoldSizes::for_left`] says.
    pub fn decide(spend: f64, held: f64, turns: u32, budget: f64, sizes: HoldSizes) -> Self {
        if spend >= budget {
            Self::Spent { spend }
        } else if turns > 0 && spend + held >= budget {
            Self::Held { spend, held, turns }
        } else {
            Self::Taken {
                usd: sizes.for_left(budget - spend - held),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: HoldSizes = HoldSizes {
        estimate: 0.5,
        worst: 5.0,
    };

    fn taken(d: BudgetHold) -> f64 {
        match d {
            BudgetHold::Taken { usd } => usd,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn far_from_the_budget_a_turn_holds_its_estimate_near_it_the_worst_case() {
        // $10, nothing spent: left covers 0.5 + 5 until 4.5 is held.
        assert_eq!(taken(BudgetHold::decide(0.0, 0.0, 0, 10.0, SIZES)), 0.5);
        assert_eq!(taken(BudgetHold::decide(0.0, 4.5, 9, 10.0, SIZES)), 0.5);
        assert_eq!(taken(BudgetHold::decide(0.0, 5.0, 10, 10.0, SIZES)), 5.0);
        assert_eq!(taken(BudgetHold::decide(4.6, 0.0, 0, 10.0, SIZES)), 5.0);
        // Near the budget the rule is the worst-case one: refused once spend + held reaches it.
        assert_eq!(taken(BudgetHold::decide(0.0, 9.9, 11, 10.0, SIZES)), 5.0);
        assert_eq!(
            BudgetHold::decide(0.0, 10.0, 12, 10.0, SIZES),
            BudgetHold::Held {
                spend: 0.0,
                held: 10.0,
                turns: 12
            }
        );
        assert_eq!(
            BudgetHold::decide(10.0, 0.0, 0, 10.0, SIZES),
            BudgetHold::Spent { spend: 10.0 }
        );
        // A turn larger than what is left still runs alone (the cap bounds the overshoot).
        assert_eq!(taken(BudgetHold::decide(9.9, 0.0, 0, 10.0, SIZES)), 5.0);
    }

    #[test]
    fn fixed_sizes_are_the_worst_case_rule() {
        let fixed = HoldSizes::fixed(0.2);
        // $1 with a cap of $0.20: five turns at once, as with worst-case holds everywhere.
        let mut held = 0.0;
        let mut turns = 0;
        while let BudgetHold::Taken { usd } = BudgetHold::decide(0.0, held, turns, 1.0, fixed) {
            assert_eq!(usd, 0.2);
            held += usd;
            turns += 1;
        }
        assert_eq!(turns, 5);
    }

    #[test]
    fn an_estimate_above_the_worst_case_is_held_as_is() {
        let odd = HoldSizes {
            estimate: 2.0,
            worst: 1.0,
        };
        assert_eq!(odd.for_left(10.0), 2.0);
        assert_eq!(odd.for_left(2.5), 2.0);
    }
}
