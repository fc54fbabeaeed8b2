//! Request-rate state shared by replicas (GCRA): one atomic statement per request moves the
//! key's theoretical arrival time on, unless that would pass the burst tolerance.

use sqlx::{AnyPool, Row};

use crate::store::{RateTake, StoreError};

/// Takes one request of `key_id` at `now_ms` for a rate of one request per `interval_ms` with
/// `tolerance_ms` of burst: allowed (and the new arrival time), or refused (and the current).
pub(super) async fn take(
    pool: &AnyPool,
    key_id: &str,
    now_ms: i64,
    interval_ms: i64,
    tolerance_ms: i64,
) -> Result<RateTake, StoreError> {
    let moved = sqlx::query(
        "INSERT INTO rate_limits (key_id, tat_ms) VALUES ($1, $2 + $3) \
         ON CONFLICT (key_id) DO UPDATE SET tat_ms = \
           (CASE WHEN rate_limits.tat_ms > $2 THEN rate_limits.tat_ms ELSE $2 END) + $3 \
         WHERE (CASE WHEN rate_limits.tat_ms > $2 THEN rate_limits.tat_ms ELSE $2 END) - $2 <= $4 \
         RETURNING tat_ms",
    )
    .bind(key_id)
    .bind(now_ms)
    .bind(interval_ms)
    .bind(tolerance_ms)
    .fetch_optional(pool)
    .await?;
    if let Some(row) = moved {
        return Ok(RateTake {
            allowed: true,
            tat_ms: row.try_get("tat_ms")?,
        });
    }
    let row = sqlx::query("SELECT tat_ms FROM rate_limits WHERE key_id = $1")
        .bind(key_id)
        .fetch_one(pool)
        .await?;
    Ok(RateTake {
        allowed: false,
        tat_ms: row.try_get("tat_ms")?,
    })
}
