//! The `merchants` table. Not found comes back as `None`; an id collision as
//! `StoreError::Duplicate`.

use sqlx::{Any, Executor};

use super::{json_column, to_json_column, After, StoreError};
use crate::domain::ids::MerchantId;
use crate::domain::merchant::{ElementOrigin, Freeze, FreezeReason, Merchant, MerchantName};
use crate::domain::time::Timestamp;

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    name: String,
    created_at: i64,
    element_origins: String,
    connector: String,
    frozen_at: Option<i64>,
    frozen_reason: Option<String>,
}

impl TryFrom<Row> for Merchant {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Merchant {
            id: MerchantId::from_trusted(r.id),
            name: MerchantName::from_trusted(r.name),
            created_at: Timestamp::from_millis(r.created_at),
            element_origins: json_column("element_origins", &r.element_origins)?,
            connector: r.connector,
            frozen: freeze_from_columns(r.frozen_at, r.frozen_reason),
        })
    }
}

const COLUMNS: &str = "id, name, created_at, element_origins, connector, frozen_at, frozen_reason";

/// The freeze held in the `frozen_at` / `frozen_reason` columns (also read by
/// the authentication lookup). A time without a reason still freezes.
pub(super) fn freeze_from_columns(at: Option<i64>, reason: Option<String>) -> Option<Freeze> {
    at.map(|at| Freeze {
        at: Timestamp::from_millis(at),
        reason: FreezeReason::from_trusted(reason.unwrap_or_default()),
    })
}

pub async fn insert<'e>(db: impl Executor<'e, Database = Any>, m: &Merchant) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO merchants (id, name, created_at, element_origins, connector) VALUES ($1, $2, $3, $4, $5)")
        .bind(m.id.as_str())
        .bind(m.name.as_str())
        .bind(m.created_at.as_millis())
        .bind(to_json_column(&m.element_origins))
        .bind(&m.connector)
        .execute(db)
        .await
        .map_err(StoreError::from_insert)?;
    Ok(())
}

pub async fn get<'e>(db: impl Executor<'e, Database = Any>, id: &MerchantId) -> Result<Option<Merchant>, StoreError> {
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM merchants WHERE id = $1"))
        .bind(id.as_str())
        .fetch_optional(db)
        .await?;
    row.map(Merchant::try_from).transpose()
}

/// Up to `limit` merchants with ids after `after`, in id order.
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    after: After<'_>,
    limit: i64,
) -> Result<Vec<Merchant>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM merchants WHERE id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Merchant::try_from).collect()
}

/// Renames a merchant. Returns whether a row changed (false: not found).
pub async fn update_name<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &MerchantId,
    name: &MerchantName,
) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE merchants SET name = $1 WHERE id = $2")
        .bind(name.as_str())
        .bind(id.as_str())
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces the merchant's element origins. Returns whether a row changed.
pub async fn update_element_origins<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &MerchantId,
    origins: &[ElementOrigin],
) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE merchants SET element_origins = $1 WHERE id = $2")
        .bind(to_json_column(&origins))
        .bind(id.as_str())
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Freezes the merchant unless it already is. Returns whether a row changed
/// (false: not found, or frozen already).
pub async fn freeze<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &MerchantId,
    freeze: &Freeze,
) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE merchants SET frozen_at = $1, frozen_reason = $2 WHERE id = $3 AND frozen_at IS NULL")
            .bind(freeze.at.as_millis())
            .bind(freeze.reason.as_str())
            .bind(id.as_str())
            .execute(db)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Lifts the merchant's freeze. Returns whether a row changed (false: not
/// found, or not frozen).
pub async fn unfreeze<'e>(db: impl Executor<'e, Database = Any>, id: &MerchantId) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE merchants SET frozen_at = NULL, frozen_reason = NULL WHERE id = $1 AND frozen_at IS NOT NULL",
    )
    .bind(id.as_str())
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
