//! Operator actions on address lockouts: lifting one, with its recorded
//! failures, in one audited unit (the lockouts themselves are decided by
//! `services::auth`).

use crate::domain::audit::Outcome;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::{Commit, LockoutStore};

use super::actor::Actor;
use super::ServiceError;

/// What a clear found and removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleared {
    /// Whether the address had a lockout.
    pub was_locked: bool,
    /// Recorded failures forgotten with it.
    pub failures_forgotten: i64,
}

/// Lifts the lockout of `ip` (canonical text form) and forgets its recorded
/// failures, so one more bad key does not re-lock it at once. Returns once
/// no gateway still holds the lockout.
pub async fn clear<S: LockoutStore + Commit>(store: &S, actor: &Actor, ip: &str) -> Result<Cleared, ServiceError> {
    let (was_locked, failures_forgotten) = store.lockout_recorded(ip).await?;
    let mut event = actor.event("auth.lockout_cleared", Outcome::Success);
    event.resource = Some(ip.to_owned());
    event.reason = Some(format!("{failures_forgotten} recorded failures forgotten"));
    let mut work = UnitOfWork::new();
    store.clear_lockout(&mut work, ip);
    work.audit(event);
    store.commit(work).await?;
    store.auth_state_changed().await;
    Ok(Cleared {
        was_locked,
        failures_forgotten,
    })
}
