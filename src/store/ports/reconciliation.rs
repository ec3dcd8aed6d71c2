//! The reconciliation port: payments left `processing`, refunds left
//! `pending`, and the claims that let one replica at a time reconcile each.

use std::future::Future;

use crate::domain::ids::MerchantId;
use crate::store::reconciliation::{Claim, Stale, Subject};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

pub trait ReconciliationStore: Send + Sync {
    /// Up to `limit` payments (any merchant) stored `processing` through a
    /// processor connection, unchanged since before `before` (ms).
    fn stale_processing(&self, before: i64, limit: i64) -> impl Future<Output = Result<Vec<Stale>, StoreError>> + Send;

    /// Up to `limit` refunds (any merchant) stored `pending`, unchanged
    /// since before `before` (ms).
    fn stale_pending_refunds(
        &self,
        before: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Stale>, StoreError>> + Send;

    /// The subject's claim; `None` before its first round.
    fn reconciliation_claim(
        &self,
        merchant: &MerchantId,
        subject: Subject<'_>,
    ) -> impl Future<Output = Result<Option<Claim>, StoreError>> + Send;

    /// Stages taking the first round; taken already fails with `Duplicate`.
    fn first_reconciliation(
        &self,
        work: &mut UnitOfWork,
        merchant: &MerchantId,
        mode: &str,
        subject: Subject<'_>,
        next_at: i64,
    );

    /// Stages taking the round after `attempts`; moved meanwhile fails with
    /// `Conflict`.
    fn advance_reconciliation(
        &self,
        work: &mut UnitOfWork,
        merchant: &MerchantId,
        subject: Subject<'_>,
        attempts: i64,
        next_at: i64,
    );

    /// Stages recording that the overdue alert was emitted.
    fn reconciliation_alerted(&self, work: &mut UnitOfWork, merchant: &MerchantId, subject: Subject<'_>);
}
