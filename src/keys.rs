//! API key material: generation (`sk-` + 43 base62 characters = 256 random bits), the stored
//! form (hex SHA-256; the key has full entropy, so a fast hash is enough and lookups stay one
//! index probe), the display prefix, and the `duration` syntax of `/key/generate`.

use std::time::Duration;

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

/// Characters after `sk-`: 43 × log2(62) ≈ 256 bits.
const KEY_CHARS: usize = 43;

/// A new random API key.
pub fn generate() -> String {
    let body: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(KEY_CHARS)
        .map(char::from)
        .collect();
    format!("sk-{body}")
}

/// The stored id of a key: hex SHA-256.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The non-secret display form: `sk-AbCd…wXyZ`.
pub fn display(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 16 {
        return format!("{}…", chars.iter().take(3).collect::<String>());
    }
    let head: String = chars[..7].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// A short label for logs and metrics: `key-<first 8 hex of the hash>`.
pub fn label(id: &str) -> String {
    format!("key-{}", id.get(..8).unwrap_or(id))
}

/// Parses a key lifetime: `30s`, `30m`, `12h`, `30d`, `2w`, or combinations (`1d 12h`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        format!("`{s}` is not a duration ({e}); use forms like \"30m\", \"12h\" or \"30d\"")
    })?;
    if d.is_zero() {
        return Err("the duration must be positive".into());
    }
    Ok(d)
}

/// A budget period (`budget_duration`): a fixed length (`30s`, `12h`, `30d`, `2w`) or calendar
/// months (`1mo`, `3mo`), as LiteLLM writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetPeriod {
    /// A fixed length.
    Every(Duration),
    /// Calendar months (the same day of the month, clamped to its end).
    Months(u32),
}

impl BudgetPeriod {
    /// Parses `30d`, `1mo`, `2w`, `12h`, ...
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Some(n) = t.strip_suffix("mo") {
            return match n.trim().parse::<u32>() {
                Ok(n) if (1..=120).contains(&n) => Ok(BudgetPeriod::Months(n)),
                _ => Err(format!(
                    "`{s}` is not a budget period; use forms like \"30d\", \"1mo\" or \"12h\""
                )),
            };
        }
        parse_duration(t).map(BudgetPeriod::Every)
    }

    /// `t` (Unix seconds) plus one period.
    pub fn after(self, t: i64) -> i64 {
        match self {
            BudgetPeriod::Every(d) => {
                t.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            }
            BudgetPeriod::Months(n) => chrono::DateTime::from_timestamp(t, 0)
                .and_then(|d| d.checked_add_months(chrono::Months::new(n)))
                .map_or(i64::MAX, |d| d.timestamp()),
        }
    }

    /// The first reset after `now` on the schedule that had one at `due`.
    pub fn next_after(self, due: i64, now: i64) -> i64 {
        let mut t = due;
        // Bounded: a key unused for years catches up in at most this many steps.
        for _ in 0..10_000 {
            t = self.after(t);
            if t > now {
                return t;
            }
        }
        self.after(now)
    }
}

/// Formats Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_stored_only_as_hashes() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.starts_with("sk-") && a.len() == 3 + KEY_CHARS);
        assert!(a[3..].chars().all(|c| c.is_ascii_alphanumeric()));
        let h = hash(&a);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(&a[3..]));
        let shown = display(&a);
        assert!(shown.starts_with(&a[..7]) && shown.ends_with(&a[a.len() - 4..]));
        assert!(shown.chars().count() < 13);
    }

    #[test]
    fn durations_accept_the_usual_units_and_reject_nonsense() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("12h").unwrap(), Duration::from_secs(43_200));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(2_592_000)
        );
        for bad in ["", "soon", "-5d", "0s", "12 parsecs"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn budget_periods_are_lengths_or_calendar_months() {
        assert_eq!(
            BudgetPeriod::parse("30d").unwrap(),
            BudgetPeriod::Every(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(BudgetPeriod::parse("1mo").unwrap(), BudgetPeriod::Months(1));
        for bad in ["", "0mo", "mo", "soon", "-1mo"] {
            assert!(BudgetPeriod::parse(bad).is_err(), "{bad}");
        }
        // 2026-01-31 + 1 month = 2026-02-28; + 2 months = 2026-03-31.
        let jan31 = 1_769_817_600;
        assert_eq!(rfc3339(jan31), "2026-01-31T00:00:00Z");
        assert_eq!(
            rfc3339(BudgetPeriod::Months(1).after(jan31)),
            "2026-02-28T00:00:00Z"
        );
        // A key unused for three days on a daily budget: the next reset is tomorrow.
        let day = BudgetPeriod::parse("1d").unwrap();
        let now = jan31 + 3 * 86_400 + 5;
        assert_eq!(day.next_after(jan31, now), jan31 + 4 * 86_400);
    }
}
