//! The reconciliation port: payments left `processing` and the claims that
//! let one replica at a time reconcile each.

use std::future::Future;

use crate::domain::ids::{MerchantId, PaymentId};
use crate::store::reconciliation::{Claim, Stale};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

pub trait ReconciliationStore: Send + Sync {
    /// Up to `limit` payments (any merchant) stored `processing` through a
    /// processor connection, unchanged since before `before` (ms).
    fn stale_processing(&self, before: i64, limit: i64) -> impl Future<Output = Result<Vec<Stale>, StoreError>> + Send;

    /// The payment's claim; `None` before its first round.
    fn reconciliation_claim(
        &self,
        merchant: &MerchantId,
        payment: &PaymentId,
    ) -> impl Future<Output = Result<Option<Claim>, StoreError>> + Send;

    /// Stages taking the first round; taken already fails with `Duplicate`.
    fn first_reconciliation(
        &self,
        work: &mut UnitOfWork,
        merchant: &MerchantId,
        mode: &str,
        payment: &PaymentId,
        next_at: i64,
    );

    /// Stages taking the round after `attempts`; moved meanwhile fails with
    /// `Conflict`.
    fn advance_reconciliation(
        &self,
        work: &mut UnitOfWork,
        merchant: &MerchantId,
        payment: &PaymentId,
        attempts: i64,
        next_at: i64,
    );

    /// Stages recording that the overdue alert was emitted.
    fn reconciliation_alerted(&self, work: &mut UnitOfWork, merchant: &MerchantId, payment: &PaymentId);
}
