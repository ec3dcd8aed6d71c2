//! The `payments` table, each payment's history a JSON array in its row
//! (`history`). Rows exist only in here: every function takes or returns a
//! [`Payment`], mapped in `row`.
//!
//! Writes are compare-and-set: an update names the version it read and
//! changes nothing if the row moved on in between, so two concurrent changes
//! of one payment can never both apply. Refund amounts are reserved with a
//! conditional increment that the database checks against what was captured.

use sqlx::{Any, Executor};

use super::unit_of_work::UnitOfWork;
use super::write_op::{Failure, WriteOp};
use super::{Store, StoreError};
use crate::domain::ids::PaymentId;
use crate::domain::payment::{ListFilter, Payment, PaymentStatus};
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;

mod history;
mod risk;
mod row;
mod sca;

pub use history::{history_column, parse_history};
use row::{payment_columns, PaymentRow};

const COLUMNS: &str = payment_columns!();

/// The statement of [`insert_op`].
pub(crate) const INSERT_SQL: &str = concat!(
    "INSERT INTO payments (",
    payment_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
     $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32)"
);

/// Inserts a new payment.
pub fn insert_op(payment: &Payment) -> Result<WriteOp, StoreError> {
    Ok(WriteOp::new(INSERT_SQL, row::insert_values(payment)?))
}

/// The statement of [`update_op`].
pub(crate) const UPDATE_SQL: &str =
    "UPDATE payments SET status = $1, payment_method = $2, amount_capturable = $3, amount_received = $4, \
         processor_reference = $5, decline_code = $6, failure_code = $7, failure_message = $8, next_action = $9, \
         action_expires_at = $10, cancellation_reason = $11, version = $12, updated_at = $13, history = $14, \
         claim = $19, risk = $20, sca = $21 \
         WHERE id = $15 AND merchant_id = $16 AND version = $17 AND mode = $18";

/// Writes every mutable column of `payment` (whose `version` is the new one)
/// if the stored row still has version `payment.version - 1`; otherwise the
/// job fails with `StoreError::Conflict`.
pub fn update_op(payment: &Payment) -> Result<WriteOp, StoreError> {
    let m = row::mutable(payment)?;
    Ok(WriteOp::new(
        UPDATE_SQL,
        vec![
            m.status,
            m.payment_method,
            m.amount_capturable,
            m.amount_received,
            m.processor_reference,
            m.decline_code,
            m.failure_code,
            m.failure_message,
            m.next_action,
            m.action_expires_at,
            m.cancellation_reason,
            m.version,
            m.updated_at,
            m.history,
            payment.id.as_str().into(),
            payment.tenant.merchant_str().into(),
            (payment.version - 1).into(),
            payment.tenant.mode_str().into(),
            m.claim,
            m.risk,
            m.sca,
        ],
    )
    .expect_one(Failure::Conflict))
}

/// Adds `amount` to what is refunded of a succeeded payment, only if the
/// total stays within what was captured; otherwise the job fails with
/// `StoreError::Conflict`.
pub fn reserve_refund_op(tenant: &Tenant, id: &PaymentId, amount: i64, at: i64) -> WriteOp {
    WriteOp::new(
        "UPDATE payments SET amount_refunded = amount_refunded + $1, version = version + 1, updated_at = $2 \
         WHERE id = $3 AND merchant_id = $4 AND mode = $5 AND status = 'succeeded' \
         AND amount_refunded + $1 <= amount_received",
        vec![
            amount.into(),
            at.into(),
            id.as_str().into(),
            tenant.merchant_str().into(),
            tenant.mode_str().into(),
        ],
    )
    .expect_one(Failure::Conflict)
}

/// Gives back a reservation made by [`reserve_refund_op`] (the refund failed).
pub fn release_refund_op(tenant: &Tenant, id: &PaymentId, amount: i64, at: i64) -> WriteOp {
    WriteOp::new(
        "UPDATE payments SET amount_refunded = amount_refunded - $1, version = version + 1, updated_at = $2 \
         WHERE id = $3 AND merchant_id = $4 AND mode = $5 AND amount_refunded >= $1",
        vec![
            amount.into(),
            at.into(),
            id.as_str().into(),
            tenant.merchant_str().into(),
            tenant.mode_str().into(),
        ],
    )
}

/// The payment `id` of `tenant`; `None` if there is none (or it is another
/// merchant's or mode's). On PostgreSQL it takes the hot reads' path
/// ([`super::pg_fast`]); on SQLite it runs inline on the calling thread ([`super::sqlite_fast`]):
/// it is on the path of every refund, capture and confirm.
pub async fn get(store: &Store, tenant: &Tenant, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        payment_columns!(),
        " FROM payments WHERE id = $1 AND merchant_id = $2 AND mode = $3"
    );
    let mapping = super::hot_read::RowMapping {
        table: "payments",
        from_sqlite: PaymentRow::from_sqlite,
        from_postgres: PaymentRow::from_postgres,
    };
    let pool = async {
        Ok(sqlx::query_as(SQL)
            .bind(id.as_str())
            .bind(tenant.merchant_str())
            .bind(tenant.mode_str())
            .fetch_optional(store.reader())
            .await?)
    };
    let params = [id.as_str(), tenant.merchant_str(), tenant.mode_str()];
    let row: Option<PaymentRow> = super::hot_read::one(store, SQL, params, mapping, pool).await?;
    row.map(Payment::try_from).transpose()
}

/// A payment by id alone, for the customer-facing challenge page (which
/// proves itself with the challenge secret, not an API key): only a payment
/// that carries a `next_action` (the challenge link and its secret) has a
/// page, so no other is ever found here. On SQLite a partial index holds
/// just those (payments are keyed by merchant there).
pub async fn get_unscoped<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &PaymentId,
) -> Result<Option<Payment>, StoreError> {
    let row: Option<PaymentRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE id = $1 AND next_action IS NOT NULL"
    ))
    .bind(id.as_str())
    .fetch_optional(db)
    .await?;
    row.map(Payment::try_from).transpose()
}

/// The payment of `tenant` created with this (key-scoped) idempotency key,
/// if any.
pub async fn get_by_idempotency_key<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    key: &str,
    since: i64,
) -> Result<Option<Payment>, StoreError> {
    let row: Option<PaymentRow> =
        super::idempotent_reads::newest_by_idempotency_key(db, "payments", COLUMNS, tenant, key, since).await?;
    row.map(Payment::try_from).transpose()
}

/// Up to `limit` payments of `tenant`, newest first.
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    filter: &ListFilter,
    limit: i64,
) -> Result<Vec<Payment>, StoreError> {
    // One constant statement for every filter combination: `$n IS NULL OR …`.
    let rows: Vec<PaymentRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE merchant_id = $1 AND mode = $7 \
         AND ($2 IS NULL OR status = $2) \
         AND ($3 IS NULL OR created_at >= $3) \
         AND ($4 IS NULL OR created_at <= $4) \
         AND ($5 IS NULL OR id < $5) \
         ORDER BY id DESC LIMIT $6"
    ))
    .bind(tenant.merchant_str())
    .bind(filter.status.map(PaymentStatus::as_str))
    .bind(filter.created_gte.map(Timestamp::as_millis))
    .bind(filter.created_lte.map(Timestamp::as_millis))
    .bind(filter.before.as_ref().map(PaymentId::as_str))
    .bind(limit)
    .bind(tenant.mode_str())
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Payment::try_from).collect()
}

/// Up to `limit` of the tenant's payments held for a review (the `risk`
/// column's decision is `review`, as `risk` writes it) and still
/// `requires_capture`, newest first, older than `before` when given.
pub async fn list_open_reviews<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    before: Option<&PaymentId>,
    limit: i64,
) -> Result<Vec<Payment>, StoreError> {
    let rows: Vec<PaymentRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE merchant_id = $1 AND mode = $2 AND status = 'requires_capture' \
         AND risk LIKE $3 AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
    ))
    .bind(tenant.merchant_str())
    .bind(tenant.mode_str())
    .bind(risk::REVIEW_PATTERN)
    .bind(before.map(PaymentId::as_str))
    .bind(limit)
    .fetch_all(db)
    .await?;
    let payments = rows.into_iter().map(Payment::try_from).collect::<Result<Vec<_>, _>>()?;
    // The pattern could match a rule or list value that spells the decision;
    // the parsed risk decides.
    Ok(payments
        .into_iter()
        .filter(|p| p.risk.as_ref().is_some_and(|r| r.held_for_review()))
        .collect())
}

/// Payments whose customer challenge expired before `now`, oldest first.
pub async fn expired_actions<'e>(
    db: impl Executor<'e, Database = Any>,
    now: i64,
    limit: i64,
) -> Result<Vec<Payment>, StoreError> {
    let rows: Vec<PaymentRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE status = 'requires_action' AND action_expires_at < $1 \
         ORDER BY action_expires_at LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Payment::try_from).collect()
}

impl crate::store::ports::PaymentStore for Store {
    fn insert_payment(&self, work: &mut UnitOfWork, payment: &Payment) -> Result<(), StoreError> {
        work.push(insert_op(payment)?);
        Ok(())
    }

    fn update_payment(&self, work: &mut UnitOfWork, payment: &Payment) -> Result<(), StoreError> {
        work.push(update_op(payment)?);
        Ok(())
    }

    fn reserve_refund(&self, work: &mut UnitOfWork, tenant: &Tenant, id: &PaymentId, amount: i64, at: i64) {
        work.push(reserve_refund_op(tenant, id, amount, at));
    }

    fn release_refund(&self, work: &mut UnitOfWork, tenant: &Tenant, id: &PaymentId, amount: i64, at: i64) {
        work.push(release_refund_op(tenant, id, amount, at));
    }

    async fn get_payment(&self, tenant: &Tenant, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        get(self, tenant, id).await
    }

    async fn get_payment_with_next_action(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        get_unscoped(self.reader(), id).await
    }

    async fn get_payment_by_idempotency_key(
        &self,
        tenant: &Tenant,
        key: &str,
        since: i64,
    ) -> Result<Option<Payment>, StoreError> {
        get_by_idempotency_key(self.reader(), tenant, key, since).await
    }

    async fn list_payments(
        &self,
        tenant: &Tenant,
        filter: &ListFilter,
        limit: i64,
    ) -> Result<Vec<Payment>, StoreError> {
        list(self.reader(), tenant, filter, limit).await
    }

    async fn list_open_reviews(
        &self,
        tenant: &Tenant,
        before: Option<&PaymentId>,
        limit: i64,
    ) -> Result<Vec<Payment>, StoreError> {
        list_open_reviews(self.reader(), tenant, before, limit).await
    }

    async fn expired_actions(&self, now: i64, limit: i64) -> Result<Vec<Payment>, StoreError> {
        expired_actions(self.reader(), now, limit).await
    }
}
