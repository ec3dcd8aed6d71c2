//! The `refunds` table. A refund row is written `pending` together with the
//! reservation of its amount on the payment, then moved to `succeeded` or
//! `failed` once the processor has answered. Rows exist only in here: every
//! function takes or returns a [`Refund`].

use sqlx::{Any, Executor};

use super::write_op::{Failure, WriteOp};
use super::StoreError;
use crate::domain::api_key::Mode;
use crate::domain::ids::{MerchantId, PaymentId, RefundId};
use crate::domain::money::{Currency, MinorUnits, Money};
use crate::domain::payment::{NewRefund, Refund, RefundStatus};
use crate::domain::payment_fields::RefundReason;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;

/// The columns of a refund, in the order of [`RefundRow`] and of the values
/// of [`insert_op`] (written once: every statement uses it).
macro_rules! refund_columns {
    () => {
        "id, merchant_id, payment_id, mode, amount, currency, status, reason, failure_reason, \
         processor_reference, idempotency_key, created_at, updated_at"
    };
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct RefundRow {
    id: String,
    merchant_id: String,
    payment_id: String,
    mode: String,
    amount: i64,
    currency: String,
    status: String,
    reason: Option<String>,
    failure_reason: Option<String>,
    processor_reference: Option<String>,
    idempotency_key: Option<String>,
    created_at: i64,
    updated_at: i64,
}

fn corrupt(column: &str) -> StoreError {
    StoreError::Corrupt(format!("refunds.{column}"))
}

impl TryFrom<RefundRow> for Refund {
    type Error = StoreError;

    fn try_from(row: RefundRow) -> Result<Self, StoreError> {
        let mode = Mode::parse(&row.mode).ok_or_else(|| corrupt("mode"))?;
        let new = NewRefund {
            id: RefundId::from_trusted(row.id),
            tenant: Tenant::new(MerchantId::from_trusted(row.merchant_id), mode),
            payment: PaymentId::from_trusted(row.payment_id),
            money: Money {
                amount: MinorUnits::parse(row.amount, i64::MAX).map_err(|_| corrupt("amount"))?,
                currency: Currency::parse(&row.currency).map_err(|_| corrupt("currency"))?,
            },
            reason: row
                .reason
                .as_deref()
                .map(|r| RefundReason::parse(r).ok_or_else(|| corrupt("reason")))
                .transpose()?,
            idempotency_key: row.idempotency_key,
        };
        Ok(Refund::from_stored(
            new,
            RefundStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            row.failure_reason,
            row.processor_reference,
            Timestamp::from_millis(row.created_at),
            Timestamp::from_millis(row.updated_at),
        ))
    }
}

const COLUMNS: &str = refund_columns!();

/// The statement of [`insert_op`].
pub(crate) const INSERT_SQL: &str = concat!(
    "INSERT INTO refunds (",
    refund_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
);

pub fn insert_op(refund: &Refund) -> WriteOp {
    WriteOp::new(
        INSERT_SQL,
        vec![
            refund.id.as_str().into(),
            refund.tenant.merchant_str().into(),
            refund.payment.as_str().into(),
            refund.tenant.mode_str().into(),
            refund.money.amount.get().into(),
            refund.money.currency.code().into(),
            refund.status().as_str().into(),
            refund.reason.map(RefundReason::as_str).into(),
            (&refund.failure_reason).into(),
            (&refund.processor_reference).into(),
            (&refund.idempotency_key).into(),
            refund.created_at.as_millis().into(),
            refund.updated_at.as_millis().into(),
        ],
    )
}

/// The statement of [`settle_op`].
pub(crate) const SETTLE_SQL: &str =
    "UPDATE refunds SET status = $1, failure_reason = $2, processor_reference = $3, updated_at = $4 \
         WHERE id = $5 AND merchant_id = $6 AND mode = $7 AND status = 'pending'";

/// Settles a pending refund; the job fails with `StoreError::Conflict` if
/// it is no longer pending.
pub fn settle_op(refund: &Refund) -> WriteOp {
    WriteOp::new(
        SETTLE_SQL,
        vec![
            refund.status().as_str().into(),
            (&refund.failure_reason).into(),
            (&refund.processor_reference).into(),
            refund.updated_at.as_millis().into(),
            refund.id.as_str().into(),
            refund.tenant.merchant_str().into(),
            refund.tenant.mode_str().into(),
        ],
    )
    .expect_one(Failure::Conflict)
}

pub async fn get<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    id: &RefundId,
) -> Result<Option<Refund>, StoreError> {
    let row: Option<RefundRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM refunds WHERE id = $1 AND merchant_id = $2 AND mode = $3"
    ))
    .bind(id.as_str())
    .bind(tenant.merchant_str())
    .bind(tenant.mode_str())
    .fetch_optional(db)
    .await?;
    row.map(Refund::try_from).transpose()
}

pub async fn get_by_idempotency_key<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    key: &str,
    since: i64,
) -> Result<Option<Refund>, StoreError> {
    let row: Option<RefundRow> =
        super::idempotent_reads::newest_by_idempotency_key(db, "refunds", COLUMNS, tenant, key, since).await?;
    row.map(Refund::try_from).transpose()
}

/// Up to `limit` refunds of `merchant`, newest first, of one payment when
/// given, older than `before` when given.
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    payment: Option<&PaymentId>,
    before: Option<&RefundId>,
    limit: i64,
) -> Result<Vec<Refund>, StoreError> {
    let rows: Vec<RefundRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM refunds WHERE merchant_id = $1 AND mode = $5 AND ($2 IS NULL OR payment_id = $2) \
         AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
    ))
    .bind(tenant.merchant_str())
    .bind(payment.map(PaymentId::as_str))
    .bind(before.map(RefundId::as_str))
    .bind(limit)
    .bind(tenant.mode_str())
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Refund::try_from).collect()
}

impl super::ports::RefundStore for super::Store {
    fn insert_refund(&self, work: &mut super::unit_of_work::UnitOfWork, refund: &Refund) {
        work.push(insert_op(refund));
    }

    fn settle_refund(&self, work: &mut super::unit_of_work::UnitOfWork, refund: &Refund) {
        work.push(settle_op(refund));
    }

    async fn get_refund(&self, tenant: &Tenant, id: &RefundId) -> Result<Option<Refund>, StoreError> {
        get(self.reader(), tenant, id).await
    }

    async fn get_refund_by_idempotency_key(
        &self,
        tenant: &Tenant,
        key: &str,
        since: i64,
    ) -> Result<Option<Refund>, StoreError> {
        get_by_idempotency_key(self.reader(), tenant, key, since).await
    }

    async fn list_refunds(
        &self,
        tenant: &Tenant,
        payment: Option<&PaymentId>,
        before: Option<&RefundId>,
        limit: i64,
    ) -> Result<Vec<Refund>, StoreError> {
        list(self.reader(), tenant, payment, before, limit).await
    }
}
