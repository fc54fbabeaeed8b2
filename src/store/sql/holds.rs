//! Budget held by running turns across replicas (PostgreSQL): admission locks the key's row,
//! so two replicas admitting turns of one key decide one after the other.

use sqlx::{AnyPool, Row};

use crate::store::{BudgetHold, StoreError};

#[allow(clippy::too_many_arguments)]
pub(super) async fn hold(
    pool: &AnyPool,
    postgres: bool,
    key_id: &str,
    hold_id: &str,
    usd: f64,
    budget: f64,
    now: i64,
    expires_at: i64,
) -> Result<BudgetHold, StoreError> {
    let mut tx = pool.begin().await?;
    let lock = if postgres {
        "SELECT CAST(spend AS TEXT) AS spend FROM keys WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT CAST(spend AS TEXT) AS spend FROM keys WHERE id = $1"
    };
    let spend: f64 = match sqlx::query(lock)
        .bind(key_id)
        .fetch_optional(&mut *tx)
        .await?
    {
        Some(row) => row
            .try_get::<String, _>("spend")?
            .parse()
            .map_err(|_| StoreError::Corrupt("keys.spend"))?,
        None => 0.0,
    };
    sqlx::query("DELETE FROM budget_holds WHERE key_id = $1 AND expires_at <= $2")
        .bind(key_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(usd), 0) AS TEXT) AS held, COUNT(*) AS turns \
         FROM budget_holds WHERE key_id = $1",
    )
    .bind(key_id)
    .fetch_one(&mut *tx)
    .await?;
    let held: f64 = row
        .try_get::<String, _>("held")?
        .parse()
        .map_err(|_| StoreError::Corrupt("budget_holds.usd"))?;
    let turns: i64 = row.try_get("turns")?;
    if spend >= budget {
        return Ok(BudgetHold::Spent { spend });
    }
    if turns > 0 && spend + held >= budget {
        return Ok(BudgetHold::Held {
            spend,
            held,
            turns: u32::try_from(turns).unwrap_or(u32::MAX),
        });
    }
    sqlx::query("INSERT INTO budget_holds (id, key_id, usd, expires_at) VALUES ($1, $2, CAST($3 AS DOUBLE PRECISION), $4)")
        .bind(hold_id)
        .bind(key_id)
        .bind(usd.to_string())
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(BudgetHold::Taken)
}

pub(super) async fn release(pool: &AnyPool, hold_id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM budget_holds WHERE id = $1")
        .bind(hold_id)
        .execute(pool)
        .await?;
    Ok(())
}
