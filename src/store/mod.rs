//! The durable store: API keys (hashes only), spend records, session ownership, sealed
//! Claude credentials, and what replicas share: request-rate state, budget holds,
//! conversations' transcripts and Responses API responses. One small trait, [`Store`]; one implementation, [`SqlStore`], over
//! `sqlx`'s `Any` driver, which gives two real backends: SQLite (embedded, the default,
//! WAL) and PostgreSQL (shared by many replicas). Versioned migrations (`migrations/<backend>/`)
//! run at open.

pub(crate) mod batch;
mod breaker;
mod budget;
mod records;
mod seal;
mod sql;
pub mod timing;

use async_trait::async_trait;

pub use breaker::{Breaker, COOL_DOWN};
pub use budget::{BudgetHold, HoldSizes};
pub use records::{
    KeyFilter, KeyPolicy, KeyRecord, KeySource, KeySpend, KeyUpdate, NewKey, RateTake,
    SessionRecord, SpendFilter, SpendRecord, TagSpend,
};
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

/// The store's operations. Every method is one short transaction or less.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// A trivial round trip (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Takes one request of a key from the rate state shared by replicas (GCRA: one request per
    /// `interval_ms`, `tolerance_ms` of burst), atomically.
    async fn take_rate(
        &self,
        key_id: &str,
        now_ms: i64,
        interval_ms: i64,
        tolerance_ms: i64,
    ) -> Result<RateTake, StoreError>;
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
    /// A page of keys (newest first) and how many match in all.
    async fn list_keys_page(&self, filter: &KeyFilter)
    -> Result<(Vec<KeyRecord>, i64), StoreError>;
    /// Blocks or unblocks a key; `None` if it does not exist.
    async fn set_blocked(
        &self,
        id: &str,
        blocked: bool,
        now: i64,
    ) -> Result<Option<KeyRecord>, StoreError>;
    /// Gives an active key a new secret in one transaction: a row under `new_id` with the old
    /// one's settings and spend, and the old row revoked. `None` if the old key is not active.
    async fn regenerate_key(
        &self,
        old_id: &str,
        new_id: &str,
        new_prefix: &str,
        now: i64,
    ) -> Result<Option<KeyRecord>, StoreError>;
    /// Sets the spend of every key whose budget reset is due at `now` back to 0 and moves its
    /// reset to the next period; returns their ids.
    async fn reset_due_budgets(&self, now: i64) -> Result<Vec<String>, StoreError>;
    /// Spend per tag in a time range, highest first.
    async fn spend_by_tag(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Vec<TagSpend>, StoreError>;
    /// A page of spend records (newest first) and how many match in all.
    async fn spend_log(&self, filter: &SpendFilter) -> Result<(Vec<SpendRecord>, i64), StoreError>;
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
    /// Creates new sessions `(id, owner)` with fresh ids, all in one transaction.
    async fn create_sessions(&self, sessions: &[(String, String)]) -> Result<(), StoreError>;
    /// A session by id.
    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// The sessions of one owner, most recently used first.
    async fn list_sessions(&self, owner: &str) -> Result<Vec<SessionRecord>, StoreError>;
    /// Sets a session's system prompt.
    async fn set_session_prompt(&self, id: &str, prompt: &str) -> Result<(), StoreError>;
    /// A session's system prompt, if it has one.
    async fn session_prompt(&self, id: &str) -> Result<Option<String>, StoreError>;
    /// Deletes a session of `owner`; false if there was none.
    async fn delete_session(&self, id: &str, owner: &str) -> Result<bool, StoreError>;
    /// Deletes sessions last used before `unused_since` (Unix seconds); returns how many.
    async fn prune_sessions(&self, unused_since: i64) -> Result<u64, StoreError>;

    /// Keeps parts of conversations' transcripts, in one transaction: each part's `data` goes
    /// at byte `start` of its CLI session's file. `start == 0` replaces what was kept;
    /// otherwise the part is appended only if what is kept is that CLI session's and ends
    /// exactly at `start`. Returns, per part, whether it was kept (false: that condition did
    /// not hold; the caller then keeps the whole file).
    async fn keep_transcripts(&self, parts: &[TranscriptPart]) -> Result<Vec<bool>, StoreError>;
    /// Holds part of `key_id`'s `budget` for an admitted turn (id `hold_id`, lapsing at
    /// `expires_at` if never released), unless the key's spend, or its spend plus what other
    /// running turns hold, has reached the budget: the estimate of `sizes` far from the
    /// budget, its worst case near it ([`BudgetHold::decide`]). Decisions for one key are
    /// serialized.
    async fn hold_budget(
        &self,
        key_id: &str,
        hold_id: &str,
        sizes: HoldSizes,
        budget: f64,
        expires_at: i64,
    ) -> Result<BudgetHold, StoreError>;
    /// Releases a hold (its turn's spend is recorded).
    async fn release_budget(&self, hold_id: &str) -> Result<(), StoreError>;
    /// Stores a Responses API response as the newest of its conversation.
    async fn put_response(&self, response: &ResponseRecord) -> Result<(), StoreError>;
    /// A stored response (whoever owns it).
    async fn response(&self, id: &str) -> Result<Option<ResponseRecord>, StoreError>;
    /// The newest response of a conversation.
    async fn latest_response(&self, session_id: &str) -> Result<Option<String>, StoreError>;
    /// Deletes a response of `owner`; false if there was none.
    async fn delete_response(&self, id: &str, owner: &str) -> Result<bool, StoreError>;
    /// Deletes responses created before `before` (Unix seconds); returns how many.
    async fn prune_responses(&self, before: i64) -> Result<u64, StoreError>;
    /// Which CLI session's transcript is kept for a conversation, and its length.
    async fn transcript_head(&self, session_id: &str) -> Result<Option<(String, i64)>, StoreError>;
    /// A conversation's kept transcript.
    async fn transcript(&self, session_id: &str) -> Result<Option<StoredTranscript>, StoreError>;
}

/// A Responses API response as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseRecord {
    /// `resp_...`.
    pub id: String,
    /// The owning key's id.
    pub owner: String,
    /// Its conversation (the session id within the owner's scope).
    pub session_id: String,
    /// The conversation's messages up to and including its answer (JSON).
    pub history: String,
    /// The response object (JSON).
    pub object: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// Part of a conversation's transcript to keep ([`Store::keep_transcripts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptPart {
    /// The conversation (the store's session id).
    pub session_id: String,
    /// The CLI session whose file this is part of.
    pub cli_session_id: String,
    /// Where in the file the part starts.
    pub start: i64,
    /// Whole JSON lines of the file.
    pub data: String,
}

/// A conversation's transcript as kept in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTranscript {
    /// The CLI session it belongs to (the file's name).
    pub cli_session_id: String,
    /// The file's content.
    pub data: String,
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
