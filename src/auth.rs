//! Authentication. Keys arrive as `Authorization: Bearer <key>` or `X-API-Key: <key>`. The
//! master key (`auth.master_key`) is compared in constant time and grants the admin API;
//! every other key is looked up by its SHA-256 in the store (configured `API_KEYS` are
//! registered there at start), through an in-memory cache: hits for [`POSITIVE_TTL`]
//! ([`SHARED_POSITIVE_TTL`] on PostgreSQL, where replicas share the keys), misses for
//! [`NEGATIVE_TTL`]. Revoking or changing a key on this replica drops its cache entry at once;
//! other replicas see the change, and the spend recorded there, within the hit lifetime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use claude_pool_actors::Secret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::AuthConfig;
use crate::error::ApiError;
use crate::keys;
use crate::store::{KeyRecord, KeySource, NewKey, Sealer, Store, StoreError, now_secs};

/// How long a found key is served from the cache.
pub const POSITIVE_TTL: Duration = Duration::from_secs(5);
/// The same on a store shared by replicas: spend and changes made by the others count within
/// a second (one key read per key and second per replica).
pub const SHARED_POSITIVE_TTL: Duration = Duration::from_secs(1);
/// How long an unknown key is remembered as unknown.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(1);
/// Entries kept before the cache is emptied (bounds memory under key-guessing floods).
const CACHE_CAPACITY: usize = 100_000;

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Stable id: the key's hash, or `master` / `open`. Owns sessions, keys spend.
    pub key_id: Arc<str>,
    /// Non-secret label for logs and metrics: `key-<8 hex>`, `master` or `open`.
    pub label: Arc<str>,
    /// The master key (admin rights, no limits).
    pub is_master: bool,
    /// The stored key (scope, limits, budget); `None` for master and open mode.
    pub key: Option<Arc<KeyRecord>>,
    /// The key's own Claude credential.
    pub oauth_token: Option<Secret>,
}

impl Identity {
    fn special(name: &str, is_master: bool) -> Self {
        Self {
            key_id: name.into(),
            label: name.into(),
            is_master,
            key: None,
            oauth_token: None,
        }
    }

    /// Whether this caller may use `requested` (the client's name) resolving to `claude`.
    pub fn allows_model(&self, requested: &str, claude: &str) -> bool {
        match &self.key {
            Some(k) if !k.models.is_empty() => {
                k.models.iter().any(|m| m == requested || m == claude)
            }
            _ => true,
        }
    }
}

#[derive(Debug, Clone)]
struct Cached {
    at: Instant,
    found: Option<(Arc<KeyRecord>, Option<Secret>)>,
}

/// Checks keys; owns the key cache.
#[derive(Debug)]
pub struct Authenticator {
    master: Option<[u8; 32]>,
    open: bool,
    store: Arc<dyn Store>,
    sealer: Sealer,
    cache: Mutex<HashMap<String, Cached>>,
    /// How long a found key is served from the cache.
    positive_ttl: Duration,
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl Authenticator {
    /// Registers the configured keys in the store and builds the authenticator.
    pub async fn new(
        auth: &AuthConfig,
        store: Arc<dyn Store>,
        sealer: Sealer,
    ) -> Result<Self, StoreError> {
        for key in auth.api_keys.iter().map(|k| k.trim()) {
            store
                .ensure_key(&NewKey {
                    id: keys::hash(key),
                    key_prefix: keys::display(key),
                    alias: None,
                    models: Vec::new(),
                    metadata: serde_json::json!({}),
                    max_budget: None,
                    rpm_limit: None,
                    expires_at: None,
                    source: KeySource::Config,
                    sealed_oauth_token: None,
                    policy: Default::default(),
                })
                .await?;
        }
        let master = (!auth.master_key.is_empty()).then(|| sha256(&auth.master_key));
        // Open mode only when no key exists at all; the store is asked only if it matters.
        let open = auth.allow_open && master.is_none() && store.list_keys().await?.is_empty();
        let positive_ttl = if store.backend() == "postgres" {
            SHARED_POSITIVE_TTL
        } else {
            POSITIVE_TTL
        };
        Ok(Self {
            open,
            master,
            positive_ttl,
            store,
            sealer,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// True when no key is required.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// True when a master key is configured.
    pub fn has_master(&self) -> bool {
        self.master.is_some()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks the request's key.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, ApiError> {
        let Some(presented) = presented_key(headers) else {
            return if self.open {
                Ok(Identity::special("open", false))
            } else {
                Err(ApiError::Unauthorized)
            };
        };
        if self.is_master_key(presented) {
            return Ok(Identity::special("master", true));
        }
        let id = keys::hash(presented);
        let (record, oauth_token) = self.lookup(&id).await?.ok_or(ApiError::Unauthorized)?;
        let now = now_secs();
        // LiteLLM's wording for expired and blocked keys, which scripts look for.
        if record.revoked_at.is_some() {
            return Err(ApiError::KeyRejected(
                "this API key has been revoked".into(),
            ));
        }
        if let Some(t) = record.expires_at.filter(|t| now >= *t) {
            return Err(ApiError::KeyRejected(format!(
                "Authentication Error - Expired Key. Key Expiry time {} and current time {}",
                keys::rfc3339(t),
                keys::rfc3339(now)
            )));
        }
        if record.blocked_at.is_some() {
            return Err(ApiError::KeyRejected(
                "Authentication Error, Key is blocked. Update via `/key/unblock` if you're admin."
                    .into(),
            ));
        }
        Ok(Identity {
            label: keys::label(&id).into(),
            key_id: id.into(),
            is_master: false,
            key: Some(record),
            oauth_token,
        })
    }

    /// True for the master key (constant-time comparison).
    pub fn is_master_key(&self, presented: &str) -> bool {
        self.master
            .is_some_and(|m| bool::from(m.ct_eq(&sha256(presented))))
    }

    async fn lookup(&self, id: &str) -> Result<Option<(Arc<KeyRecord>, Option<Secret>)>, ApiError> {
        if let Some(c) = self.cache().get(id) {
            let ttl = if c.found.is_some() {
                self.positive_ttl
            } else {
                NEGATIVE_TTL
            };
            if c.at.elapsed() < ttl {
                return Ok(c.found.clone());
            }
        }
        let found = self.store.key(id).await?.map(|record| {
            let token = record.sealed_oauth_token.as_deref().and_then(|sealed| {
                match self.sealer.open(sealed) {
                    Ok(t) => Some(Secret::new(t)),
                    Err(e) => {
                        tracing::error!(key = %keys::label(id), error = %e, "cannot open the key's Claude credential; using the server's");
                        None
                    }
                }
            });
            (Arc::new(record), token)
        });
        let mut cache = self.cache();
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(
            id.to_owned(),
            Cached {
                at: Instant::now(),
                found: found.clone(),
            },
        );
        Ok(found)
    }

    /// Forgets a key's cached state (after revoke or update).
    pub fn invalidate(&self, id: &str) {
        self.cache().remove(id);
    }

    /// The key's spend as cached here (with this replica's settled turns), if cached.
    pub fn cached_spend(&self, id: &str) -> Option<f64> {
        self.cache()
            .get(id)
            .and_then(|c| c.found.as_ref().map(|(record, _)| record.spend))
    }

    /// Adds a turn's cost to the cached spend, so budget checks on this replica see it before
    /// the next refresh from the store.
    pub fn add_spend(&self, id: &str, cost_usd: f64) {
        if let Some(Some((record, _))) = self.cache().get_mut(id).map(|c| &mut c.found) {
            Arc::make_mut(record).spend += cost_usd;
        }
    }
}

/// The key presented with a request, if any.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
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

/// Extractor: the caller, as authenticated by the API gate middleware (401 otherwise).
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Identity>()
            .cloned()
            .map(Caller)
            .ok_or(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        h
    }

    #[test]
    fn bearer_and_x_api_key_are_read_and_other_schemes_are_not() {
        assert_eq!(
            presented_key(&headers("authorization", "Bearer sk-a")),
            Some("sk-a")
        );
        assert_eq!(presented_key(&headers("x-api-key", " sk-a ")), Some("sk-a"));
        assert_eq!(presented_key(&headers("authorization", "Basic sk-a")), None);
        assert_eq!(presented_key(&headers("x-api-key", "")), None);
        assert_eq!(presented_key(&HeaderMap::new()), None);
    }

    #[test]
    fn model_scope_matches_the_requested_or_resolved_name() {
        let mut id = Identity::special("x", false);
        assert!(id.allows_model("gpt-4", "opus"));
        id.key = Some(Arc::new(KeyRecord {
            id: "x".into(),
            key_prefix: "sk-…".into(),
            alias: None,
            models: vec!["gpt-4".into(), "haiku".into()],
            metadata: serde_json::json!({}),
            max_budget: None,
            rpm_limit: None,
            spend: 0.0,
            expires_at: None,
            created_at: 0,
            updated_at: 0,
            revoked_at: None,
            source: KeySource::Api,
            sealed_oauth_token: None,
            policy: Default::default(),
            blocked_at: None,
        }));
        assert!(id.allows_model("gpt-4", "opus"));
        assert!(id.allows_model("gpt-3.5-turbo", "haiku"));
        assert!(!id.allows_model("sonnet", "sonnet"));
    }
}
