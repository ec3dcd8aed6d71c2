//! The payments port: payments (each with its history) written by
//! compare-and-set on their version, and the reservation of refund amounts
//! that the database checks against what was captured.

use std::future::Future;

use crate::domain::ids::PaymentId;
use crate::domain::payment::{ListFilter, Payment};
use crate::domain::tenant::Tenant;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

pub trait PaymentStore: Send + Sync {
    /// Stages a new payment; an id the merchant already has fails the unit
    /// with `Duplicate`, a merchant or payment method that does not exist
    /// with `Constraint`. `Err` now (nothing staged) if the payment cannot
    /// be stored (`Corrupt`: a field that does not serialise).
    fn insert_payment(&self, work: &mut UnitOfWork, payment: &Payment) -> Result<(), StoreError>;

    /// Stages writing every mutable part of `payment` (status, amounts
    /// other than the refunded one, method, processor reference, decline,
    /// next action, cancellation, claim, history; `version` the new one) if
    /// the stored payment of its tenant still has version
    /// `payment.version - 1`; otherwise (changed meanwhile, missing) the unit
    /// fails with `Conflict`. `Err` now as for [`insert_payment`](Self::insert_payment).
    fn update_payment(&self, work: &mut UnitOfWork, payment: &Payment) -> Result<(), StoreError>;

    /// Stages adding `amount` to what is refunded of the tenant's succeeded
    /// payment `id` (its version moves on by one, `updated_at` to `at`) if
    /// the total stays within what was captured; otherwise (not succeeded,
    /// too much, missing) the unit fails with `Conflict`.
    fn reserve_refund(&self, work: &mut UnitOfWork, tenant: &Tenant, id: &PaymentId, amount: i64, at: i64);

    /// Stages giving back a reservation of [`reserve_refund`](Self::reserve_refund)
    /// (the refund failed): subtracts `amount` if that much is refunded,
    /// else changes nothing; never fails the unit.
    fn release_refund(&self, work: &mut UnitOfWork, tenant: &Tenant, id: &PaymentId, amount: i64, at: i64);

    /// The tenant's payment `id`; `None` if missing or another merchant's or
    /// mode's.
    fn get_payment(
        &self,
        tenant: &Tenant,
        id: &PaymentId,
    ) -> impl Future<Output = Result<Option<Payment>, StoreError>> + Send;

    /// A payment by id alone, only if it carries a next action (the
    /// customer-facing challenge page, which proves itself with the
    /// challenge secret); `None` otherwise.
    fn get_payment_with_next_action(
        &self,
        id: &PaymentId,
    ) -> impl Future<Output = Result<Option<Payment>, StoreError>> + Send;

    /// The tenant's newest payment created with idempotency key `key` at or
    /// after `since` (ms); `None` if there is none.
    fn get_payment_by_idempotency_key(
        &self,
        tenant: &Tenant,
        key: &str,
        since: i64,
    ) -> impl Future<Output = Result<Option<Payment>, StoreError>> + Send;

    /// Up to `limit` of the tenant's payments passing `filter`, newest first.
    fn list_payments(
        &self,
        tenant: &Tenant,
        filter: &ListFilter,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Payment>, StoreError>> + Send;

    /// Up to `limit` of the tenant's payments the fraud rules hold for a
    /// review (decision `review`, still `requires_capture`), newest first,
    /// older than `before` when given.
    fn list_open_reviews(
        &self,
        tenant: &Tenant,
        before: Option<&PaymentId>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Payment>, StoreError>> + Send;

    /// Up to `limit` payments of any tenant in `requires_action` whose
    /// challenge expired before `now` (ms), oldest expiry first.
    fn expired_actions(&self, now: i64, limit: i64) -> impl Future<Output = Result<Vec<Payment>, StoreError>> + Send;
}
