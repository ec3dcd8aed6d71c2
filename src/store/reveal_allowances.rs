//! The per-key allowance of card reveals, counted in the database so every
//! replica sharing it enforces one limit.

use sqlx::{Any, Executor};

use super::StoreError;

/// Counts one reveal by `key_id` at `now_ms` in a fixed window of
/// `window_ms`, and returns how many reveals the key made in its current
/// window, this one included. One statement: concurrent reveals (on any
/// replica) are each counted exactly once.
pub async fn count_reveal<'e>(
    db: impl Executor<'e, Database = Any>,
    key_id: &str,
    now_ms: i64,
    window_ms: i64,
) -> Result<i64, StoreError> {
    let (used,): (i64,) = sqlx::query_as(
        "INSERT INTO reveal_allowances (key_id, window_start, used) VALUES ($1, $2, 1) \
         ON CONFLICT (key_id) DO UPDATE SET \
         used = CASE WHEN reveal_allowances.window_start <= $3 THEN 1 ELSE reveal_allowances.used + 1 END, \
         window_start = CASE WHEN reveal_allowances.window_start <= $3 THEN $2 \
         ELSE reveal_allowances.window_start END \
         RETURNING used",
    )
    .bind(key_id)
    .bind(now_ms)
    .bind(now_ms.saturating_sub(window_ms))
    .fetch_one(db)
    .await?;
    Ok(used)
}
