//! Per-key limits, all in memory on each replica:
//!
//! | module | limit | key setting |
//! |---|---|---|
//! | [`rate`] | requests per window (`governor`, GCRA) | `rpm_limit`, else `limits.rate_limit_*` |
//! | [`tokens`] | tokens per minute, counted as turns end | `tpm_limit` |
//! | [`in_flight`] | turns running at once | `max_parallel_requests` |
//! | [`reservations`] | budget held by admitted turns, bounding how far concurrent turns overshoot it | `max_budget` |
//! | [`estimate`] | a key's turn costs (p95 of its last 64): what its turns hold far from its budget | `limits.turn_cost_estimate` |
//!
//! An admitted turn holds an [`Admission`]: its in-flight slot (released when the turn ends)
//! and its budget reservation (released once its spend is durably recorded).

pub mod estimate;
pub mod in_flight;
pub mod rate;
pub mod reservations;
pub mod tokens;

pub use estimate::CostEstimates;
pub use in_flight::{InFlight, Slot};
pub use rate::{Decision, Rate, RateLimits, ceil_secs};
pub use reservations::{Refusal, Reservation, Reservations};
pub use tokens::{TokenState, TokenWindows};

/// What an admitted turn holds until it ends.
#[derive(Debug, Default)]
pub struct Admission {
    /// The key's in-flight slot.
    pub slot: Option<Slot>,
    /// The key's budget reservation.
    pub reservation: Option<Reservation>,
}
