//! The fraud signals port: the observations of screened confirms (one per
//! confirm, inserted in the payment's own unit of work) and the counts the
//! velocity facts of later confirms are read from, per tenant (merchant and
//! mode): another merchant's or mode's observations are never counted.

use std::future::Future;

use crate::domain::tenant::Tenant;
use crate::store::fraud_signals::{ObservationKeys, ObservationRow, ObservedCounts};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

pub trait SignalStore: Send + Sync {
    /// The tenant's observations of `keys`' card, IP and e-mail address
    /// made at or after `since_24h` (milliseconds), of those at or after
    /// `since_1h`, each count over at most the newest
    /// [`MAX_COUNTED`](crate::store::fraud_signals::MAX_COUNTED) rows; and
    /// whether the card was observed at all. A key that is `None` counts
    /// nothing.
    fn observed_counts(
        &self,
        tenant: &Tenant,
        keys: ObservationKeys<'_>,
        since_1h: i64,
        since_24h: i64,
    ) -> impl Future<Output = Result<ObservedCounts, StoreError>> + Send;

    /// How many of the tenant's newest (at most `USUAL_SAMPLE`) observations
    /// are in `currency`, and the sum of their amounts.
    fn observed_amounts(
        &self,
        tenant: &Tenant,
        currency: &str,
    ) -> impl Future<Output = Result<(i64, i64), StoreError>> + Send;

    /// Deletes every observation older than `before` (milliseconds), of
    /// every tenant; returns how many.
    fn prune_observations(&self, before: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Stages recording one screened confirm; one already recorded for the
    /// same payment at the same time is ignored.
    fn insert_observation(&self, work: &mut UnitOfWork, tenant: &Tenant, row: &ObservationRow);
}
