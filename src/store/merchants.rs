//! The `merchants` table. Not found comes back as `None`; an id collision as
//! `StoreError::Duplicate`. Writes are statements added to a [`UnitOfWork`].

use sqlx::{Any, Executor};

use super::unit_of_work::UnitOfWork;
use super::write_op::{Failure, WriteOp};
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
    live_connector: Option<String>,
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
            live_connector: r.live_connector,
            frozen: freeze_from_columns(r.frozen_at, r.frozen_reason),
        })
    }
}

const COLUMNS: &str = "id, name, created_at, element_origins, connector, live_connector, frozen_at, frozen_reason";

/// The freeze held in the `frozen_at` / `frozen_reason` columns (also read by
/// the authentication lookup). A time without a reason still freezes.
pub(super) fn freeze_from_columns(at: Option<i64>, reason: Option<String>) -> Option<Freeze> {
    at.map(|at| Freeze {
        at: Timestamp::from_millis(at),
        reason: FreezeReason::from_trusted(reason.unwrap_or_default()),
    })
}

/// Adds the merchant; an id collision fails the unit with `Duplicate`.
pub fn insert(work: &mut UnitOfWork, m: &Merchant) {
    work.push(
        WriteOp::new(
            "INSERT INTO merchants (id, name, created_at, element_origins, connector, live_connector) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                m.id.as_str().into(),
                m.name.as_str().into(),
                m.created_at.as_millis().into(),
                to_json_column(&m.element_origins).into(),
                m.connector.as_str().into(),
                (&m.live_connector).into(),
            ],
        )
        .expect_one(Failure::Duplicate),
    );
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

/// Renames a merchant; a merchant that does not exist fails the unit with
/// `Conflict`.
pub fn update_name(work: &mut UnitOfWork, id: &MerchantId, name: &MerchantName) {
    work.push(
        WriteOp::new(
            "UPDATE merchants SET name = $1 WHERE id = $2",
            vec![name.as_str().into(), id.as_str().into()],
        )
        .expect_one(Failure::Conflict),
    );
}

/// Replaces the merchant's element origins; a merchant that does not exist
/// fails the unit with `Conflict`.
pub fn update_element_origins(work: &mut UnitOfWork, id: &MerchantId, origins: &[ElementOrigin]) {
    work.push(
        WriteOp::new(
            "UPDATE merchants SET element_origins = $1 WHERE id = $2",
            vec![to_json_column(&origins).into(), id.as_str().into()],
        )
        .expect_one(Failure::Conflict),
    );
}

/// Freezes the merchant; one that does not exist or is frozen already at
/// commit time fails the unit with `Conflict`.
pub fn freeze(work: &mut UnitOfWork, id: &MerchantId, freeze: &Freeze) {
    work.push(
        WriteOp::new(
            "UPDATE merchants SET frozen_at = $1, frozen_reason = $2 WHERE id = $3 AND frozen_at IS NULL",
            vec![
                freeze.at.as_millis().into(),
                freeze.reason.as_str().into(),
                id.as_str().into(),
            ],
        )
        .expect_one(Failure::Conflict),
    );
}

/// Lifts the merchant's freeze; one that does not exist or is not frozen at
/// commit time fails the unit with `Conflict`.
pub fn unfreeze(work: &mut UnitOfWork, id: &MerchantId) {
    work.push(
        WriteOp::new(
            "UPDATE merchants SET frozen_at = NULL, frozen_reason = NULL WHERE id = $1 AND frozen_at IS NOT NULL",
            vec![id.as_str().into()],
        )
        .expect_one(Failure::Conflict),
    );
}

impl super::ports::MerchantStore for super::Store {
    async fn get_merchant(&self, id: &MerchantId) -> Result<Option<Merchant>, StoreError> {
        get(self.reader(), id).await
    }

    async fn list_merchants(&self, after: Option<&MerchantId>, limit: i64) -> Result<Vec<Merchant>, StoreError> {
        list(self.reader(), after.map(MerchantId::as_str), limit).await
    }

    fn insert_merchant(&self, work: &mut UnitOfWork, merchant: &Merchant) {
        insert(work, merchant);
    }

    fn rename_merchant(&self, work: &mut UnitOfWork, id: &MerchantId, name: &MerchantName) {
        update_name(work, id, name);
    }

    fn set_element_origins(&self, work: &mut UnitOfWork, id: &MerchantId, origins: &[ElementOrigin]) {
        update_element_origins(work, id, origins);
    }

    fn freeze_merchant(&self, work: &mut UnitOfWork, id: &MerchantId, how: &Freeze) {
        freeze(work, id, how);
    }

    fn unfreeze_merchant(&self, work: &mut UnitOfWork, id: &MerchantId) {
        unfreeze(work, id);
    }
}
