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

use crate::connectors::RefundOutcome;
use crate::domain::audit::Outcome;
use crate::domain::event::EventType;
use crate::domain::ids::{EventId, PaymentId, RefundId};
use crate::domain::money::{MinorUnits, Money};
use crate::domain::payment::{self as model, PaymentStatus, Refund, RefundStatus};
use crate::domain::payment_fields::RefundReason;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::services::connections::Routing;
use crate::store::events::EventRow;
use crate::store::ports::{Commit, ConnectionStore, EventStore, PaymentStore, RefundStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

use super::actor::Actor;
use super::payments::{Applied, Caller, Snapshots};
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
pub trait RefundPorts: PaymentStore + RefundStore + EventStore + ConnectionStore + Commit {}

impl<S: PaymentStore + RefundStore + EventStore + ConnectionStore + Commit> RefundPorts for S {}

pub async fn create<S: RefundPorts>(
    store: &S,
    routing: &Routing,
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
    // The payment's own connector, even if the merchant's default changed or
    // its connection was disabled since: a refund goes where the money is.
    let connector = routing.resolve(store, &payment.tenant, &payment.connector).await?;
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
        write(
            store,
            snapshots,
            actor,
            &refund,
            Vec::new(),
            Write::Reserve,
            UnitOfWork::new(),
        )
        .await?;
        let outcome = connector.refund(&reference, &refund.id, money).await;
        if let Err(e) = &outcome {
            crate::metrics::process().connector_error(connector.name(), "refund", e.kind());
        }
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
        write(
            store,
            snapshots,
            actor,
            &refund,
            events,
            Write::Settle,
            UnitOfWork::new(),
        )
        .await?;
    } else {
        let outcome = connector.refund(&reference, &refund.id, money).await;
        if let Err(e) = &outcome {
            crate::metrics::process().connector_error(connector.name(), "refund", e.kind());
        }
        let events = settle(&mut refund, outcome);
        write(
            store,
            snapshots,
            actor,
            &refund,
            events,
            Write::Whole,
            UnitOfWork::new(),
        )
        .await?;
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
    mut work: UnitOfWork,
) -> Result<(), ServiceError> {
    let tenant = &refund.tenant;
    let payment = &refund.payment;
    let failed = refund.status() == RefundStatus::Failed;
    let event_rows = event_rows(snapshots, refund, events, refund.updated_at)?;
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

/// The rows of `events` about `refund`, each with its snapshot, at `at`.
fn event_rows(
    snapshots: Snapshots,
    refund: &Refund,
    events: Vec<EventType>,
    at: Timestamp,
) -> Result<Vec<EventRow>, ServiceError> {
    let mut rows = Vec::with_capacity(events.len());
    for kind in events {
        rows.push(EventRow {
            id: EventId::generate_time_ordered(Timestamp::now())?.to_string(),
            merchant_id: refund.tenant.merchant_str().to_owned(),
            mode: refund.tenant.mode_str().to_owned(),
            event_type: kind.as_str().to_owned(),
            object_id: refund.id.to_string(),
            data: (snapshots.refund)(refund).map_err(|e| StoreError::Corrupt(format!("refund snapshot: {e}")))?,
            created_at: at.as_millis(),
        });
    }
    Ok(rows)
}

/// Announces that the outcome of the pending `refund` is still unknown past
/// the reconciliation horizon: a `refund.reconciliation_overdue` event and
/// audit entry, committed with `work` (the job's record that it alerted).
/// The refund itself, still `pending` with its amount reserved, is not
/// touched.
pub async fn announce_overdue<S: RefundPorts>(
    store: &S,
    snapshots: Snapshots,
    actor: &Actor,
    refund: &Refund,
    mut work: UnitOfWork,
) -> Result<(), ServiceError> {
    let now = Timestamp::now();
    let rows = event_rows(snapshots, refund, vec![EventType::RefundReconciliationOverdue], now)?;
    let mut audit = actor.event("refund.reconciliation_overdue", Outcome::Failure);
    audit.merchant_id = Some(refund.tenant.merchant().to_string());
    audit.mode = Some(refund.tenant.mode());
    audit.resource = Some(refund.id.to_string());
    audit.reason = Some(format!(
        "outcome of the {} {} refund of {} still unknown at the processor",
        refund.money.amount.get(),
        refund.money.currency.api_code(),
        refund.payment
    ));
    store.insert_events(&mut work, &rows);
    work.audit(audit);
    Ok(store.commit(work).await?)
}

/// The processor reports that refunds of `payment` add up to `total`: what
/// exceeds what the gateway has refunded (or reserved for a pending refund)
/// was refunded in the processor's dashboard, and becomes one succeeded
/// refund here, with `reference` (the processor's event id), its event and
/// audit entry, in the unit `stage` makes. The conditional reservation keeps the total
/// within what was captured, as for any refund.
pub async fn record_remote_total<S: RefundPorts>(
    store: &S,
    snapshots: Snapshots,
    actor: &Actor,
    payment: &model::Payment,
    total: i64,
    reference: &str,
    stage: impl FnOnce(&'static str) -> UnitOfWork + Send,
) -> Result<Applied, ServiceError> {
    let missing = total.saturating_sub(payment.state().amount_refunded);
    if payment.status() != PaymentStatus::Succeeded || missing <= 0 {
        return Ok(Applied::Unchanged);
    }
    let Ok(amount) = MinorUnits::parse(missing, payment.state().refundable()) else {
        // More than is left to refund here: the processor's and our records
        // disagree, which an operator must look at; nothing is guessed.
        tracing::warn!(payment = %payment.id, "the processor reports more refunded than this payment can take");
        return Ok(Applied::Unchanged);
    };
    let now = Timestamp::now();
    let mut refund = Refund::new(
        model::NewRefund {
            id: RefundId::generate_time_ordered(now)?,
            tenant: payment.tenant.clone(),
            payment: payment.id.clone(),
            money: Money {
                amount,
                currency: payment.money().currency,
            },
            reason: None,
            idempotency_key: None,
        },
        now,
    );
    let events = refund.succeed(reference.to_owned(), now).unwrap_or_default();
    write(
        store,
        snapshots,
        actor,
        &refund,
        events,
        Write::Whole,
        stage("refund_created"),
    )
    .await?;
    Ok(Applied::Changed("refund_created"))
}

/// The gateway's own refund a processor reports on: refund `id` of
/// `tenant`, made through connector `connector`, ended with `outcome`.
#[derive(Debug)]
pub struct ReportedRefund<'a> {
    pub tenant: &'a Tenant,
    pub connector: &'a str,
    pub id: &'a RefundId,
    pub outcome: RefundOutcome,
}

/// The processor reports the state of the gateway's own refund: a `pending`
/// one (its outcome was unknown) is settled as reported, in the unit `stage`
/// makes; anything else changes nothing.
pub async fn settle_remote<S: RefundPorts>(
    store: &S,
    snapshots: Snapshots,
    actor: &Actor,
    reported: ReportedRefund<'_>,
    stage: impl FnOnce(&'static str) -> UnitOfWork + Send,
) -> Result<Applied, ServiceError> {
    let ReportedRefund {
        tenant,
        connector,
        id,
        outcome,
    } = reported;
    let Some(mut refund) = store.get_refund(tenant, id).await? else {
        return Ok(Applied::Unchanged);
    };
    let through_connector = store
        .get_payment(tenant, &refund.payment)
        .await?
        .is_some_and(|p| p.connector == connector);
    if !through_connector || refund.status() != RefundStatus::Pending {
        return Ok(Applied::Unchanged);
    }
    let events = settle(&mut refund, Ok(outcome));
    let how = if refund.status() == RefundStatus::Failed {
        "refund_failed"
    } else {
        "refund_succeeded"
    };
    write(store, snapshots, actor, &refund, events, Write::Settle, stage(how)).await?;
    Ok(Applied::Changed(how))
}

fn too_large(refundable: i64) -> ServiceError {
    ServiceError::ExceedsBalance {
        param: "amount",
        code: "amount_exceeds_refundable",
        message: format!("The refund amount must be between 1 and what is left to refund ({refundable})"),
    }
}

/// Refunds against the in-memory double of the storage ports, with the
/// sandbox connector.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::payments::test_support::{money, Fixture, APPROVED, SNAPSHOTS};
    use crate::store::ports::{EventStore, PaymentStore, RefundStore};

    /// The sandbox card whose refunds fail at the processor.
    const REFUNDS_FAIL: &str = "4000000000005126";

    fn refund_of(payment: &PaymentId, amount: Option<i64>) -> NewRefund {
        NewRefund {
            payment: payment.clone(),
            amount: amount.map(|a| MinorUnits::parse(a, i64::MAX).unwrap()),
            reason: None,
            idempotency_key: None,
        }
    }

    async fn refund(f: &Fixture, tenant: &Tenant, new: NewRefund) -> Result<Refund, ServiceError> {
        create(
            &f.store,
            f.payments.routing(),
            SNAPSHOTS,
            &f.actor,
            f.caller(tenant),
            new,
        )
        .await
    }

    async fn refunded(f: &Fixture, payment: &PaymentId) -> i64 {
        let stored = f.store.get_payment(&f.tenant, payment).await.unwrap().unwrap();
        stored.state().amount_refunded
    }

    #[tokio::test]
    async fn partial_refunds_never_exceed_what_was_captured() {
        let f = Fixture::new().await;
        let payment = f.paid(1_000, APPROVED).await;

        let first = refund(&f, &f.tenant, refund_of(&payment.id, Some(400))).await.unwrap();
        assert_eq!(first.status(), RefundStatus::Succeeded);
        assert_eq!(first.money.amount.get(), 400);
        assert_eq!(refunded(&f, &payment.id).await, 400);
        assert_eq!(
            get(&f.store, &f.tenant, &first.id).await.unwrap().status(),
            RefundStatus::Succeeded
        );

        let beyond = refund(&f, &f.tenant, refund_of(&payment.id, Some(601))).await;
        assert!(
            matches!(
                beyond,
                Err(ServiceError::ExceedsBalance {
                    code: "amount_exceeds_refundable",
                    ..
                })
            ),
            "{beyond:?}"
        );
        assert_eq!(
            refunded(&f, &payment.id).await,
            400,
            "a refused refund reserves nothing"
        );

        let rest = refund(&f, &f.tenant, refund_of(&payment.id, None)).await.unwrap();
        assert_eq!(rest.money.amount.get(), 600);
        assert_eq!(refunded(&f, &payment.id).await, 1_000);
        let nothing_left = refund(&f, &f.tenant, refund_of(&payment.id, Some(1))).await;
        assert!(
            matches!(nothing_left, Err(ServiceError::ExceedsBalance { .. })),
            "{nothing_left:?}"
        );

        // Both made within one millisecond, maybe: their order is not asserted.
        let mut made = vec![first.id.to_string(), rest.id.to_string()];
        made.sort();
        let mut listed: Vec<String> = list(&f.store, &f.tenant, Some(&payment.id), None, 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id.to_string())
            .collect();
        listed.sort();
        assert_eq!(listed, made);
        let mut events: Vec<String> = f
            .store
            .list_events(&f.tenant, Some("refund.succeeded"), None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.object_id)
            .collect();
        events.sort();
        assert_eq!(events, made);
    }

    /// A refund the processor refuses is stored failed, with nothing
    /// reserved on the payment.
    #[tokio::test]
    async fn a_refund_failed_at_the_processor_reserves_nothing() {
        let f = Fixture::new().await;
        let payment = f.paid(1_000, REFUNDS_FAIL).await;
        let failed = refund(&f, &f.tenant, refund_of(&payment.id, Some(300))).await.unwrap();
        assert_eq!(failed.status(), RefundStatus::Failed);
        let stored = f.store.get_refund(&f.tenant, &failed.id).await.unwrap().unwrap();
        assert_eq!(stored.status(), RefundStatus::Failed);
        assert_eq!(refunded(&f, &payment.id).await, 0);
    }

    /// Two refunds decided against the same read of the payment: the
    /// reservation is checked at commit, so the second is refused whole.
    #[tokio::test]
    async fn a_reservation_beyond_the_balance_at_commit_fails_the_whole_refund() {
        let f = Fixture::new().await;
        let payment = f.paid(1_000, APPROVED).await;
        let decided = |amount| {
            Refund::new(
                model::NewRefund {
                    id: RefundId::generate().unwrap(),
                    tenant: f.tenant.clone(),
                    payment: payment.id.clone(),
                    money: money(amount),
                    reason: None,
                    idempotency_key: None,
                },
                Timestamp::now(),
            )
        };
        let (mut first, mut second) = (decided(700), decided(700));
        let ok = || {
            Ok(crate::connectors::RefundOutcome::Succeeded {
                reference: "re_x".into(),
            })
        };
        let events = settle(&mut first, ok());
        write(
            &f.store,
            SNAPSHOTS,
            &f.actor,
            &first,
            events,
            Write::Whole,
            UnitOfWork::new(),
        )
        .await
        .unwrap();
        let events = settle(&mut second, ok());
        let result = write(
            &f.store,
            SNAPSHOTS,
            &f.actor,
            &second,
            events,
            Write::Whole,
            UnitOfWork::new(),
        )
        .await;
        assert!(
            matches!(&result, Err(ServiceError::ExceedsBalance { message, .. }) if message.contains("(300)")),
            "{result:?}"
        );
        assert_eq!(refunded(&f, &payment.id).await, 700);
        assert!(f.store.get_refund(&f.tenant, &second.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_payment_or_refund_of_another_mode_or_merchant_is_not_found() {
        let f = Fixture::new().await;
        let payment = f.paid(1_000, APPROVED).await;
        let made = refund(&f, &f.tenant, refund_of(&payment.id, Some(100))).await.unwrap();
        for tenant in f.other_tenants().await {
            let refused = refund(&f, &tenant, refund_of(&payment.id, Some(100))).await;
            assert!(
                matches!(
                    refused,
                    Err(ServiceError::NotFound {
                        resource: "payment",
                        ..
                    })
                ),
                "{refused:?}"
            );
            let got = get(&f.store, &tenant, &made.id).await;
            assert!(
                matches!(got, Err(ServiceError::NotFound { resource: "refund", .. })),
                "{got:?}"
            );
            assert!(list(&f.store, &tenant, None, None, 10).await.unwrap().is_empty());
        }
        assert_eq!(refunded(&f, &payment.id).await, 100);
    }
}
