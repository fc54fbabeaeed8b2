//! API-key authentication. Keys arrive as `Authorization: Bearer <key>` or `X-API-Key: <key>`;
//! only their SHA-256 digests are kept in memory, and a presented key is compared against every
//! digest in constant time. Identities carry a non-secret label (a digest prefix) for logs,
//! metrics and session ownership.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::AuthConfig;
use crate::error::ApiError;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// A stable, non-secret label: `key-<8 hex of the digest>`, `master`, or `open`.
    pub label: Arc<str>,
    /// The master key (admin rights).
    pub is_master: bool,
}

/// The configured keys.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<([u8; 32], Identity)>,
    open: bool,
}

/// SHA-256 of a key.
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl KeyRing {
    /// Builds the ring from `[auth]`.
    pub fn from_config(auth: &AuthConfig) -> Self {
        let mut keys: Vec<([u8; 32], Identity)> = auth
            .api_keys
            .iter()
            .map(|k| {
                let d = digest(k.trim());
                let label = format!("key-{}", hex::encode(&d[..4]));
                (
                    d,
                    Identity {
                        label: label.into(),
                        is_master: false,
                    },
                )
            })
            .collect();
        if !auth.master_key.is_empty() {
            keys.push((
                digest(&auth.master_key),
                Identity {
                    label: "master".into(),
                    is_master: true,
                },
            ));
        }
        Self {
            open: auth.allow_open && keys.is_empty(),
            keys,
        }
    }

    /// True when no key is required.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Checks the request's key.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, ApiError> {
        let presented = presented_key(headers);
        if self.open {
            return Ok(Identity {
                label: "open".into(),
                is_master: false,
            });
        }
        let key = presented.ok_or(ApiError::Unauthorized)?;
        let d = digest(key);
        let mut found: Option<&Identity> = None;
        for (stored, identity) in &self.keys {
            // Compare against every key so timing does not reveal which one matched.
            if bool::from(stored.ct_eq(&d)) {
                found = Some(identity);
            }
        }
        found.cloned().ok_or(ApiError::Unauthorized)
    }
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?.trim();
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))?;
        return Some(token.trim()).filter(|t| !t.is_empty());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Extractor: the authenticated caller (401 otherwise).
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Arc<KeyRing>: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ring: Arc<KeyRing> = axum::extract::FromRef::from_ref(state);
        ring.authenticate(&parts.headers).map(Caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::from_config(&AuthConfig {
            api_keys: vec!["sk-alpha-123456".into(), "sk-beta-1234567".into()],
            master_key: "sk-master-12345".into(),
            ..AuthConfig::default()
        })
    }

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        h
    }

    #[test]
    fn bearer_and_x_api_key_are_accepted() {
        let r = ring();
        let a = r
            .authenticate(&headers("authorization", "Bearer sk-alpha-123456"))
            .unwrap();
        let b = r
            .authenticate(&headers("x-api-key", "sk-alpha-123456"))
            .unwrap();
        assert_eq!(a, b);
        assert!(a.label.starts_with("key-") && !a.label.contains("alpha"));
        assert!(
            r.authenticate(&headers("x-api-key", "sk-master-12345"))
                .unwrap()
                .is_master
        );
    }

    #[test]
    fn wrong_or_missing_keys_are_rejected() {
        let r = ring();
        for h in [
            headers("authorization", "Bearer nope"),
            headers("authorization", "Basic sk-alpha-123456"),
            headers("x-api-key", ""),
            HeaderMap::new(),
        ] {
            assert!(matches!(r.authenticate(&h), Err(ApiError::Unauthorized)));
        }
    }

    #[test]
    fn open_mode_needs_the_flag_and_no_keys() {
        let open = KeyRing::from_config(&AuthConfig {
            allow_open: true,
            ..AuthConfig::default()
        });
        assert!(open.is_open());
        assert!(open.authenticate(&HeaderMap::new()).is_ok());
        let closed = KeyRing::from_config(&AuthConfig::default());
        assert!(closed.authenticate(&HeaderMap::new()).is_err());
    }
}
