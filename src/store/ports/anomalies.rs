//! The anomalies port: alerts of the anomaly detectors (one per detector,
//! subject and window: a second insert fails its unit with `Duplicate`),
//! the throttles they imposed, and the countries each key was used from.

use std::future::Future;

use crate::domain::anomaly::Anomaly;
use crate::domain::ids::{AnomalyId, ApiKeyId};
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

pub trait AnomalyStore: Send + Sync {
    /// Stages the alert; another alert of the same detector, subject and
    /// window (raised by any replica) fails the unit with `Duplicate`.
    fn insert_anomaly(&self, work: &mut UnitOfWork, anomaly: &Anomaly);

    /// Up to `limit` alerts of `tenant` (its merchant and mode) with ids
    /// before `before`, newest first.
    fn list_anomalies_for_tenant(
        &self,
        tenant: &Tenant,
        before: Option<&AnomalyId>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Anomaly>, StoreError>> + Send;

    /// Up to `limit` alerts of every subject with ids before `before`,
    /// newest first (operator use).
    fn list_anomalies(
        &self,
        before: Option<&AnomalyId>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Anomaly>, StoreError>> + Send;

    /// The throttles in force at `now`: (subject, until), at most `limit`.
    fn active_throttles(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<(String, Timestamp)>, StoreError>> + Send;

    /// The step-ups in force at `now`: (subject, until), at most `limit`.
    fn active_step_ups(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<(String, Timestamp)>, StoreError>> + Send;

    /// The countries `key` was used from (ISO codes).
    fn key_countries(&self, key: &ApiKeyId) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Stages recording that `key` was used from `country`; a pair already
    /// recorded (by any replica) fails the unit with `Duplicate`.
    fn insert_key_country(&self, work: &mut UnitOfWork, key: &ApiKeyId, country: &str, at: Timestamp);
}
