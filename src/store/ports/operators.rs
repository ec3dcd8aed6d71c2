//! The operators port: operators enrolled for step-up with their sealed
//! TOTP secrets, the last accepted time step of each (the replay guard), and
//! their failed codes and lockouts. The decisions are
//! `services::operators`'.

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::domain::time::Timestamp;
use crate::store::operators::OperatorRow;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

pub trait OperatorStore: Send + Sync {
    /// Stages a new operator; an id or a name already taken fails the unit
    /// with `Duplicate`.
    fn insert_operator(&self, work: &mut UnitOfWork, row: &OperatorRow);

    /// The operator named `name`; `None` if there is none.
    fn get_operator_by_name(&self, name: &str) -> impl Future<Output = Result<Option<OperatorRow>, StoreError>> + Send;

    /// Up to `limit` operators with names after `after`, in name order.
    fn list_operators(
        &self,
        after: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<OperatorRow>, StoreError>> + Send;

    /// How many operators are enrolled.
    fn count_operators(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Stages removing operator `id` and its recorded failures; one missing
    /// at commit time fails the unit with `Conflict`.
    fn delete_operator(&self, work: &mut UnitOfWork, id: &str);

    /// Stages accepting a code of time step `step` for operator `id`:
    /// applies only while the last accepted step is lower (or none), so a
    /// step is accepted at most once, by one unit, whatever runs
    /// concurrently; otherwise (or for a missing operator) the unit fails
    /// with `Conflict`.
    fn accept_operator_step(&self, work: &mut UnitOfWork, id: &str, step: i64);

    /// Stages recording a failed code of operator `id` at `at`; never fails
    /// the unit.
    fn record_operator_failure(&self, work: &mut UnitOfWork, id: &str, at: Timestamp);

    /// Stages forgetting every failure recorded for operator `id`; never
    /// fails the unit.
    fn clear_operator_failures(&self, work: &mut UnitOfWork, id: &str);

    /// How many failures of operator `id` are recorded at or after `since`.
    fn operator_failures_since(
        &self,
        id: &str,
        since: Timestamp,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Stages locking operator `id` out until `until` (extending a lockout,
    /// never shortening it); a missing operator changes nothing and never
    /// fails the unit.
    fn lock_operator(&self, work: &mut UnitOfWork, id: &str, until: Timestamp);

    /// Up to `limit` operators whose secret is wrapped under a KEK other
    /// than `version`, ids after `after`, in id order (KEK rotation).
    fn operators_not_at_kek_version(
        &self,
        version: i64,
        after: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<OperatorRow>, StoreError>> + Send;

    /// Stages a re-wrapped data key (`to`, `wrapped_dek`) for operator `id`,
    /// conditionally on its wrapped key still being `expected_wrapped`:
    /// `changed` is set to whether it was; a row that changed meanwhile is
    /// skipped, never an error.
    fn rewrap_operator(
        &self,
        work: &mut UnitOfWork,
        id: &str,
        expected_wrapped: &str,
        to: i64,
        wrapped_dek: &str,
        changed: Arc<AtomicBool>,
    );

    /// How many sealed operator secrets each KEK version wraps, by version.
    fn operator_secrets_by_kek_version(&self) -> impl Future<Output = Result<Vec<(i64, i64)>, StoreError>> + Send;
}
