//! Step-up: the second factor an operator gives before an action that widens
//! access or exposes data (unfreezing, a key that may reveal cards, KEK
//! rotation, audit export, …; the CLI decides which).
//!
//! Policy: with no operator enrolled, step-up is waived (the posture check
//! warns about it); once one is, every such action needs a named operator
//! and a valid code of theirs.
//!
//! Invariants:
//! - A code is accepted for the current 30-second step or one step either
//!   side, and only by a conditional update that raises the operator's last
//!   accepted step: the same code (or one of an earlier step) never passes
//!   twice, even from two commands at once on any host.
//! - Every refusal is audited (`operator.step_up_failed`, never with the
//!   code); a wrong or replayed code counts towards the operator's lockout
//!   (by default 5 within 15 minutes lock the operator out for 15 minutes,
//!   audited as `operator.locked_out`), and a locked-out operator is refused
//!   whatever the code. A success is audited (`operator.step_up`) and forgets
//!   the operator's failures.

use std::time::Duration;

use crate::domain::audit::Outcome;
use crate::domain::operator::{Operator, OperatorName, TotpCode};
use crate::domain::time::Timestamp;
use crate::store::operators::OperatorRow;
use crate::store::ports::{Commit, OperatorStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;
use crate::vault::KekProvider;

use super::super::actor::Actor;
use super::super::ServiceError;
use super::TotpSecret;

/// The audit action of a successful step-up.
pub const STEPPED_UP: &str = "operator.step_up";
/// The audit action of a refused one.
pub const FAILED: &str = "operator.step_up_failed";
/// The audit action of an operator's lockout.
pub const LOCKED_OUT: &str = "operator.locked_out";

/// Failed codes that lock an operator out.
#[derive(Debug, Clone)]
pub struct StepUpPolicy {
    /// Failures within `window` that trigger a lockout.
    pub threshold: i64,
    pub window: Duration,
    /// How long a locked-out operator is refused.
    pub duration: Duration,
}

impl Default for StepUpPolicy {
    fn default() -> Self {
        Self {
            threshold: 5,
            window: Duration::from_secs(15 * 60),
            duration: Duration::from_secs(15 * 60),
        }
    }
}

/// The outcome of a step-up that lets the action proceed.
#[derive(Debug, Clone)]
pub enum StepUp {
    /// No operator is enrolled: nothing to check.
    Waived,
    /// The operator gave a valid, unused code.
    Verified(Operator),
}

/// Why a step-up refused the action. Never carries the code.
#[derive(Debug, thiserror::Error)]
pub enum StepUpError {
    #[error("step-up required: an operator is enrolled, so this action needs an operator name and a TOTP code")]
    Required,
    #[error("no operator named {0} is enrolled")]
    UnknownOperator(OperatorName),
    #[error("operator {name} is locked out after repeated failed codes until {}", until.to_rfc3339())]
    LockedOut { name: OperatorName, until: Timestamp },
    #[error("wrong TOTP code for operator {0}")]
    WrongCode(OperatorName),
    #[error("this TOTP code of operator {0} was already used: wait for the next one")]
    Replayed(OperatorName),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for StepUpError {
    fn from(e: StoreError) -> Self {
        StepUpError::Service(e.into())
    }
}

/// What the operator gave for a step-up before `action` (a command name such
/// as `key unfreeze`, for the audit trail).
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub action: &'a str,
    pub operator: Option<&'a OperatorName>,
    pub code: Option<&'a TotpCode>,
    pub now: Timestamp,
}

/// Checks a step-up: waived with no operator enrolled and none named;
/// otherwise the named operator's code must be valid and unused. `actor` is
/// who is at the CLI (refusals and the success are audited as theirs).
pub async fn step_up<S: OperatorStore + Commit>(
    store: &S,
    keyring: &dyn KekProvider,
    policy: &StepUpPolicy,
    actor: &Actor,
    attempt: Attempt<'_>,
) -> Result<StepUp, StepUpError> {
    let Some(name) = attempt.operator else {
        if store.count_operators().await? == 0 {
            return Ok(StepUp::Waived);
        }
        refuse(store, actor, &attempt, None, "no operator named").await?;
        return Err(StepUpError::Required);
    };
    let Some(row) = store.get_operator_by_name(name.as_str()).await? else {
        refuse(store, actor, &attempt, None, &format!("no operator named {name}")).await?;
        return Err(StepUpError::UnknownOperator(name.clone()));
    };
    if let Some(until) = row
        .locked_until
        .map(Timestamp::from_millis)
        .filter(|u| *u > attempt.now)
    {
        let reason = format!("operator {name} locked out until {}", until.to_rfc3339());
        refuse(store, actor, &attempt, Some(&row), &reason).await?;
        return Err(StepUpError::LockedOut {
            name: name.clone(),
            until,
        });
    }
    let Some(code) = attempt.code else {
        refuse(
            store,
            actor,
            &attempt,
            Some(&row),
            &format!("no code given for operator {name}"),
        )
        .await?;
        return Err(StepUpError::Required);
    };
    let secret: TotpSecret = super::open_secret(keyring, &row)?;
    let Some(step) = secret.matching_step(code, attempt.now) else {
        return Err(failed(
            store,
            policy,
            actor,
            &attempt,
            &row,
            StepUpError::WrongCode(name.clone()),
        )
        .await);
    };
    let mut work = UnitOfWork::new();
    store.accept_operator_step(&mut work, &row.id, step);
    store.clear_operator_failures(&mut work, &row.id);
    let mut event = actor.event(STEPPED_UP, Outcome::Success);
    event.resource = Some(row.id.clone());
    event.reason = Some(format!("operator {name} for {}", attempt.action));
    work.audit(event);
    match store.commit(work).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(failed(
                store,
                policy,
                actor,
                &attempt,
                &row,
                StepUpError::Replayed(name.clone()),
            )
            .await);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(StepUp::Verified(Operator {
        last_used_step: Some(step),
        ..super::operator(&row)
    }))
}

/// Audits a refusal that does not count towards a lockout.
async fn refuse<S: Commit>(
    store: &S,
    actor: &Actor,
    attempt: &Attempt<'_>,
    row: Option<&OperatorRow>,
    why: &str,
) -> Result<(), StepUpError> {
    let mut event = actor.event(FAILED, Outcome::Denied);
    event.resource = row.map(|r| r.id.clone());
    event.reason = Some(format!("{why} (for {})", attempt.action));
    let mut work = UnitOfWork::new();
    work.audit(event);
    store.commit(work).await?;
    Ok(())
}

/// Records a wrong or replayed code with its audit entry, then locks the
/// operator out at the threshold; returns the error to report (`refusal`,
/// or the lockout it caused).
async fn failed<S: OperatorStore + Commit>(
    store: &S,
    policy: &StepUpPolicy,
    actor: &Actor,
    attempt: &Attempt<'_>,
    row: &OperatorRow,
    refusal: StepUpError,
) -> StepUpError {
    let result: Result<Option<Timestamp>, StepUpError> = async {
        let mut event = actor.event(FAILED, Outcome::Denied);
        event.resource = Some(row.id.clone());
        event.reason = Some(format!("{refusal} (for {})", attempt.action));
        let mut work = UnitOfWork::new();
        store.record_operator_failure(&mut work, &row.id, attempt.now);
        work.audit(event);
        store.commit(work).await?;
        // Counted once durable, so concurrent failures each see themselves.
        let failures = store
            .operator_failures_since(&row.id, attempt.now.saturating_sub(policy.window))
            .await?;
        if failures < policy.threshold {
            return Ok(None);
        }
        let until = attempt.now.saturating_add(policy.duration);
        let mut work = UnitOfWork::new();
        store.lock_operator(&mut work, &row.id, until);
        let mut event = actor.event(LOCKED_OUT, Outcome::Denied);
        event.resource = Some(row.id.clone());
        event.reason = Some(format!(
            "operator {}: {failures} failed codes within {}; locked out until {}",
            row.name,
            humantime::format_duration(policy.window),
            until.to_rfc3339()
        ));
        work.audit(event);
        store.commit(work).await?;
        Ok(Some(until))
    }
    .await;
    match result {
        Ok(None) => refusal,
        Ok(Some(until)) => StepUpError::LockedOut {
            name: OperatorName::from_trusted(row.name.clone()),
            until,
        },
        Err(e) => e,
    }
}
