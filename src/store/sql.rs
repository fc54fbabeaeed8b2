//! [`SqlStore`]: the [`Store`] over `sqlx`'s `Any` driver. The SQL is written once, in the
//! dialect SQLite and PostgreSQL share (`$n` parameters, `ON CONFLICT`, `RETURNING`); only the
//! migrations differ per backend (column types).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Connection, Row};

use super::{
    KeyRecord, KeySource, KeySpend, KeyUpdate, NewKey, SessionRecord, SpendRecord, Store,
    StoreError, now_secs,
};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The SQL store (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: &'static str,
}

const SESSION_COLUMNS: &str = "id, owner, created_at, last_used_at, turns";

const KEY_COLUMNS: &str = "id, key_prefix, key_alias, models, metadata, max_budget, rpm_limit, \
     spend, expires_at, created_at, updated_at, revoked_at, source, oauth_token";

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

fn key_from_row(row: &AnyRow) -> Result<KeyRecord, StoreError> {
    let models: String = row.try_get("models")?;
    let metadata: String = row.try_get("metadata")?;
    let source: String = row.try_get("source")?;
    let rpm: Option<i64> = row.try_get("rpm_limit")?;
    Ok(KeyRecord {
        id: row.try_get("id")?,
        key_prefix: row.try_get("key_prefix")?,
        alias: row.try_get("key_alias")?,
        models: serde_json::from_str(&models).map_err(|_| StoreError::Corrupt("keys.models"))?,
        metadata: serde_json::from_str(&metadata)
            .map_err(|_| StoreError::Corrupt("keys.metadata"))?,
        max_budget: row.try_get("max_budget")?,
        rpm_limit: rpm.map(|r| u32::try_from(r).unwrap_or(u32::MAX)),
        spend: row.try_get("spend")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        revoked_at: row.try_get("revoked_at")?,
        source: KeySource::parse(&source),
        sealed_oauth_token: row.try_get("oauth_token")?,
    })
}

fn session_from_row(row: &AnyRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        turns: row.try_get("turns")?,
    })
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

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        self.backend
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_key(&self, k: &NewKey) -> Result<KeyRecord, StoreError> {
        let now = now_secs();
        let sql = format!(
            "INSERT INTO keys ({KEY_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, CAST($6 AS DOUBLE PRECISION), $7, 0, $8, $9, $9, NULL, $10, $11) \
             RETURNING {KEY_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&k.id)
            .bind(&k.key_prefix)
            .bind(k.alias.clone())
            .bind(json_text(&k.models))
            .bind(json_text(&k.metadata))
            .bind(float_param(k.max_budget))
            .bind(k.rpm_limit.map(i64::from))
            .bind(k.expires_at)
            .bind(now)
            .bind(k.source.as_str())
            .bind(k.sealed_oauth_token.clone())
            .fetch_one(&self.pool)
            .await?;
        key_from_row(&row)
    }

    async fn ensure_key(&self, k: &NewKey) -> Result<(), StoreError> {
        let now = now_secs();
        sqlx::query(
            "INSERT INTO keys (id, key_prefix, key_alias, models, metadata, created_at, \
             updated_at, source) VALUES ($1, $2, $3, '[]', '{}', $4, $4, $5) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&k.id)
        .bind(&k.key_prefix)
        .bind(k.alias.clone())
        .bind(now)
        .bind(k.source.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM keys WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM keys ORDER BY created_at DESC, id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn update_key(&self, id: &str, u: &KeyUpdate) -> Result<Option<KeyRecord>, StoreError> {
        // Read, then one UPDATE of the policy columns (not a read-then-write transaction:
        // on SQLite that cannot upgrade its lock while the spend writer holds the write lock).
        // Concurrent admin updates of one key: the last one wins.
        let Some(mut k) = self.key(id).await? else {
            return Ok(None);
        };
        if let Some(v) = &u.alias {
            k.alias = v.clone();
        }
        if let Some(v) = &u.models {
            k.models = v.clone();
        }
        if let Some(v) = &u.metadata {
            k.metadata = v.clone();
        }
        if let Some(v) = u.max_budget {
            k.max_budget = v;
        }
        if let Some(v) = u.rpm_limit {
            k.rpm_limit = v;
        }
        if let Some(v) = u.expires_at {
            k.expires_at = v;
        }
        if let Some(v) = &u.sealed_oauth_token {
            k.sealed_oauth_token = v.clone();
        }
        // `spend` is not written here: concurrent turns add to it.
        let sql = format!(
            "UPDATE keys SET key_alias = $2, models = $3, metadata = $4, \
             max_budget = CAST($5 AS DOUBLE PRECISION), \
             rpm_limit = $6, expires_at = $7, oauth_token = $8, updated_at = $9 \
             WHERE id = $1 RETURNING {KEY_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(k.alias.clone())
            .bind(json_text(&k.models))
            .bind(json_text(&k.metadata))
            .bind(float_param(k.max_budget))
            .bind(k.rpm_limit.map(i64::from))
            .bind(k.expires_at)
            .bind(k.sealed_oauth_token.clone())
            .bind(now_secs())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn revoke_keys(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let now = now_secs();
        let mut tx = self.pool.begin().await?;
        let mut revoked = Vec::new();
        for id in ids {
            let r = sqlx::query(
                "UPDATE keys SET revoked_at = $2, updated_at = $2 \
                 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() > 0 {
                revoked.push(id.clone());
            }
        }
        tx.commit().await?;
        Ok(revoked)
    }

    async fn record_spend(&self, records: &[SpendRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for r in records {
            sqlx::query(
                "INSERT INTO spend (key_id, session_id, model, input_tokens, output_tokens, \
                 cost_usd, duration_ms, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&r.key_id)
            .bind(r.session_id.clone())
            .bind(&r.model)
            .bind(as_i64(r.input_tokens))
            .bind(as_i64(r.output_tokens))
            .bind(r.cost_usd)
            .bind(as_i64(r.duration_ms))
            .bind(r.status)
            .bind(r.created_at)
            .execute(&mut *tx)
            .await?;
            // Increments, not read-modify-write: concurrent replicas add safely.
            sqlx::query("UPDATE keys SET spend = spend + $1 WHERE id = $2")
                .bind(r.cost_usd)
                .bind(&r.key_id)
                .execute(&mut *tx)
                .await?;
            if let Some(session) = &r.session_id {
                sqlx::query(
                    "UPDATE sessions SET turns = turns + 1, last_used_at = $1 WHERE id = $2",
                )
                .bind(r.created_at)
                .bind(session)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn spend_by_key(&self) -> Result<Vec<KeySpend>, StoreError> {
        let rows = sqlx::query(
            "SELECT k.id AS id, k.key_prefix AS key_prefix, k.key_alias AS key_alias, \
             k.spend AS spend, \
             k.max_budget AS max_budget, \
             (SELECT COUNT(*) FROM spend s WHERE s.key_id = k.id) AS requests, \
             (SELECT CAST(COALESCE(SUM(s.input_tokens), 0) AS BIGINT) FROM spend s WHERE s.key_id = k.id) AS pt, \
             (SELECT CAST(COALESCE(SUM(s.output_tokens), 0) AS BIGINT) FROM spend s WHERE s.key_id = k.id) AS ct \
             FROM keys k ORDER BY k.spend DESC, k.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(KeySpend {
                    token: row.try_get("id")?,
                    key_name: row.try_get("key_prefix")?,
                    key_alias: row.try_get("key_alias")?,
                    spend: row.try_get("spend")?,
                    max_budget: row.try_get("max_budget")?,
                    requests: row.try_get("requests")?,
                    prompt_tokens: row.try_get("pt")?,
                    completion_tokens: row.try_get("ct")?,
                })
            })
            .collect()
    }

    async fn spend_records(
        &self,
        key_id: &str,
        limit: i64,
    ) -> Result<Vec<SpendRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, session_id, model, input_tokens, output_tokens, cost_usd, \
             duration_ms, status, created_at FROM spend WHERE key_id = $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(key_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                Ok(SpendRecord {
                    key_id: row.try_get("key_id")?,
                    session_id: row.try_get("session_id")?,
                    model: row.try_get("model")?,
                    input_tokens: row.try_get::<i64, _>("input_tokens")?.max(0) as u64,
                    output_tokens: row.try_get::<i64, _>("output_tokens")?.max(0) as u64,
                    cost_usd: row.try_get("cost_usd")?,
                    duration_ms: row.try_get::<i64, _>("duration_ms")?.max(0) as u64,
                    status: match status.as_str() {
                        "completed" => "completed",
                        "interrupted" => "interrupted",
                        "cost_limit" => "cost_limit",
                        _ => "failed",
                    },
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn claim_session(
        &self,
        id: &str,
        owner: &str,
    ) -> Result<(SessionRecord, bool), StoreError> {
        let now = now_secs();
        let inserted = sqlx::query(
            "INSERT INTO sessions (id, owner, created_at, last_used_at, turns) \
             VALUES ($1, $2, $3, $3, 0) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(owner)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0;
        let record = self
            .session(id)
            .await?
            .ok_or(StoreError::Corrupt("sessions (claimed row vanished)"))?;
        Ok((record, inserted))
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn list_sessions(&self, owner: &str) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE owner = $1 \
             ORDER BY last_used_at DESC, id LIMIT 1000"
        );
        let rows = sqlx::query(&sql).bind(owner).fetch_all(&self.pool).await?;
        rows.iter().map(session_from_row).collect()
    }

    async fn delete_session(&self, id: &str, owner: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM sessions WHERE id = $1 AND owner = $2")
            .bind(id)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn prune_sessions(&self, unused_since: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM sessions WHERE last_used_at < $1")
            .bind(unused_since)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
