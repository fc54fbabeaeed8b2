//! Responses API responses, so any replica continues or shows them.

use sqlx::{AnyPool, Row};

use crate::store::{ResponseRecord, StoreError};

pub(super) async fn put(pool: &AnyPool, r: &ResponseRecord) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO responses (id, owner, session_id, history, object, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&r.id)
    .bind(&r.owner)
    .bind(&r.session_id)
    .bind(&r.history)
    .bind(&r.object)
    .bind(r.created_at)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO response_latest (session_id, response_id) VALUES ($1, $2) \
         ON CONFLICT (session_id) DO UPDATE SET response_id = excluded.response_id",
    )
    .bind(&r.session_id)
    .bind(&r.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn get(pool: &AnyPool, id: &str) -> Result<Option<ResponseRecord>, StoreError> {
    let row = sqlx::query(
        "SELECT id, owner, session_id, history, object, created_at FROM responses WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(ResponseRecord {
            id: r.try_get("id")?,
            owner: r.try_get("owner")?,
            session_id: r.try_get("session_id")?,
            history: r.try_get("history")?,
            object: r.try_get("object")?,
            created_at: r.try_get("created_at")?,
        })
    })
    .transpose()
}

pub(super) async fn latest(pool: &AnyPool, session_id: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT response_id FROM response_latest WHERE session_id = $1")
        .bind(session_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| r.try_get("response_id")).transpose()?)
}

pub(super) async fn delete(pool: &AnyPool, id: &str, owner: &str) -> Result<bool, StoreError> {
    let r = sqlx::query("DELETE FROM responses WHERE id = $1 AND owner = $2")
        .bind(id)
        .bind(owner)
        .execute(pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn prune(pool: &AnyPool, before: i64) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await?;
    let r = sqlx::query("DELETE FROM responses WHERE created_at < $1")
        .bind(before)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM response_latest WHERE response_id NOT IN (SELECT id FROM responses)")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(r.rows_affected())
}
