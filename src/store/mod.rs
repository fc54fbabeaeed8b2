//! The durable store: API keys (hashes only), spend records, session ownership and sealed
//! Claude credentials. One small trait, [`Store`]; one implementation, [`SqlStore`], over
//! `sqlx`'s `Any` driver, which gives two real backends: SQLite (embedded, the default,
//! WAL) and PostgreSQL (shared by many replicas). Versioned migrations (`migrations/<backend>/`)
//! run at open.

mod breaker;
mod seal;
mod sql;

use async_trait::async_trait;
use serde::Serialize;

pub use breaker::{Breaker, COOL_DOWN};
pub use seal::{SealError, Sealer};
pub use sql::SqlStore;

/// A store failure. The database's own message is logged, never sent to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `store.database_url` is not `sqlite://` or `postgres://`.
    #[error("unsupported database URL scheme `{0}` (use sqlite:// or postgres://)")]
    UnsupportedUrl(String),
    /// The database directory could not be created.
    #[error("cannot create the database directory {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A query or connection failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be decoded (corrupt row).
    #[error("corrupt stored value in {0}")]
    Corrupt(&'static str),
    /// The database was unreachable a moment ago; not tried again yet (see [`Breaker`]).
    #[error("the database is unavailable")]
    Unavailable,
}

impl StoreError {
    /// True when the database could not be reached (down, refusing or dropping connections,
    /// every pooled connection busy past the acquire timeout), as opposed to a failed query.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable => true,
            StoreError::Database(e) => match e {
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed => true,
                // PostgreSQL: connection exceptions (08…), shutting down or starting up (57P…),
                // too many connections.
                sqlx::Error::Database(db) => db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300"),
                _ => false,
            },
            _ => false,
        }
    }
}

/// Where a key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// `POST /key/generate` or `claude-pool keys create`.
    Api,
    /// `auth.api_keys` / `API_KEYS` (registered at start so their spend is tracked).
    Config,
}

impl KeySource {
    fn as_str(self) -> &'static str {
        match self {
            KeySource::Api => "api",
            KeySource::Config => "config",
        }
    }
    fn parse(s: &str) -> Self {
        if s == "config" {
            KeySource::Config
        } else {
            KeySource::Api
        }
    }
}

/// A stored key. The plaintext key is never stored; `id` is the hex SHA-256 of it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    /// Hex SHA-256 of the key (LiteLLM's `token`).
    pub id: String,
    /// A display form: `sk-AbC…wXyZ`.
    pub key_prefix: String,
    /// Human name.
    pub alias: Option<String>,
    /// Models (as the client names them) this key may use; empty = all.
    pub models: Vec<String>,
    /// Free-form JSON object.
    pub metadata: serde_json::Value,
    /// Total spend allowed (USD); `None` = the server default (`limits.max_cost_per_key`).
    pub max_budget: Option<f64>,
    /// Requests per minute; `None` = the server default (`limits.rate_limit_*`).
    pub rpm_limit: Option<u32>,
    /// Spend so far (USD).
    pub spend: f64,
    /// Expiry (Unix seconds).
    pub expires_at: Option<i64>,
    /// Creation (Unix seconds).
    pub created_at: i64,
    /// Last change (Unix seconds).
    pub updated_at: i64,
    /// Revocation (Unix seconds).
    pub revoked_at: Option<i64>,
    /// Where it came from.
    pub source: KeySource,
    /// The key's own Claude OAuth token, sealed ([`Sealer`]); never returned.
    pub sealed_oauth_token: Option<Vec<u8>>,
}

impl KeyRecord {
    /// The public view of a key, as the admin API and the CLI show it (no secrets; LiteLLM's
    /// field names where they exist).
    pub fn public_json(&self) -> serde_json::Value {
        use crate::keys::rfc3339;
        serde_json::json!({
            "token": self.id,
            "key_name": self.key_prefix,
            "key_alias": self.alias,
            "models": self.models,
            "metadata": self.metadata,
            "max_budget": self.max_budget,
            "rpm_limit": self.rpm_limit,
            "spend": self.spend,
            "expires": self.expires_at.map(rfc3339),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "revoked": self.revoked_at.is_some(),
            "revoked_at": self.revoked_at.map(rfc3339),
            "active": self.is_active(now_secs()),
            "source": self.source,
            "has_claude_credential": self.sealed_oauth_token.is_some(),
        })
    }

    /// True when the key may be used at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| now < t)
    }
}

/// A key to insert.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Hex SHA-256 of the key.
    pub id: String,
    /// Display form.
    pub key_prefix: String,
    /// See [`KeyRecord`].
    pub alias: Option<String>,
    /// See [`KeyRecord`].
    pub models: Vec<String>,
    /// See [`KeyRecord`].
    pub metadata: serde_json::Value,
    /// See [`KeyRecord`].
    pub max_budget: Option<f64>,
    /// See [`KeyRecord`].
    pub rpm_limit: Option<u32>,
    /// See [`KeyRecord`].
    pub expires_at: Option<i64>,
    /// See [`KeyRecord`].
    pub source: KeySource,
    /// See [`KeyRecord`].
    pub sealed_oauth_token: Option<Vec<u8>>,
}

/// Changes to a key; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct KeyUpdate {
    /// New alias.
    pub alias: Option<Option<String>>,
    /// New model scope.
    pub models: Option<Vec<String>>,
    /// New metadata.
    pub metadata: Option<serde_json::Value>,
    /// New budget.
    pub max_budget: Option<Option<f64>>,
    /// New rate limit.
    pub rpm_limit: Option<Option<u32>>,
    /// New expiry.
    pub expires_at: Option<Option<i64>>,
    /// New sealed Claude credential.
    pub sealed_oauth_token: Option<Option<Vec<u8>>>,
}

/// What one turn cost, recorded once per turn.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendRecord {
    /// The key's id (`master` for the master key, `open` in open mode).
    pub key_id: String,
    /// The gateway session.
    pub session_id: Option<String>,
    /// The model the client asked for.
    pub model: String,
    /// Input tokens (including cache reads and writes).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost in USD as the CLI reported it.
    pub cost_usd: f64,
    /// Wall time of the turn.
    pub duration_ms: u64,
    /// `completed`, `failed`, `interrupted` or `cost_limit`.
    pub status: &'static str,
    /// Unix seconds.
    pub created_at: i64,
}

/// Spend totals of one key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeySpend {
    /// The key's id.
    pub token: String,
    /// Its display form (`sk-AbCd…wXyZ`).
    pub key_name: String,
    /// Its alias.
    pub key_alias: Option<String>,
    /// Total spend (USD).
    pub spend: f64,
    /// Its budget, if any.
    pub max_budget: Option<f64>,
    /// Turns recorded.
    pub requests: i64,
    /// Input tokens recorded.
    pub prompt_tokens: i64,
    /// Output tokens recorded.
    pub completion_tokens: i64,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRecord {
    /// The session id.
    pub id: String,
    /// The owning key's id.
    #[serde(skip)]
    pub owner: String,
    /// Creation (Unix seconds).
    pub created_at: i64,
    /// Last turn (Unix seconds).
    pub last_used_at: i64,
    /// Turns recorded.
    pub turns: i64,
}

/// The store's operations. Every method is one short transaction or less.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// A trivial round trip (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Inserts a key; fails if its id exists.
    async fn insert_key(&self, key: &NewKey) -> Result<KeyRecord, StoreError>;
    /// Registers a configured key if it is not stored yet (a revoked one stays revoked).
    async fn ensure_key(&self, key: &NewKey) -> Result<(), StoreError>;
    /// A key by id (hash), whatever its state.
    async fn key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError>;
    /// All keys, newest first.
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Applies changes; `None` if the key does not exist.
    async fn update_key(
        &self,
        id: &str,
        update: &KeyUpdate,
    ) -> Result<Option<KeyRecord>, StoreError>;
    /// Revokes keys; returns the ids that existed and were active.
    async fn revoke_keys(&self, ids: &[String]) -> Result<Vec<String>, StoreError>;
    /// Records turns and adds their cost to their keys' spend and their sessions' counters,
    /// all in one transaction.
    async fn record_spend(&self, records: &[SpendRecord]) -> Result<(), StoreError>;
    /// Spend per key, highest first.
    async fn spend_by_key(&self) -> Result<Vec<KeySpend>, StoreError>;
    /// Spend records of one key, newest first (at most `limit`).
    async fn spend_records(&self, key_id: &str, limit: i64)
    -> Result<Vec<SpendRecord>, StoreError>;
    /// Creates a session owned by `owner` unless the id exists; returns the stored session and
    /// whether this call created it.
    async fn claim_session(
        &self,
        id: &str,
        owner: &str,
    ) -> Result<(SessionRecord, bool), StoreError>;
    /// A session by id.
    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// The sessions of one owner, most recently used first.
    async fn list_sessions(&self, owner: &str) -> Result<Vec<SessionRecord>, StoreError>;
    /// Deletes a session of `owner`; false if there was none.
    async fn delete_session(&self, id: &str, owner: &str) -> Result<bool, StoreError>;
    /// Deletes sessions last used before `unused_since` (Unix seconds); returns how many.
    async fn prune_sessions(&self, unused_since: i64) -> Result<u64, StoreError>;
}

/// Unix seconds now.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Opens the configured store (creating an SQLite file and its directory on first start) and
/// runs the migrations.
pub async fn open(
    config: &crate::config::StoreConfig,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(std::sync::Arc::new(Breaker::new(
        SqlStore::open(&config.database_url, config.max_connections).await?,
    )))
}
