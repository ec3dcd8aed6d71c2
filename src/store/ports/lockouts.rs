//! The lockouts port: failed authentications per client address and the
//! lockouts they trigger, shared through the database so that every replica
//! refuses a locked-out address. Addresses are in canonical text form
//! (`domain::restrictions::canonical`); the decisions are `services::auth`'s
//! and `services::lockouts`'.

use std::future::Future;

use crate::domain::time::Timestamp;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

pub trait LockoutStore: Send + Sync {
    /// Stages recording a failed authentication from `ip` at `at`; never
    /// fails the unit (failures are not unique).
    fn record_auth_failure(&self, work: &mut UnitOfWork, ip: &str, at: Timestamp);

    /// How many failures from `ip` are recorded at or after `since`; `0` for
    /// an address with none.
    fn auth_failures_since(&self, ip: &str, since: Timestamp) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Deletes the failures of every address recorded before `before`, at
    /// once (not staged: maintenance); returns how many.
    fn prune_auth_failures(&self, before: Timestamp) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Stages locking `ip` out until `until`: a new lockout, or an existing
    /// one extended to `until` (never shortened); never fails the unit.
    fn lock_address(&self, work: &mut UnitOfWork, ip: &str, until: Timestamp);

    /// Stages lifting the lockout of `ip` and forgetting every failure
    /// recorded for it; an address with neither changes nothing and never
    /// fails the unit.
    fn clear_lockout(&self, work: &mut UnitOfWork, ip: &str);

    /// Whether `ip` has a lockout (in force or expired) and how many
    /// failures are recorded for it: what [`clear_lockout`](Self::clear_lockout)
    /// would remove. `(false, 0)` for an address with neither.
    fn lockout_recorded(&self, ip: &str) -> impl Future<Output = Result<(bool, i64), StoreError>> + Send;
}
