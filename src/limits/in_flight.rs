//! [`InFlight`]: turns of each key running right now, for `max_parallel_requests`. A
//! [`Slot`] is held from admission to the end of the turn (also when the client has gone).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Counts = Arc<Mutex<HashMap<Arc<str>, u32>>>;

/// Running turns per key.
#[derive(Debug, Default)]
pub struct InFlight {
    counts: Counts,
}

/// One running turn of a key; dropping it ends it.
#[derive(Debug)]
pub struct Slot {
    counts: Counts,
    key: Arc<str>,
}

fn lock(c: &Counts) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, u32>> {
    c.lock().unwrap_or_else(|e| e.into_inner())
}

impl InFlight {
    /// Takes a slot, unless the key already runs `max` turns (`Err` with how many).
    pub fn enter(&self, key: &Arc<str>, max: Option<u32>) -> Result<Slot, u32> {
        let mut counts = lock(&self.counts);
        let n = counts.entry(key.clone()).or_default();
        if max.is_some_and(|m| *n >= m) {
            return Err(*n);
        }
        *n += 1;
        Ok(Slot {
            counts: self.counts.clone(),
            key: key.clone(),
        })
    }

    /// Turns of `key` running now.
    pub fn running(&self, key: &str) -> u32 {
        lock(&self.counts).get(key).copied().unwrap_or_default()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_runs_at_most_max_turns_and_a_dropped_slot_frees_one() {
        let f = InFlight::default();
        let k: Arc<str> = "k".into();
        let a = f.enter(&k, Some(2)).unwrap();
        let _b = f.enter(&k, Some(2)).unwrap();
        assert_eq!(f.enter(&k, Some(2)).unwrap_err(), 2);
        assert!(f.enter(&"other".into(), Some(2)).is_ok());
        drop(a);
        let _c = f.enter(&k, Some(2)).unwrap();
        assert_eq!(f.running("k"), 2);
        assert!(f.enter(&k, None).is_ok(), "no limit");
    }
}
