//! The reconciliation job's storage: payments left `processing` (through a
//! processor connection) and refunds left `pending` past a cutoff, and the
//! claims (`reconciliation_claims`, one per payment or refund: its id in
//! `payment_id`, the prefixes keep them apart) that let one replica at a
//! time take a round.
//!
//! Single-statement primitives; a claim is taken by a write that must
//! change one row (`Duplicate` for an insert that lost, `Conflict` for an
//! advance from an attempt count another replica moved).

use sqlx::{Any, Executor};

use super::unit_of_work::UnitOfWork;
use super::write_op::{Failure, WriteOp};
use super::StoreError;
use crate::domain::ids::{MerchantId, PaymentId, RefundId};

/// A payment to reconcile: merchant, mode, id.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Stale {
    pub merchant_id: String,
    pub mode: String,
    pub id: String,
}

/// What a claim is about: a payment or one of its refunds.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    Payment(&'a PaymentId),
    Refund(&'a RefundId),
}

impl Subject<'_> {
    fn id(self) -> String {
        match self {
            Subject::Payment(id) => id.to_string(),
            Subject::Refund(id) => id.to_string(),
        }
    }
}

/// A claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Claim {
    pub attempts: i64,
    pub next_at: i64,
    pub alerted: i64,
}

/// Up to `limit` refunds of any merchant stored `pending` (only refunds
/// through a processor connection ever are) and unchanged since before
/// `before` (ms), oldest first.
pub async fn stale_refunds<'e>(
    db: impl Executor<'e, Database = Any>,
    before: i64,
    limit: i64,
) -> Result<Vec<Stale>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT merchant_id, mode, id FROM refunds WHERE status = 'pending' AND updated_at < $1 \
         ORDER BY updated_at LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Up to `limit` payments of any merchant stored `processing` through a
/// connection and unchanged since before `before` (ms), oldest first.
pub async fn stale<'e>(
    db: impl Executor<'e, Database = Any>,
    before: i64,
    limit: i64,
) -> Result<Vec<Stale>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT merchant_id, mode, id FROM payments WHERE status = 'processing' AND updated_at < $1 \
         AND connector LIKE 'conn_%' ORDER BY updated_at LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

pub async fn claim<'e>(
    db: impl Executor<'e, Database = Any>,
    merchant: &MerchantId,
    subject: Subject<'_>,
) -> Result<Option<Claim>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT attempts, next_at, alerted FROM reconciliation_claims WHERE merchant_id = $1 AND payment_id = $2",
    )
    .bind(merchant.as_str())
    .bind(subject.id())
    .fetch_optional(db)
    .await?)
}

/// Takes the first round of a payment or refund; one taken already fails the unit
/// with `Duplicate`.
pub fn first(work: &mut UnitOfWork, merchant: &MerchantId, mode: &str, subject: Subject<'_>, next_at: i64) {
    work.push(
        WriteOp::new(
            "INSERT INTO reconciliation_claims (merchant_id, payment_id, mode, attempts, next_at, alerted) \
             VALUES ($1, $2, $3, 1, $4, 0)",
            vec![
                merchant.as_str().into(),
                subject.id().into(),
                mode.into(),
                next_at.into(),
            ],
        )
        .expect_one(Failure::Duplicate),
    );
}

/// Takes the next round of a payment or refund whose claim still has `attempts`;
/// one moved meanwhile fails the unit with `Conflict`.
pub fn advance(work: &mut UnitOfWork, merchant: &MerchantId, subject: Subject<'_>, attempts: i64, next_at: i64) {
    work.push(
        WriteOp::new(
            "UPDATE reconciliation_claims SET attempts = $1, next_at = $2 \
             WHERE merchant_id = $3 AND payment_id = $4 AND attempts = $5",
            vec![
                (attempts + 1).into(),
                next_at.into(),
                merchant.as_str().into(),
                subject.id().into(),
                attempts.into(),
            ],
        )
        .expect_one(Failure::Conflict),
    );
}

/// Records that the overdue alert was emitted.
pub fn alerted(work: &mut UnitOfWork, merchant: &MerchantId, subject: Subject<'_>) {
    work.push(WriteOp::new(
        "UPDATE reconciliation_claims SET alerted = 1 WHERE merchant_id = $1 AND payment_id = $2",
        vec![merchant.as_str().into(), subject.id().into()],
    ));
}

impl super::ports::ReconciliationStore for super::Store {
    async fn stale_processing(&self, before: i64, limit: i64) -> Result<Vec<Stale>, StoreError> {
        stale(self.reader(), before, limit).await
    }

    async fn stale_pending_refunds(&self, before: i64, limit: i64) -> Result<Vec<Stale>, StoreError> {
        stale_refunds(self.reader(), before, limit).await
    }

    async fn reconciliation_claim(
        &self,
        merchant: &MerchantId,
        subject: Subject<'_>,
    ) -> Result<Option<Claim>, StoreError> {
        claim(self.reader(), merchant, subject).await
    }

    fn first_reconciliation(
        &self,
        work: &mut UnitOfWork,
        merchant: &MerchantId,
        mode: &str,
        subject: Subject<'_>,
        next_at: i64,
    ) {
        first(work, merchant, mode, subject, next_at);
    }

    fn advance_reconciliation(
        &self,
        work: &mut UnitOfWork,
        merchant: &MerchantId,
        subject: Subject<'_>,
        attempts: i64,
        next_at: i64,
    ) {
        advance(work, merchant, subject, attempts, next_at);
    }

    fn reconciliation_alerted(&self, work: &mut UnitOfWork, merchant: &MerchantId, subject: Subject<'_>) {
        alerted(work, merchant, subject);
    }
}
