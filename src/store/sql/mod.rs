//! [`SqlStore`]: the [`Store`] over `sqlx`'s `Any` driver. The SQL is written once, in the
//! dialect SQLite and PostgreSQL share (`$n` parameters, `ON CONFLICT`, `RETURNING`); only the
//! migrations differ per backend (column types). Keys, spend and sessions each have their
//! module; this one connects, migrates and implements [`Store`] by delegating to them.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Connection};

use super::{
    BudgetHold, HoldSizes, KeyFilter, KeyRecord, KeySpend, KeyUpdate, NewKey, RateTake,
    ResponseRecord, SessionRecord, SpendFilter, SpendRecord, Store, StoreError, StoredTranscript,
    TagSpend, TranscriptPart,
};

mod holds;
mod keys;
mod rates;
mod responses;
mod sessions;
mod spend;
mod transcripts;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The SQL store (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: &'static str,
}

/// `sqlite://path` → the path, and the URL with `mode=rwc` so the file is created.
fn sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = rest.split('?').next().unwrap_or_default();
    if !path.is_empty() && path != ":memory:" {
        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                path: dir.display().to_string(),
                source,
            })?;
        }
    }
    Ok(if rest.contains("mode=") {
        url.to_owned()
    } else if rest.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}

impl SqlStore {
    /// Connects and migrates; `max_connections` 0 takes the backend's default.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let scheme = url.split(':').next().unwrap_or_default();
        let (backend, url) = match scheme {
            "sqlite" => ("sqlite", sqlite_url(url)?),
            "postgres" | "postgresql" => ("postgres", url.to_owned()),
            other => return Err(StoreError::UnsupportedUrl(other.to_owned())),
        };
        let options: AnyConnectOptions = url.parse()?;
        // One direct connection first: a pool would report an unreachable server only as a
        // timeout, this gives the real cause (refused, unknown database, bad password).
        sqlx::AnyConnection::connect_with(&options)
            .await?
            .close()
            .await?;
        let sqlite = backend == "sqlite";
        let pool = AnyPoolOptions::new()
            .max_connections(match max_connections {
                0 if sqlite => 4,
                0 => 8,
                n => n,
            })
            // Bounds how long a request waits for an unreachable database (then 503; the
            // breaker makes the following ones fail at once).
            .acquire_timeout(Duration::from_secs(3))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if sqlite {
                        // WAL: readers never block the writer; NORMAL is durable in WAL mode
                        // against process crashes. Writers wait for each other, not fail.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA busy_timeout = 10000",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let migrator = if sqlite {
            &SQLITE_MIGRATIONS
        } else {
            &POSTGRES_MIGRATIONS
        };
        migrator.run(&pool).await?;
        Ok(Self { pool, backend })
    }

    /// The connection pool (tests inspect the database through it).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// A nullable float as a parameter: text, cast in SQL (`CAST($n AS DOUBLE PRECISION)`).
/// sqlx's `Any` driver binds a NULL `f64` as PostgreSQL `float4`; the prepared statement is
/// cached per connection with that type, and the next non-NULL `f64` on the same connection
/// fails with "incorrect binary data format". Text has one type whatever the value.
fn float_param(v: Option<f64>) -> Option<String> {
    v.map(|x| x.to_string())
}

fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// Saturating conversion for token counts and durations.
fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `LIMIT` and `OFFSET` of a 1-based page.
fn page_bounds(page: u32, size: u32) -> (i64, i64) {
    let size = i64::from(size.max(1));
    (size, i64::from(page.max(1) - 1) * size)
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        self.backend
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn take_rate(
        &self,
        key_id: &str,
        now_ms: i64,
        interval_ms: i64,
        tolerance_ms: i64,
    ) -> Result<RateTake, StoreError> {
        rates::take(&self.pool, key_id, now_ms, interval_ms, tolerance_ms).await
    }

    async fn insert_key(&self, k: &NewKey) -> Result<KeyRecord, StoreError> {
        keys::insert(&self.pool, k).await
    }

    async fn ensure_key(&self, k: &NewKey) -> Result<(), StoreError> {
        keys::ensure(&self.pool, k).await
    }

    async fn key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        keys::get(&self.pool, id).await
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        keys::list(&self.pool).await
    }

    async fn update_key(&self, id: &str, u: &KeyUpdate) -> Result<Option<KeyRecord>, StoreError> {
        keys::update(&self.pool, id, u).await
    }

    async fn revoke_keys(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        keys::revoke(&self.pool, ids).await
    }

    async fn list_keys_page(
        &self,
        filter: &KeyFilter,
    ) -> Result<(Vec<KeyRecord>, i64), StoreError> {
        keys::page(&self.pool, filter).await
    }

    async fn set_blocked(
        &self,
        id: &str,
        blocked: bool,
        now: i64,
    ) -> Result<Option<KeyRecord>, StoreError> {
        keys::set_blocked(&self.pool, id, blocked, now).await
    }

    async fn regenerate_key(
        &self,
        old_id: &str,
        new_id: &str,
        new_prefix: &str,
        now: i64,
    ) -> Result<Option<KeyRecord>, StoreError> {
        keys::regenerate(&self.pool, old_id, new_id, new_prefix, now).await
    }

    async fn reset_due_budgets(&self, now: i64) -> Result<Vec<String>, StoreError> {
        keys::reset_due_budgets(&self.pool, now).await
    }

    async fn record_spend(&self, records: &[SpendRecord]) -> Result<(), StoreError> {
        spend::record(&self.pool, records).await
    }

    async fn spend_by_key(&self) -> Result<Vec<KeySpend>, StoreError> {
        spend::by_key(&self.pool).await
    }

    async fn spend_records(
        &self,
        key_id: &str,
        limit: i64,
    ) -> Result<Vec<SpendRecord>, StoreError> {
        let filter = SpendFilter {
            key_id: Some(key_id.to_owned()),
            page: 1,
            size: u32::try_from(limit).unwrap_or(u32::MAX),
            ..SpendFilter::default()
        };
        Ok(spend::log(&self.pool, &filter).await?.0)
    }

    async fn spend_by_tag(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Vec<TagSpend>, StoreError> {
        spend::by_tag(&self.pool, since, until).await
    }

    async fn spend_log(&self, filter: &SpendFilter) -> Result<(Vec<SpendRecord>, i64), StoreError> {
        spend::log(&self.pool, filter).await
    }

    async fn claim_session(
        &self,
        id: &str,
        owner: &str,
    ) -> Result<(SessionRecord, bool), StoreError> {
        sessions::claim(&self.pool, id, owner).await
    }

    async fn create_sessions(&self, new: &[(String, String)]) -> Result<(), StoreError> {
        sessions::create_many(&self.pool, new).await
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        sessions::get(&self.pool, id).await
    }

    async fn list_sessions(&self, owner: &str) -> Result<Vec<SessionRecord>, StoreError> {
        sessions::list(&self.pool, owner).await
    }

    async fn set_session_prompt(&self, id: &str, prompt: &str) -> Result<(), StoreError> {
        sessions::set_prompt(&self.pool, id, prompt).await
    }

    async fn session_prompt(&self, id: &str) -> Result<Option<String>, StoreError> {
        sessions::prompt(&self.pool, id).await
    }

    async fn delete_session(&self, id: &str, owner: &str) -> Result<bool, StoreError> {
        sessions::delete(&self.pool, id, owner).await
    }

    async fn prune_sessions(&self, unused_since: i64) -> Result<u64, StoreError> {
        sessions::prune(&self.pool, unused_since).await
    }

    async fn keep_transcripts(&self, parts: &[TranscriptPart]) -> Result<Vec<bool>, StoreError> {
        transcripts::keep(&self.pool, parts).await
    }

    async fn hold_budget(
        &self,
        key_id: &str,
        hold_id: &str,
        sizes: HoldSizes,
        budget: f64,
        expires_at: i64,
    ) -> Result<BudgetHold, StoreError> {
        let postgres = self.backend() == "postgres";
        holds::hold(
            &self.pool,
            postgres,
            key_id,
            hold_id,
            sizes,
            budget,
            super::now_secs(),
            expires_at,
        )
        .await
    }

    async fn release_budget(&self, hold_id: &str) -> Result<(), StoreError> {
        holds::release(&self.pool, hold_id).await
    }

    async fn put_response(&self, response: &ResponseRecord) -> Result<(), StoreError> {
        responses::put(&self.pool, response).await
    }

    async fn response(&self, id: &str) -> Result<Option<ResponseRecord>, StoreError> {
        responses::get(&self.pool, id).await
    }

    async fn latest_response(&self, session_id: &str) -> Result<Option<String>, StoreError> {
        responses::latest(&self.pool, session_id).await
    }

    async fn delete_response(&self, id: &str, owner: &str) -> Result<bool, StoreError> {
        responses::delete(&self.pool, id, owner).await
    }

    async fn prune_responses(&self, before: i64) -> Result<u64, StoreError> {
        responses::prune(&self.pool, before).await
    }

    async fn transcript_head(&self, session_id: &str) -> Result<Option<(String, i64)>, StoreError> {
        transcripts::head(&self.pool, session_id).await
    }

    async fn transcript(&self, session_id: &str) -> Result<Option<StoredTranscript>, StoreError> {
        transcripts::get(&self.pool, session_id).await
    }
}
