//! The per-key allowance of card reveals, counted in the database so every
//! replica sharing it enforces one limit.

use super::unit_of_work::UnitOfWork;
use super::write_op::{Failure, WriteOp};

/// Counts one reveal by `key_id` at `now_ms` against an allowance of `limit`
/// reveals per fixed window of `window_ms`. A key that has used its
/// allowance in the current window fails the unit with `Conflict` (nothing
/// of the unit is written). One statement on the key's row: concurrent
/// reveals (on any replica) are each counted exactly once.
pub fn count_reveal(work: &mut UnitOfWork, key_id: &str, now_ms: i64, window_ms: i64, limit: i64) {
    work.push(
        WriteOp::new(
            "INSERT INTO reveal_allowances (key_id, window_start, used) VALUES ($1, $2, 1) \
             ON CONFLICT (key_id) DO UPDATE SET \
             used = CASE WHEN reveal_allowances.window_start <= $3 THEN 1 ELSE reveal_allowances.used + 1 END, \
             window_start = CASE WHEN reveal_allowances.window_start <= $3 THEN $2 \
             ELSE reveal_allowances.window_start END \
             WHERE reveal_allowances.window_start <= $3 OR reveal_allowances.used < $4",
            vec![
                key_id.into(),
                now_ms.into(),
                now_ms.saturating_sub(window_ms).into(),
                limit.into(),
            ],
        )
        .expect_one(Failure::Conflict),
    );
}
