//! Refunds: partial and multiple, never more in total than was captured,
//! even when requests race on several replicas.
//!
//! The guard is one conditional `UPDATE` that adds the refund to the
//! payment's `amount_refunded` only if the total stays within
//! `amount_received` (and a CHECK constraint behind it). A connector with
//! external effects gets the reservation and a `pending` refund written
//! before it is called; the sandbox answers first and everything is written
//! in one commit.
//!
//! The functions are generic over the storage ports they use (the SQL
//! `Store` in the gateway, the in-memory double in the unit tests below).

use crate::connectors::{Connectors, RefundOutcome};
use crate::domain::audit::Outcome;
use crate::domain::event::EventType;
use crate::domain::ids::{EventId, PaymentId, RefundId};
use crate::domain::money::{MinorUnits, Money};
use crate::domain::payment::{self as model, PaymentStatus, Refund, RefundStatus};
use crate::domain::payment_fields::RefundReason;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::events::EventRow;
use crate::store::ports::{Commit, EventStore, PaymentStore, RefundStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

use super::actor::Actor;
use super::payments::{Caller, Snapshots};
use super::ServiceError;

/// A parsed `POST /v1/refunds`.
#[derive(Debug)]
pub struct NewRefund {
    pub payment: PaymentId,
    /// `None`: everything still refundable.
    pub amount: Option<MinorUnits>,
    pub reason: Option<RefundReason>,
    pub idempotency_key: Option<String>,
}

/// The storage ports refunds work with: the refunds, the payments they
/// reserve their amounts on, and the events of both.
pub trait RefundPorts: PaymentStore + RefundStore + EventStore + Commit {}

impl<S: PaymentStore + RefundStore + EventStore + Commit> RefundPorts for S {}

pub async fn create<S: RefundPorts>(
    store: &S,
    connectors: &Connectors,
    snapshots: Snapshots,
    actor: &Actor,
    caller: Caller<'_>,
    new: NewRefund,
) -> Result<Refund, ServiceError> {
    let tenant = caller.tenant;
    if let Some(key) = &new.idempotency_key {
        let since = Timestamp::now()
            .saturating_sub(super::payments::RECOVERY_WINDOW)
            .as_millis();
        if let Some(refund) = store.get_refund_by_idempotency_key(tenant, key, since).await? {
            return Ok(refund);
        }
    }
    let payment = store
        .get_payment(tenant, &new.payment)
        .await?
        .ok_or(ServiceError::NotFound {
            resource: "payment",
            param: "payment",
        })?;
    if payment.status() != PaymentStatus::Succeeded {
        return Err(ServiceError::Conflict {
            code: "payment_unexpected_state",
            message: format!(
                "Only succeeded payments can be refunded; this one is {}",
                payment.status()
            ),
        });
    }
    let refundable = payment.state().refundable();
    let amount = match new.amount.or_else(|| MinorUnits::parse(refundable, i64::MAX).ok()) {
        Some(amount) if amount.get() <= refundable => amount,
        _ => return Err(too_large(refundable)),
    };
    let connector = connectors
        .get(&payment.connector)
        .ok_or_else(|| ServiceError::Store(StoreError::Corrupt(format!("unknown connector {}", payment.connector))))?;
    let now = Timestamp::now();
    let money = Money {
        amount,
        currency: payment.money().currency,
    };
    caller.check_limits(money, "amount")?;
    let mut refund = Refund::new(
        model::NewRefund {
            id: RefundId::generate_time_ordered(now)?,
            tenant: payment.tenant.clone(),
            payment: payment.id.clone(),
            money,
            reason: new.reason,
            idempotency_key: new.idempotency_key.clone(),
        },
        now,
    );
    let reference = payment.processor_reference.clone().unwrap_or_default();
    if connector.has_external_effects() {
        write(store, snapshots, actor, &refund, Vec::new(), Write::Reserve).await?;
        let outcome = connector.refund(&reference, &refund.id, money).await;
        if matches!(outcome, Err(crate::connectors::ConnectorError::Timeout)) {
            // The refund may have happened: it stays `pending` with its
            // amount reserved (never failed and given back on a guess, which
            // would let a retry refund twice) until reconciled.
            tracing::warn!(refund = %refund.id, "refund timed out at the processor; left pending");
            return Err(ServiceError::OutcomeUnknown {
                operation: "refund",
                retry_after: super::payments::CLAIM_TIMEOUT,
            });
        }
        let events = settle(&mut refund, outcome);
        write(store, snapshots, actor, &refund, events, Write::Settle).await?;
    } else {
        let outcome = connector.refund(&reference, &refund.id, money).await;
        let events = settle(&mut refund, outcome);
        write(store, snapshots, actor, &refund, events, Write::Whole).await?;
    }
    Ok(refund)
}

pub async fn get<S: RefundStore>(store: &S, tenant: &Tenant, id: &RefundId) -> Result<Refund, ServiceError> {
    store.get_refund(tenant, id).await?.ok_or(ServiceError::NotFound {
        resource: "refund",
        param: "id",
    })
}

pub async fn list<S: RefundStore>(
    store: &S,
    tenant: &Tenant,
    payment: Option<&PaymentId>,
    before: Option<&RefundId>,
    limit: i64,
) -> Result<Vec<Refund>, ServiceError> {
    Ok(store.list_refunds(tenant, payment, before, limit).await?)
}

/// Applies the processor's answer to the pending refund; returns the events
/// it causes.
fn settle(refund: &mut Refund, outcome: Result<RefundOutcome, crate::connectors::ConnectorError>) -> Vec<EventType> {
    let now = Timestamp::now();
    let settled = match outcome {
        Ok(RefundOutcome::Succeeded { reference }) => refund.succeed(reference, now),
        Ok(RefundOutcome::Failed { code }) => refund.fail(code.as_str(), now),
        Err(e) => {
            tracing::warn!(refund = %refund.id, error = %e, "refund failed at the processor");
            refund.fail(e.decline_code().as_str(), now)
        }
    };
    // A refund is settled once, right after it is made: never already settled.
    settled.unwrap_or_default()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    /// Reserve the amount and insert the refund as `pending`.
    Reserve,
    /// Settle a pending refund; release the reservation if it failed.
    Settle,
    /// Reserve (unless failed) and insert the settled refund, in one go.
    Whole,
}

async fn write<S: RefundPorts>(
    store: &S,
    snapshots: Snapshots,
    actor: &Actor,
    refund: &Refund,
    events: Vec<EventType>,
    write: Write,
) -> Result<(), ServiceError> {
    let tenant = &refund.tenant;
    let payment = &refund.payment;
    let failed = refund.status() == RefundStatus::Failed;
    let mut event_rows = Vec::with_capacity(events.len());
    for kind in events {
        event_rows.push(EventRow {
            id: EventId::generate_time_ordered(Timestamp::now())?.to_string(),
            merchant_id: tenant.merchant_str().to_owned(),
            mode: tenant.mode_str().to_owned(),
            event_type: kind.as_str().to_owned(),
            object_id: refund.id.to_string(),
            data: (snapshots.refund)(refund).map_err(|e| StoreError::Corrupt(format!("refund snapshot: {e}")))?,
            created_at: refund.updated_at.as_millis(),
        });
    }
    let action = match write {
        Write::Reserve => "refund.created",
        _ if failed => "refund.failed",
        _ => "refund.succeeded",
    };
    let mut audit = actor.event(action, if failed { Outcome::Failure } else { Outcome::Success });
    audit.merchant_id = Some(tenant.merchant().to_string());
    audit.mode = Some(tenant.mode());
    audit.resource = Some(refund.id.to_string());
    audit.reason = Some(format!(
        "{} {} of {}{}",
        refund.money.amount.get(),
        refund.money.currency.api_code(),
        refund.payment,
        refund
            .failure_reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    ));
    let at = refund.updated_at.as_millis();
    let amount = refund.money.amount.get();
    let mut work = UnitOfWork::new();
    match write {
        Write::Reserve => {
            store.reserve_refund(&mut work, tenant, payment, amount, at);
            store.insert_refund(&mut work, refund);
        }
        Write::Settle if failed => {
            store.settle_refund(&mut work, refund);
            store.release_refund(&mut work, tenant, payment, amount, at);
        }
        Write::Settle => store.settle_refund(&mut work, refund),
        Write::Whole if failed => store.insert_refund(&mut work, refund),
        Write::Whole => {
            store.reserve_refund(&mut work, tenant, payment, amount, at);
            store.insert_refund(&mut work, refund);
        }
    }
    store.insert_events(&mut work, &event_rows);
    work.audit(audit);
    let result = store.commit(work).await;
    match result {
        Ok(()) => Ok(()),
        // Another refund took what was left in the meantime.
        Err(StoreError::Conflict) if write != Write::Settle => {
            let left = store
                .get_payment(tenant, payment)
                .await?
                .map_or(0, |p| p.state().refundable());
            Err(too_large(left))
        }
        Err(e) => Err(e.into()),
    }
}

fn too_large(refundable: i64) -> ServiceError {
    ServiceError::ExceedsBalance {
        param: "amount",
        code: "amount_exceeds_refundable",
        message: format!("The refund amount must be between 1 and what is left to refund ({refundable})"),
    }
}
