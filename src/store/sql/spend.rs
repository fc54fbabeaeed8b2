//! Spend: one record per turn, the keys' totals, spend by tag and the spend log.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::{as_i64, json_text, page_bounds};
use crate::store::{KeySpend, SpendFilter, SpendRecord, StoreError, TagSpend};

pub(super) async fn record(pool: &AnyPool, records: &[SpendRecord]) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    for r in records {
        let id: i64 = sqlx::query(
            "INSERT INTO spend (key_id, session_id, model, input_tokens, output_tokens, \
             cost_usd, duration_ms, status, created_at, request_id, tags, x_request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
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
        .bind(r.request_id.clone())
        .bind(json_text(&r.tags))
        .bind(r.x_request_id.clone())
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        for tag in &r.tags {
            sqlx::query(
                "INSERT INTO spend_tags (spend_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(tag)
            .execute(&mut *tx)
            .await?;
        }
        // Increments, not read-modify-write: concurrent replicas add safely.
        sqlx::query("UPDATE keys SET spend = spend + $1 WHERE id = $2")
            .bind(r.cost_usd)
            .bind(&r.key_id)
            .execute(&mut *tx)
            .await?;
        if let Some(session) = &r.session_id {
            sqlx::query("UPDATE sessions SET turns = turns + 1, last_used_at = $1 WHERE id = $2")
                .bind(r.created_at)
                .bind(session)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn by_key(pool: &AnyPool) -> Result<Vec<KeySpend>, StoreError> {
    let rows = sqlx::query(
        "SELECT k.id AS id, k.key_prefix AS key_prefix, k.key_alias AS key_alias, \
         k.spend AS spend, \
         k.max_budget AS max_budget, \
         (SELECT COUNT(*) FROM spend s WHERE s.key_id = k.id) AS requests, \
         (SELECT CAST(COALESCE(SUM(s.input_tokens), 0) AS BIGINT) FROM spend s WHERE s.key_id = k.id) AS pt, \
         (SELECT CAST(COALESCE(SUM(s.output_tokens), 0) AS BIGINT) FROM spend s WHERE s.key_id = k.id) AS ct, \
         (SELECT MAX(s.created_at) FROM spend s WHERE s.key_id = k.id) AS last_used \
         FROM keys k ORDER BY k.spend DESC, k.id",
    )
    .fetch_all(pool)
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
                last_used: row.try_get("last_used")?,
            })
        })
        .collect()
}

/// ` AND s.created_at >= $n ...` for the bounds that are set, numbered from `first`, and the
/// values to bind in order. (No `$n IS NULL` tricks: PostgreSQL cannot type a NULL parameter.)
fn time_bounds(since: Option<i64>, until: Option<i64>, first: usize) -> (String, Vec<i64>) {
    let mut sql = String::new();
    let mut values = Vec::new();
    for (op, v) in [(">=", since), ("<", until)] {
        if let Some(v) = v {
            values.push(v);
            sql.push_str(&format!(
                " AND s.created_at {op} ${}",
                first + values.len() - 1
            ));
        }
    }
    (sql, values)
}

pub(super) async fn by_tag(
    pool: &AnyPool,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<Vec<TagSpend>, StoreError> {
    let (bounds, values) = time_bounds(since, until, 1);
    let sql = format!(
        "SELECT t.tag AS tag, COUNT(*) AS n, COALESCE(SUM(s.cost_usd), 0.0) AS cost, \
         CAST(COALESCE(SUM(s.input_tokens), 0) AS BIGINT) AS pt, \
         CAST(COALESCE(SUM(s.output_tokens), 0) AS BIGINT) AS ct \
         FROM spend_tags t JOIN spend s ON s.id = t.spend_id WHERE 1 = 1{bounds} \
         GROUP BY t.tag ORDER BY cost DESC, t.tag"
    );
    let mut q = sqlx::query(&sql);
    for v in values {
        q = q.bind(v);
    }
    q.fetch_all(pool)
        .await?
        .iter()
        .map(|row| {
            let (pt, ct): (i64, i64) = (row.try_get("pt")?, row.try_get("ct")?);
            Ok(TagSpend {
                individual_request_tag: row.try_get("tag")?,
                log_count: row.try_get("n")?,
                total_spend: row.try_get("cost")?,
                prompt_tokens: pt,
                completion_tokens: ct,
                total_tokens: pt.saturating_add(ct),
            })
        })
        .collect()
}

fn record_from_row(row: &AnyRow) -> Result<SpendRecord, StoreError> {
    let status: String = row.try_get("status")?;
    let tags: String = row.try_get("tags")?;
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
        request_id: row.try_get("request_id")?,
        x_request_id: row.try_get("x_request_id")?,
        tags: serde_json::from_str(&tags).map_err(|_| StoreError::Corrupt("spend.tags"))?,
    })
}

pub(super) async fn log(
    pool: &AnyPool,
    f: &SpendFilter,
) -> Result<(Vec<SpendRecord>, i64), StoreError> {
    let first = if f.key_id.is_some() { 2 } else { 1 };
    let (bounds, values) = time_bounds(f.since, f.until, first);
    let key = if f.key_id.is_some() {
        " AND s.key_id = $1"
    } else {
        ""
    };
    let filter = format!("WHERE 1 = 1{key}{bounds}");
    let (limit, offset) = page_bounds(f.page, f.size);
    let n = first + values.len();
    let sql = format!(
        "SELECT s.key_id AS key_id, s.session_id AS session_id, s.model AS model, \
         s.input_tokens AS input_tokens, s.output_tokens AS output_tokens, \
         s.cost_usd AS cost_usd, s.duration_ms AS duration_ms, s.status AS status, \
         s.created_at AS created_at, s.request_id AS request_id, s.tags AS tags, \
         s.x_request_id AS x_request_id \
         FROM spend s {filter} ORDER BY s.id DESC LIMIT ${n} OFFSET ${}",
        n + 1
    );
    let count_sql = format!("SELECT COUNT(*) FROM spend s {filter}");
    let mut q = sqlx::query(&sql);
    let mut c = sqlx::query(&count_sql);
    if let Some(k) = &f.key_id {
        q = q.bind(k.clone());
        c = c.bind(k.clone());
    }
    for v in values {
        q = q.bind(v);
        c = c.bind(v);
    }
    let rows = q.bind(limit).bind(offset).fetch_all(pool).await?;
    let total: i64 = c.fetch_one(pool).await?.try_get(0)?;
    Ok((
        rows.iter().map(record_from_row).collect::<Result<_, _>>()?,
        total,
    ))
}
