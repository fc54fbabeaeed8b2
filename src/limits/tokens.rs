//! [`TokenWindows`]: tokens (input + output) per key and minute, for `tpm_limit`. Turns are
//! counted when they end; a key at its limit is refused until its window is over. Windows
//! are fixed minutes starting at a key's first counted turn.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window of `tpm_limit`.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Tokens counted per key in its current window.
#[derive(Debug, Default)]
pub struct TokenWindows {
    windows: Mutex<HashMap<String, (Instant, u64)>>,
}

/// A key's standing against its token limit (for the `x-ratelimit-*-tokens` headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenState {
    /// The limit.
    pub limit: u64,
    /// Tokens left in this window.
    pub remaining: u64,
    /// Until the window ends.
    pub reset: Duration,
}

impl TokenWindows {
    fn used(&self, key: &str, now: Instant) -> (u64, Duration) {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        match windows.get(key) {
            Some((start, used)) if now.duration_since(*start) < WINDOW => {
                (*used, WINDOW - now.duration_since(*start))
            }
            _ => (0, Duration::ZERO),
        }
    }

    /// Where `key` stands against `limit`.
    pub fn state(&self, key: &str, limit: u64) -> TokenState {
        let (used, reset) = self.used(key, Instant::now());
        TokenState {
            limit,
            remaining: limit.saturating_sub(used),
            reset,
        }
    }

    /// Counts a finished turn's tokens.
    pub fn add(&self, key: &str, tokens: u64) {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let w = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(w.0) >= WINDOW {
            *w = (now, 0);
        }
        w.1 = w.1.saturating_add(tokens);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_count_within_the_window() {
        let t = TokenWindows::default();
        assert_eq!(t.state("k", 100).remaining, 100);
        t.add("k", 60);
        t.add("k", 50);
        let s = t.state("k", 100);
        assert_eq!(s.remaining, 0);
        assert!(
            s.reset > Duration::from_secs(59) && s.reset <= WINDOW,
            "{s:?}"
        );
        assert_eq!(t.state("other", 100).remaining, 100);
    }
}
