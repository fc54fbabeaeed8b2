//! How long the store's calls take, by operation and outcome: the histogram
//! `claude_pool_store_call_seconds` (the dashboard's store latency). Every call goes through
//! the breaker, which times it. One histogram per process, whatever stores it opens.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// One store call's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreCall {
    /// The operation (the `Store` method: `record_spend`, `key`, `hold_budget`, ...).
    op: &'static str,
    /// `ok` or `error`.
    outcome: &'static str,
}

fn histogram() -> Histogram {
    // 0.25 ms to ~8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Durations by call.
pub type StoreCalls = Family<StoreCall, Histogram, fn() -> Histogram>;

/// The store calls' durations (registered by [`crate::metrics::Metrics`]).
pub static STORE_CALLS: LazyLock<StoreCalls> =
    LazyLock::new(|| Family::new_with_constructor(histogram));

/// Records one call.
pub fn observe(op: &'static str, ok: bool, took: Duration) {
    let outcome = if ok { "ok" } else { "error" };
    STORE_CALLS
        .get_or_create(&StoreCall { op, outcome })
        .observe(took.as_secs_f64());
}
