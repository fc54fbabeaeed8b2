//! Sign-in state of the console: server-side sessions (the cookie holds a random id; the
//! server keeps its SHA-256, its CSRF token and its expiry), sign-in tokens for the signed-out
//! pages (HMAC-signed and time-limited, so a page from another site cannot sign a browser in),
//! and the per-address limit on sign-in attempts.
//!
//! Sessions live in this replica's memory: a restart signs operators out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie (`__Host-`: Secure, no Domain, Path=/ are enforced by browsers).
pub const COOKIE: &str = "__Host-claude-pool-session";
/// Sessions kept at most (the oldest is dropped beyond it).
const MAX_SESSIONS: usize = 1024;
/// How long a sign-in page's token is accepted.
const SIGN_IN_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Sign-in attempts per address and minute.
pub const SIGN_INS_PER_MINUTE: u32 = 5;

type KeyedLimiter =
    RateLimiter<IpAddr, governor::state::keyed::DefaultKeyedStateStore<IpAddr>, DefaultClock>;

struct Session {
    csrf: String,
    expires: Instant,
}

/// The console's sessions, sign-in tokens and sign-in limit.
pub struct Sessions {
    ttl: Duration,
    live: Mutex<HashMap<[u8; 32], Session>>,
    /// Signs sign-in tokens; random per process.
    signing_key: [u8; 32],
    attempts: KeyedLimiter,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").field("ttl", &self.ttl).finish()
    }
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Sessions {
    /// Sessions lasting `ttl`.
    pub fn new(ttl: Duration) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(SIGN_INS_PER_MINUTE).expect("non-zero"));
        Self {
            ttl,
            live: Mutex::new(HashMap::new()),
            signing_key: rand::random(),
            attempts: RateLimiter::keyed(quota),
        }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session: its cookie value and its CSRF token.
    pub fn create(&self) -> (String, String) {
        let (id, csrf) = (random_token(), random_token());
        let now = Instant::now();
        let mut live = self.live();
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS {
            if let Some(oldest) = live.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                live.remove(&oldest);
            }
        }
        live.insert(
            digest(&id),
            Session {
                csrf: csrf.clone(),
                expires: now + self.ttl,
            },
        );
        (id, csrf)
    }

    /// The CSRF token of a live session.
    pub fn csrf_of(&self, id: &str) -> Option<String> {
        let mut live = self.live();
        let key = digest(id);
        match live.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.csrf.clone()),
            Some(_) => {
                live.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        self.live().remove(&digest(id));
    }

    fn mac(&self, issued: u64) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.signing_key).expect("any key length");
        mac.update(b"claude-pool sign-in token\0");
        mac.update(&issued.to_be_bytes());
        mac
    }

    /// A token for a sign-in page (`issued.signature`).
    pub fn sign_in_token(&self) -> String {
        let issued = unix_now();
        let tag = self.mac(issued).finalize().into_bytes();
        format!("{issued}.{}", hex::encode(tag))
    }

    /// Whether `token` is a sign-in token of this server, less than an hour old.
    pub fn check_sign_in_token(&self, token: &str) -> bool {
        let Some((issued, tag)) = token.split_once('.') else {
            return false;
        };
        let (Ok(issued), Ok(tag)) = (issued.parse::<u64>(), hex::decode(tag)) else {
            return false;
        };
        let fresh = unix_now().saturating_sub(issued) <= SIGN_IN_TOKEN_TTL.as_secs();
        fresh && self.mac(issued).verify_slice(&tag).is_ok()
    }

    /// Counts a sign-in attempt from `ip`; `Err(wait)` when over the limit.
    pub fn attempt(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.attempts.len() > 10_000 {
            self.attempts.retain_recent();
        }
        self.attempts
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// Constant-time equality of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_carry_their_csrf_token_until_they_end_or_expire() {
        let s = Sessions::new(Duration::from_secs(60));
        let (id, csrf) = s.create();
        assert_eq!(s.csrf_of(&id).as_deref(), Some(csrf.as_str()));
        assert_eq!(s.csrf_of("nope"), None);
        s.end(&id);
        assert_eq!(s.csrf_of(&id), None);
        let short = Sessions::new(Duration::ZERO);
        let (id, _) = short.create();
        assert_eq!(short.csrf_of(&id), None);
    }

    #[test]
    fn sign_in_tokens_are_checked_by_signature_and_age() {
        let s = Sessions::new(Duration::from_secs(60));
        let t = s.sign_in_token();
        assert!(s.check_sign_in_token(&t));
        assert!(!Sessions::new(Duration::from_secs(60)).check_sign_in_token(&t));
        let (issued, tag) = t.split_once('.').unwrap();
        let old = issued.parse::<u64>().unwrap() - 7200;
        assert!(!s.check_sign_in_token(&format!("{old}.{tag}")));
        let stale = format!("{old}.{}", hex::encode(s.mac(old).finalize().into_bytes()));
        assert!(!s.check_sign_in_token(&stale));
        assert!(!s.check_sign_in_token("garbage"));
    }

    #[test]
    fn an_address_gets_five_sign_in_attempts_a_minute() {
        let s = Sessions::new(Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..SIGN_INS_PER_MINUTE {
            assert!(s.attempt(ip).is_ok());
        }
        let wait = s.attempt(ip).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(12),
            "{wait:?}"
        );
        assert!(s.attempt("192.0.2.2".parse().unwrap()).is_ok());
        assert!(same_token("abc", "abc") && !same_token("abc", "abd") && !same_token("a", "ab"));
    }
}
