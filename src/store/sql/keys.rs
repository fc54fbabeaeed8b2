//! Keys: the stored hash, settings, spend total, revocation, blocking and budget resets.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::{float_param, json_text, page_bounds};
use crate::keys::BudgetPeriod;
use crate::store::{
    KeyFilter, KeyPolicy, KeyRecord, KeySource, KeyUpdate, NewKey, StoreError, now_secs,
};

const KEY_COLUMNS: &str = "id, key_prefix, key_alias, models, metadata, max_budget, rpm_limit, \
     spend, expires_at, created_at, updated_at, revoked_at, source, oauth_token, tags, tpm_limit, \
     max_parallel_requests, blocked_at, budget_duration, budget_reset_at";

fn from_row(row: &AnyRow) -> Result<KeyRecord, StoreError> {
    let models: String = row.try_get("models")?;
    let metadata: String = row.try_get("metadata")?;
    let tags: String = row.try_get("tags")?;
    let source: String = row.try_get("source")?;
    let rpm: Option<i64> = row.try_get("rpm_limit")?;
    let tpm: Option<i64> = row.try_get("tpm_limit")?;
    let parallel: Option<i64> = row.try_get("max_parallel_requests")?;
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
        policy: KeyPolicy {
            tags: serde_json::from_str(&tags).map_err(|_| StoreError::Corrupt("keys.tags"))?,
            tpm_limit: tpm.map(|t| u64::try_from(t).unwrap_or_default()),
            max_parallel_requests: parallel.map(|p| u32::try_from(p).unwrap_or(u32::MAX)),
            budget_duration: row.try_get("budget_duration")?,
            budget_reset_at: row.try_get("budget_reset_at")?,
        },
        blocked_at: row.try_get("blocked_at")?,
    })
}

fn opt_i64<T: TryInto<i64>>(v: Option<T>) -> Option<i64> {
    v.map(|v| v.try_into().unwrap_or(i64::MAX))
}

pub(super) async fn insert(pool: &AnyPool, k: &NewKey) -> Result<KeyRecord, StoreError> {
    let now = now_secs();
    let sql = format!(
        "INSERT INTO keys ({KEY_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, CAST($6 AS DOUBLE PRECISION), $7, 0, $8, $9, $9, NULL, \
         $10, $11, $12, $13, $14, NULL, $15, $16) \
         RETURNING {KEY_COLUMNS}"
    );
    let p = &k.policy;
    let row = sqlx::query(&sql)
        .bind(&k.id)
        .bind(&k.key_prefix)
        .bind(k.alias.clone())
        .bind(json_text(&k.models))
        .bind(json_text(&k.metadata))
        .bind(float_param(k.max_budget))
        .bind(opt_i64(k.rpm_limit))
        .bind(k.expires_at)
        .bind(now)
        .bind(k.source.as_str())
        .bind(k.sealed_oauth_token.clone())
        .bind(json_text(&p.tags))
        .bind(opt_i64(p.tpm_limit))
        .bind(opt_i64(p.max_parallel_requests))
        .bind(p.budget_duration.clone())
        .bind(p.budget_reset_at)
        .fetch_one(pool)
        .await?;
    from_row(&row)
}

pub(super) async fn ensure(pool: &AnyPool, k: &NewKey) -> Result<(), StoreError> {
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
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn get(pool: &AnyPool, id: &str) -> Result<Option<KeyRecord>, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM keys WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(pool).await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(pool: &AnyPool) -> Result<Vec<KeyRecord>, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM keys ORDER BY created_at DESC, id");
    let rows = sqlx::query(&sql).fetch_all(pool).await?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn page(
    pool: &AnyPool,
    f: &KeyFilter,
) -> Result<(Vec<KeyRecord>, i64), StoreError> {
    let (limit, offset) = page_bounds(f.page, f.size);
    let (rows, total) = match &f.alias {
        Some(alias) => {
            let sql = format!(
                "SELECT {KEY_COLUMNS} FROM keys WHERE key_alias = $1 \
                 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
            );
            let rows = sqlx::query(&sql)
                .bind(alias)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?;
            let total: i64 = sqlx::query("SELECT COUNT(*) FROM keys WHERE key_alias = $1")
                .bind(alias)
                .fetch_one(pool)
                .await?
                .try_get(0)?;
            (rows, total)
        }
        None => {
            let sql = format!(
                "SELECT {KEY_COLUMNS} FROM keys ORDER BY created_at DESC, id LIMIT $1 OFFSET $2"
            );
            let rows = sqlx::query(&sql)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?;
            let total: i64 = sqlx::query("SELECT COUNT(*) FROM keys")
                .fetch_one(pool)
                .await?
                .try_get(0)?;
            (rows, total)
        }
    };
    Ok((rows.iter().map(from_row).collect::<Result<_, _>>()?, total))
}

pub(super) async fn update(
    pool: &AnyPool,
    id: &str,
    u: &KeyUpdate,
) -> Result<Option<KeyRecord>, StoreError> {
    // Read, then one UPDATE of the policy columns (not a read-then-write transaction: on
    // SQLite that cannot upgrade its lock while the spend writer holds the write lock).
    // Concurrent admin updates of one key: the last one wins.
    let Some(mut k) = get(pool, id).await? else {
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
    let p = &mut k.policy;
    if let Some(v) = &u.tags {
        p.tags = v.clone();
    }
    if let Some(v) = u.tpm_limit {
        p.tpm_limit = v;
    }
    if let Some(v) = u.max_parallel_requests {
        p.max_parallel_requests = v;
    }
    if let Some(v) = &u.budget_period {
        p.budget_duration = v.as_ref().map(|(d, _)| d.clone());
        p.budget_reset_at = v.as_ref().map(|(_, at)| *at);
    }
    // `spend` is not written here: concurrent turns add to it.
    let sql = format!(
        "UPDATE keys SET key_alias = $2, models = $3, metadata = $4, \
         max_budget = CAST($5 AS DOUBLE PRECISION), rpm_limit = $6, expires_at = $7, \
         oauth_token = $8, updated_at = $9, tags = $10, tpm_limit = $11, \
         max_parallel_requests = $12, budget_duration = $13, budget_reset_at = $14 \
         WHERE id = $1 RETURNING {KEY_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(k.alias.clone())
        .bind(json_text(&k.models))
        .bind(json_text(&k.metadata))
        .bind(float_param(k.max_budget))
        .bind(opt_i64(k.rpm_limit))
        .bind(k.expires_at)
        .bind(k.sealed_oauth_token.clone())
        .bind(now_secs())
        .bind(json_text(&p.tags))
        .bind(opt_i64(p.tpm_limit))
        .bind(opt_i64(p.max_parallel_requests))
        .bind(p.budget_duration.clone())
        .bind(p.budget_reset_at)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn revoke(pool: &AnyPool, ids: &[String]) -> Result<Vec<String>, StoreError> {
    let now = now_secs();
    let mut tx = pool.begin().await?;
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

pub(super) async fn set_blocked(
    pool: &AnyPool,
    id: &str,
    blocked: bool,
    now: i64,
) -> Result<Option<KeyRecord>, StoreError> {
    let sql = format!(
        "UPDATE keys SET blocked_at = {}, updated_at = $2 WHERE id = $1 RETURNING {KEY_COLUMNS}",
        if blocked {
            "COALESCE(blocked_at, $2)"
        } else {
            "NULL"
        }
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(now)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn regenerate(
    pool: &AnyPool,
    old_id: &str,
    new_id: &str,
    new_prefix: &str,
    now: i64,
) -> Result<Option<KeyRecord>, StoreError> {
    let mut tx = pool.begin().await?;
    let copied = sqlx::query(
        "INSERT INTO keys (id, key_prefix, key_alias, models, metadata, max_budget, rpm_limit, \
         spend, expires_at, created_at, updated_at, revoked_at, source, oauth_token, tags, \
         tpm_limit, max_parallel_requests, blocked_at, budget_duration, budget_reset_at) \
         SELECT $1, $2, key_alias, models, metadata, max_budget, rpm_limit, spend, expires_at, \
         $3, $3, NULL, 'api', oauth_token, tags, tpm_limit, max_parallel_requests, blocked_at, \
         budget_duration, budget_reset_at FROM keys WHERE id = $4 AND revoked_at IS NULL",
    )
    .bind(new_id)
    .bind(new_prefix)
    .bind(now)
    .bind(old_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if copied == 0 {
        tx.rollback().await?;
        return Ok(None);
    }
    sqlx::query("UPDATE keys SET revoked_at = $2, updated_at = $2 WHERE id = $1")
        .bind(old_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    get(pool, new_id).await
}

pub(super) async fn reset_due_budgets(pool: &AnyPool, now: i64) -> Result<Vec<String>, StoreError> {
    let due = sqlx::query(
        "SELECT id, budget_duration, budget_reset_at FROM keys \
         WHERE budget_reset_at IS NOT NULL AND budget_reset_at <= $1 AND revoked_at IS NULL",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    let mut reset = Vec::new();
    for row in due {
        let id: String = row.try_get("id")?;
        let at: i64 = row.try_get("budget_reset_at")?;
        let duration: Option<String> = row.try_get("budget_duration")?;
        let Some(period) = duration
            .as_deref()
            .and_then(|d| BudgetPeriod::parse(d).ok())
        else {
            tracing::warn!(key = %crate::keys::label(&id), "unreadable budget_duration; not reset");
            continue;
        };
        // Compare-and-set on the due time: one replica resets a period once.
        let r = sqlx::query(
            "UPDATE keys SET spend = 0, budget_reset_at = $3, updated_at = $4 \
             WHERE id = $1 AND budget_reset_at = $2",
        )
        .bind(&id)
        .bind(at)
        .bind(period.next_after(at, now))
        .bind(now)
        .execute(pool)
        .await?;
        if r.rows_affected() > 0 {
            reset.push(id);
        }
    }
    Ok(reset)
}
