//! The SCA port: each card's low-value counters since its last SCA, and when
//! it last passed SCA, per tenant (merchant and mode) and card fingerprint.
//! Another merchant's or mode's rows are exactly like missing ones.
//!
//! The writes add in place: a staged count never carries a value computed
//! from an earlier read, so two payments of one card committed at once both
//! count, and the low-value count refuses (fails its unit with `Conflict`)
//! the payment that would take the counters past their limits.

use std::future::Future;

use crate::domain::tenant::Tenant;
use crate::store::sca::ScaCounterRow;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

pub trait ScaStore: Send + Sync {
    /// The card's counters; `None` if it has none (no exempted payment and
    /// no SCA yet).
    fn get_sca_counters(
        &self,
        tenant: &Tenant,
        fingerprint: &str,
    ) -> impl Future<Output = Result<Option<ScaCounterRow>, StoreError>> + Send;

    /// Stages counting a payment of `cents` exempted as low value: one more
    /// payment, `cents` more in total, only if the counters then stay
    /// within [`LOW_VALUE_MAX_CONSECUTIVE`](crate::domain::sca::LOW_VALUE_MAX_CONSECUTIVE)
    /// and [`LOW_VALUE_MAX_CUMULATIVE`](crate::domain::sca::LOW_VALUE_MAX_CUMULATIVE);
    /// otherwise the unit fails with `Conflict`.
    fn count_low_value(&self, work: &mut UnitOfWork, tenant: &Tenant, fingerprint: &str, cents: u64, at: i64);

    /// Stages counting a payment of `cents` exempted otherwise (transaction
    /// risk analysis): the issuer counts it too, whatever the totals.
    fn count_exempt(&self, work: &mut UnitOfWork, tenant: &Tenant, fingerprint: &str, cents: u64, at: i64);

    /// Stages the card passing SCA at `at`: counters back to zero.
    fn reset_sca_counters(&self, work: &mut UnitOfWork, tenant: &Tenant, fingerprint: &str, at: i64);
}
