//! The read that payments and refunds share: the tenant's newest row
//! created under a (key-scoped) idempotency key since a moment, so that a
//! retry after a crash finds what its first attempt created. Each table
//! module maps the row it gets back.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, FromRow};

use super::StoreError;
use crate::domain::tenant::Tenant;

/// The newest row of `table` (its `columns`) of `tenant` with
/// `idempotency_key = key` and `created_at >= since`; `None` if there is
/// none. `table` and `columns` are the calling module's constants, never
/// input.
pub(super) async fn newest_by_idempotency_key<'e, R>(
    db: impl Executor<'e, Database = Any>,
    table: &'static str,
    columns: &'static str,
    tenant: &Tenant,
    key: &str,
    since: i64,
) -> Result<Option<R>, StoreError>
where
    R: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {columns} FROM {table} WHERE merchant_id = $1 AND idempotency_key = $2 AND created_at >= $3 \
         AND mode = $4 ORDER BY id DESC LIMIT 1"
    ))
    .bind(tenant.merchant_str())
    .bind(key)
    .bind(since)
    .bind(tenant.mode_str())
    .fetch_optional(db)
    .await?)
}
