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
}
