//! [`Clock`]: the wall clock that key budgets reset by, with an offset tests move forward
//! (a budget period of a month is tested without waiting a month).

use std::sync::atomic::{AtomicI64, Ordering};

use crate::store::now_secs;

/// Unix seconds now, plus an offset (0 outside tests).
#[derive(Debug, Default)]
pub struct Clock {
    offset: AtomicI64,
}

impl Clock {
    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        now_secs().saturating_add(self.offset.load(Ordering::Relaxed))
    }

    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}
