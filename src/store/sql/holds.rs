//! Budget held by running turns across replicas (PostgreSQL): admission locks the key's row,
//! so two replicas admitting turns of one key decide one after the other, by the rule of
//! [`BudgetHold::decide`] (a turn holds its estimate far from the budget, its worst case near
//! it).

use sqlx::{AnyPool, Row};

use crate::store::{BudgetHold, HoldSizes, StoreError};

#[allow(clippy::too_many_arguments)]
pub(super) async fn hold(
    pool: &AnyPool,
    postgres: bool,
    key_id: &str,
    hold_id: &str,
    sizes: HoldSizes,
    budget: f64,
    now: i64,
    expires_at: i64,
) -> Result<BudgetHold, StoreError> {
    let mut tx = pool.begin().await?;
    let lock = if postgres {
        "SELECT spend FROM keys WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT spend FROM keys WHERE id = $1"
    };
    let spend: f64 = match sqlx::query(lock)
        .bind(key_id)
        .fetch_optional(&mut *tx)
        .await?
    {
        Some(row) => row.try_get("spend")?,
        None => 0.0,
    };
    sqlx::query("DELETE FROM budget_holds WHERE key_id = $1 AND expires_at <= $2")
        .bind(key_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(
        "SELECT COALESCE(SUM(usd), 0.0) AS held, COUNT(*) AS turns \
         FROM budget_holds WHERE key_id = $1",
    )
    .bind(key_id)
    .fetch_one(&mut *tx)
    .await?;
    let held: f64 = row.try_get("held")?;
    let turns = u32::try_from(row.try_get::<i64, _>("turns")?).unwrap_or(u32::MAX);
    let decision = BudgetHold::decide(spend, held, turns, budget, sizes);
    let BudgetHold::Taken { usd } = decision else {
        return Ok(decision);
    };
    sqlx::query("INSERT INTO budget_holds (id, key_id, usd, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(hold_id)
        .bind(key_id)
        .bind(usd)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(decision)
}

pub(super) async fn release(pool: &AnyPool, hold_id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM budget_holds WHERE id = $1")
        .bind(hold_id)
        .execute(pool)
        .await?;
    Ok(())
}
