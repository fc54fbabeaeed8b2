//! Conversations' transcripts, kept turn by turn so any replica can resume them.
//!
//! A transcript is the CLI's file for one CLI session, kept as parts appended in order (each
//! part whole JSON lines). Appending is conditional on the kept length, so a part never lands
//! after a gap or on another CLI session's file; a caller that finds the condition false keeps
//! the whole file instead (`start` 0), which replaces every part.

use sqlx::{AnyPool, Row};

use crate::store::{StoreError, StoredTranscript, TranscriptPart, now_secs};

pub(super) async fn keep(
    pool: &AnyPool,
    parts: &[TranscriptPart],
) -> Result<Vec<bool>, StoreError> {
    let now = now_secs();
    let mut kept = Vec::with_capacity(parts.len());
    let mut tx = pool.begin().await?;
    for part in parts {
        let size = part.start + part.data.len() as i64;
        if part.start == 0 {
            sqlx::query("DELETE FROM transcript_parts WHERE session_id = $1")
                .bind(&part.session_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO transcripts (session_id, cli_session_id, size, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO UPDATE SET \
                 cli_session_id = excluded.cli_session_id, size = excluded.size, \
                 updated_at = excluded.updated_at",
            )
            .bind(&part.session_id)
            .bind(&part.cli_session_id)
            .bind(size)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        } else {
            let moved = sqlx::query(
                "UPDATE transcripts SET size = $1, updated_at = $2 \
                 WHERE session_id = $3 AND cli_session_id = $4 AND size = $5",
            )
            .bind(size)
            .bind(now)
            .bind(&part.session_id)
            .bind(&part.cli_session_id)
            .bind(part.start)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved == 0 {
                kept.push(false);
                continue;
            }
        }
        if !part.data.is_empty() {
            sqlx::query(
                "INSERT INTO transcript_parts (session_id, start, data) VALUES ($1, $2, $3)",
            )
            .bind(&part.session_id)
            .bind(part.start)
            .bind(&part.data)
            .execute(&mut *tx)
            .await?;
        }
        kept.push(true);
    }
    tx.commit().await?;
    Ok(kept)
}

pub(super) async fn head(
    pool: &AnyPool,
    session_id: &str,
) -> Result<Option<(String, i64)>, StoreError> {
    let row = sqlx::query("SELECT cli_session_id, size FROM transcripts WHERE session_id = $1")
        .bind(session_id)
        .fetch_optional(pool)
        .await?;
    row.map(|r| Ok((r.try_get("cli_session_id")?, r.try_get("size")?)))
        .transpose()
}

pub(super) async fn get(
    pool: &AnyPool,
    session_id: &str,
) -> Result<Option<StoredTranscript>, StoreError> {
    let mut tx = pool.begin().await?;
    let Some(head) =
        sqlx::query("SELECT cli_session_id, size FROM transcripts WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(&mut *tx)
            .await?
    else {
        return Ok(None);
    };
    let cli_session_id: String = head.try_get("cli_session_id")?;
    let size: i64 = head.try_get("size")?;
    let parts = sqlx::query(
        "SELECT start, data FROM transcript_parts WHERE session_id = $1 ORDER BY start",
    )
    .bind(session_id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut data = String::with_capacity(usize::try_from(size).unwrap_or_default());
    for part in &parts {
        let start: i64 = part.try_get("start")?;
        if start != data.len() as i64 {
            return Err(StoreError::Corrupt("transcript_parts (gap)"));
        }
        data.push_str(part.try_get::<&str, _>("data")?);
    }
    if data.len() as i64 != size {
        return Err(StoreError::Corrupt("transcripts (size)"));
    }
    Ok(Some(StoredTranscript {
        cli_session_id,
        data,
    }))
}

/// Deletes a conversation's transcript, within the caller's transaction (its session is
/// being deleted).
pub(super) async fn delete(
    conn: &mut sqlx::AnyConnection,
    session_id: &str,
) -> Result<(), StoreError> {
    for table in ["transcript_parts", "transcripts"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE session_id = $1"))
            .bind(session_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
