//! Sessions: conversations and the key that owns them.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::store::{SessionRecord, StoreError, now_secs};

const SESSION_COLUMNS: &str = "id, owner, created_at, last_used_at, turns";

fn from_row(row: &AnyRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        turns: row.try_get("turns")?,
    })
}

pub(super) async fn claim(
    pool: &AnyPool,
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
    .execute(pool)
    .await?
    .rows_affected()
        > 0;
    let record = get(pool, id)
        .await?
        .ok_or(StoreError::Corrupt("sessions (claimed row vanished)"))?;
    Ok((record, inserted))
}

pub(super) async fn create_many(
    pool: &AnyPool,
    new: &[(String, String)],
) -> Result<(), StoreError> {
    if new.is_empty() {
        return Ok(());
    }
    let now = now_secs();
    let mut tx = pool.begin().await?;
    for (id, owner) in new {
        sqlx::query(
            "INSERT INTO sessions (id, owner, created_at, last_used_at, turns) \
             VALUES ($1, $2, $3, $3, 0) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(owner)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn get(pool: &AnyPool, id: &str) -> Result<Option<SessionRecord>, StoreError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(pool).await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(pool: &AnyPool, owner: &str) -> Result<Vec<SessionRecord>, StoreError> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE owner = $1 \
         ORDER BY last_used_at DESC, id LIMIT 1000"
    );
    let rows = sqlx::query(&sql).bind(owner).fetch_all(pool).await?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn set_prompt(pool: &AnyPool, id: &str, prompt: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET system_prompt = $1 WHERE id = $2")
        .bind(prompt)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn prompt(pool: &AnyPool, id: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT system_prompt FROM sessions WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<Option<String>, _>("system_prompt")?,
        None => None,
    })
}

/// Deletes a session and its kept transcript.
pub(super) async fn delete(pool: &AnyPool, id: &str, owner: &str) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let r = sqlx::query("DELETE FROM sessions WHERE id = $1 AND owner = $2")
        .bind(id)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    if r.rows_affected() > 0 {
        super::transcripts::delete(&mut tx, id).await?;
    }
    tx.commit().await?;
    Ok(r.rows_affected() > 0)
}

/// Deletes sessions unused since `unused_since`, and the transcripts of sessions that are gone.
pub(super) async fn prune(pool: &AnyPool, unused_since: i64) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await?;
    let r = sqlx::query("DELETE FROM sessions WHERE last_used_at < $1")
        .bind(unused_since)
        .execute(&mut *tx)
        .await?;
    for table in ["transcript_parts", "transcripts"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE session_id NOT IN (SELECT id FROM sessions)"
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(r.rows_affected())
}
