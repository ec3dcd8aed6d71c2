//! The refunds port: a refund is written `pending` with the reservation of
//! its amount on the payment (`PaymentStore::reserve_refund`, same unit),
//! then settled once, when the processor has answered.

use std::future::Future;

use crate::domain::ids::{PaymentId, RefundId};
use crate::domain::payment::Refund;
use crate::domain::tenant::Tenant;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

pub trait RefundStore: Send + Sync {
    /// Stages a new refund as it is (usually `pending`); an id collision
    /// fails the unit with `Duplicate`, a payment of the merchant that does
    /// not exist with `Constraint`.
    fn insert_refund(&self, work: &mut UnitOfWork, refund: &Refund);

    /// Stages the settlement of the tenant's refund (its status, failure
    /// reason, processor reference and `updated_at` as in `refund`); one
    /// that is no longer `pending`, or missing, fails the unit with
    /// `Conflict`.
    fn settle_refund(&self, work: &mut UnitOfWork, refund: &Refund);

    /// The tenant's refund `id`; `None` if missing or another merchant's or
    /// mode's.
    fn get_refund(
        &self,
        tenant: &Tenant,
        id: &RefundId,
    ) -> impl Future<Output = Result<Option<Refund>, StoreError>> + Send;

    /// The tenant's newest refund created with idempotency key `key` at or
    /// after `since` (ms); `None` if there is none.
    fn get_refund_by_idempotency_key(
        &self,
        tenant: &Tenant,
        key: &str,
        since: i64,
    ) -> impl Future<Output = Result<Option<Refund>, StoreError>> + Send;

    /// Up to `limit` of the tenant's refunds, newest first, of `payment`
    /// when given, older than `before` when given.
    fn list_refunds(
        &self,
        tenant: &Tenant,
        payment: Option<&PaymentId>,
        before: Option<&RefundId>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Refund>, StoreError>> + Send;
}
