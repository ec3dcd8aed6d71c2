//! The reconciliation job: every payment left `processing` through a
//! processor connection (an unknown outcome: a timeout, a crash between the
//! write-ahead record and the processor's answer) is asked about at its
//! processor (`Connector::sync`), round after round with exponential
//! backoff, and settled as the processor says (`Payments::apply_remote`);
//! one still unknown past the horizon gets one `payment.reconciliation_overdue`
//! event (and history entry) for the merchant and the operator's log.
//!
//! Invariants: the job only asks (`sync`) and records; it never captures,
//! voids or refunds, so nothing is done twice at a processor. Safe on
//! several replicas: each round of a payment is claimed by one conditional
//! write (`reconciliation_claims`), so one replica asks per round. A
//! processor that has no record of the payment fails it only from the
//! second round on (its search may lag behind a fresh authorization).
//! Refunds left `pending` are reconciled the same way ([`refunds`]).

mod refunds;

use std::time::Duration;

use crate::connectors::RemoteStatus;
use crate::domain::api_key::Mode;
use crate::domain::ids::{MerchantId, PaymentId};
use crate::domain::payment::PaymentStatus;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::services::actor::Actor;
use crate::services::payments::{Applied, PaymentPorts, Payments, RemoteReport};
use crate::services::ServiceError;
use crate::store::ports::{Commit, ReconciliationStore, RefundStore};
use crate::store::reconciliation::{Claim, Subject};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

/// How the job runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Time between sweeps.
    pub interval: Duration,
    /// A payment unchanged for less than this is left alone (its request
    /// may still be running: longer than any connector call).
    pub min_age: Duration,
    /// The wait after the first round; doubled each round, at most 64×.
    pub backoff: Duration,
    /// Past this age (from its creation) an unresolved payment is
    /// announced overdue, once.
    pub horizon: Duration,
    /// Payments looked at per sweep.
    pub batch: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            min_age: Duration::from_secs(120),
            backoff: Duration::from_secs(30),
            horizon: Duration::from_secs(3600),
            batch: 100,
        }
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    pub resolved: usize,
    pub unresolved: usize,
    pub overdue: usize,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl std::ops::AddAssign for Sweep {
    fn add_assign(&mut self, other: Sweep) {
        self.resolved += other.resolved;
        self.unresolved += other.unresolved;
        self.overdue += other.overdue;
    }
}

/// Whether this replica takes a round of a subject now.
enum Round {
    /// Taken: the rounds before it, and the claim as it was.
    Taken { attempts: i64, claim: Option<Claim> },
    /// Not due yet, or another replica took it.
    NotOurs,
}

/// Takes the subject's next round if it is due, by one conditional write:
/// of several replicas sweeping at once, one gets it.
async fn claim_round<S: ReconciliationStore + Commit>(
    store: &S,
    settings: &Settings,
    now: i64,
    merchant: &MerchantId,
    mode: &str,
    subject: Subject<'_>,
) -> Result<Round, ServiceError> {
    let claim = store.reconciliation_claim(merchant, subject).await?;
    if claim.is_some_and(|c| c.next_at > now) {
        return Ok(Round::NotOurs);
    }
    let attempts = claim.map_or(0, |c| c.attempts);
    let shift = u32::try_from(attempts.clamp(0, 6)).unwrap_or(6);
    let next_at = now.saturating_add(millis(settings.backoff).saturating_mul(1 << shift));
    let mut work = UnitOfWork::new();
    match claim {
        None => store.first_reconciliation(&mut work, merchant, mode, subject, next_at),
        Some(_) => store.advance_reconciliation(&mut work, merchant, subject, attempts, next_at),
    }
    match store.commit(work).await {
        Ok(()) => Ok(Round::Taken { attempts, claim }),
        // Another replica took this round.
        Err(StoreError::Duplicate | StoreError::Conflict) => Ok(Round::NotOurs),
        Err(e) => Err(e.into()),
    }
}

/// One sweep over the payments, then the refunds, to reconcile.
pub async fn sweep<S: PaymentPorts + RefundStore + ReconciliationStore>(
    payments: &Payments<S>,
    store: &S,
    settings: &Settings,
) -> Result<Sweep, ServiceError> {
    let mut done = sweep_payments(payments, store, settings).await?;
    done += refunds::sweep(payments, store, settings).await?;
    Ok(done)
}

/// One sweep over the payments to reconcile.
async fn sweep_payments<S: PaymentPorts + ReconciliationStore>(
    payments: &Payments<S>,
    store: &S,
    settings: &Settings,
) -> Result<Sweep, ServiceError> {
    let actor = Actor::System { task: "reconciliation" };
    let now = Timestamp::now().as_millis();
    let mut done = Sweep::default();
    for stale in store
        .stale_processing(now.saturating_sub(millis(settings.min_age)), settings.batch)
        .await?
    {
        let merchant = MerchantId::from_trusted(stale.merchant_id);
        let id = PaymentId::from_trusted(stale.id);
        let Some(mode) = Mode::parse(&stale.mode) else { continue };
        let Round::Taken { attempts, claim } =
            claim_round(store, settings, now, &merchant, &stale.mode, Subject::Payment(&id)).await?
        else {
            continue;
        };
        let tenant = Tenant::new(merchant.clone(), mode);
        let Some(payment) = store.get_payment(&tenant, &id).await? else {
            continue;
        };
        if payment.status() != PaymentStatus::Processing {
            continue;
        }
        let connector = payments.routing().resolve(store, &tenant, &payment.connector).await?;
        let report = match connector.sync(&id).await {
            Ok(RemoteStatus::NotFound) if attempts == 0 => None,
            Ok(status) => Some(RemoteReport::Status(status)),
            Err(e) => {
                tracing::warn!(payment = %id, error = %e, "reconciliation could not ask the processor");
                None
            }
        };
        if let Some(report) = report {
            let applied = payments
                .apply_remote(&actor, payment.clone(), &report, |_| UnitOfWork::new())
                .await?;
            if matches!(applied, Applied::Changed(_)) {
                done.resolved += 1;
                continue;
            }
        }
        done.unresolved += 1;
        let age = now.saturating_sub(payment.created_at.as_millis());
        if claim.is_none_or(|c| c.alerted == 0) && age > millis(settings.horizon) {
            tracing::error!(payment = %id, merchant = %merchant, "payment outcome still unknown past the reconciliation horizon");
            let stage = |_| {
                let mut work = UnitOfWork::new();
                store.reconciliation_alerted(&mut work, &merchant, Subject::Payment(&id));
                work
            };
            payments
                .apply_remote(&actor, payment, &RemoteReport::Overdue, stage)
                .await?;
            done.overdue += 1;
        }
    }
    Ok(done)
}

/// Runs [`sweep`] every `settings.interval` for ever (the gateway aborts it
/// at shutdown).
pub async fn run<S: PaymentPorts + RefundStore + ReconciliationStore>(
    payments: Payments<S>,
    store: S,
    settings: Settings,
) {
    let mut tick = tokio::time::interval(settings.interval);
    loop {
        tick.tick().await;
        match sweep(&payments, &store, &settings).await {
            Ok(Sweep {
                resolved: 0,
                overdue: 0,
                ..
            }) => {}
            Ok(done) => tracing::info!(
                resolved = done.resolved,
                unresolved = done.unresolved,
                overdue = done.overdue,
                "reconciled payments left processing and refunds left pending"
            ),
            Err(e) => tracing::warn!(error = %e, "reconciliation sweep failed"),
        }
    }
}
