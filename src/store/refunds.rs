//! The `refunds` table. A refund row is written `pending` together with the
//! reservation of its amount on the payment, then moved to `succeeded` or
//! `failed` once the processor has answered.

use sqlx::{Any, Executor};

use super::write_op::{Failure, WriteOp};
use super::StoreError;
use crate::domain::ids::{PaymentId, RefundId};
use crate::domain::tenant::Tenant;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefundRow {
    pub id: String,
    pub merchant_id: String,
    pub payment_id: String,
    pub mode: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub reason: Option<String>,
    pub failure_reason: Option<String>,
    pub processor_reference: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, merchant_id, payment_id, mode, amount, currency, status, reason, failure_reason, \
                       processor_reference, idempotency_key, created_at, updated_at";

/// The statement of [`insert_op`].
pub(crate) const INSERT_SQL: &str =
    "INSERT INTO refunds (id, merchant_id, payment_id, mode, amount, currency, status, reason, failure_reason, \
         processor_reference, idempotency_key, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

pub fn insert_op(row: &RefundRow) -> WriteOp {
    WriteOp::new(
        INSERT_SQL,
        vec![
            (&row.id).into(),
            (&row.merchant_id).into(),
            (&row.payment_id).into(),
            (&row.mode).into(),
            row.amount.into(),
            (&row.currency).into(),
            (&row.status).into(),
            (&row.reason).into(),
            (&row.failure_reason).into(),
            (&row.processor_reference).into(),
            (&row.idempotency_key).into(),
            row.created_at.into(),
            row.updated_at.into(),
        ],
    )
}

/// The statement of [`settle_op`].
pub(crate) const SETTLE_SQL: &str =
    "UPDATE refunds SET status = $1, failure_reason = $2, processor_reference = $3, updated_at = $4 \
         WHERE id = $5 AND merchant_id = $6 AND mode = $7 AND status = 'pending'";

/// Settles a pending refund; the job fails with `StoreError::Conflict` if
/// it is no longer pending.
pub fn settle_op(row: &RefundRow) -> WriteOp {
    WriteOp::new(
        SETTLE_SQL,
        vec![
            (&row.status).into(),
            (&row.failure_reason).into(),
            (&row.processor_reference).into(),
            row.updated_at.into(),
            (&row.id).into(),
            (&row.merchant_id).into(),
            (&row.mode).into(),
        ],
    )
    .expect_one(Failure::Conflict)
}

pub async fn get<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    id: &RefundId,
) -> Result<Option<RefundRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM refunds WHERE id = $1 AND merchant_id = $2 AND mode = $3"
    ))
    .bind(id.as_str())
    .bind(tenant.merchant_str())
    .bind(tenant.mode_str())
    .fetch_optional(db)
    .await?)
}

pub async fn get_by_idempotency_key<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    key: &str,
    since: i64,
) -> Result<Option<RefundRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM refunds WHERE merchant_id = $1 AND idempotency_key = $2 AND created_at >= $3 \
         AND mode = $4 ORDER BY id DESC LIMIT 1"
    ))
    .bind(tenant.merchant_str())
    .bind(key)
    .bind(since)
    .bind(tenant.mode_str())
    .fetch_optional(db)
    .await?)
}

/// Up to `limit` refunds of `merchant`, newest first, of one payment when
/// given, older than `before` when given.
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    payment: Option<&PaymentId>,
    before: Option<&RefundId>,
    limit: i64,
) -> Result<Vec<RefundRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM refunds WHERE merchant_id = $1 AND mode = $5 AND ($2 IS NULL OR payment_id = $2) \
         AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
    ))
    .bind(tenant.merchant_str())
    .bind(payment.map(PaymentId::as_str))
    .bind(before.map(RefundId::as_str))
    .bind(limit)
    .bind(tenant.mode_str())
    .fetch_all(db)
    .await?)
}
