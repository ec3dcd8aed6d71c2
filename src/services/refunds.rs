//! Refunds: partial and multiple, never more in total than was captured,
//! even when requests race on several replicas.
//!
//! The guard is one conditional `UPDATE` that adds the refund to the
//! payment's `amount_refunded` only if the total stays within
//! `amount_received` (and a CHECK constraint behind it). A connector with
//! external effects gets the reservation and a `pending` refund written
//! before it is called; the sandbox answers first and everything is written
//! in one commit.

use crate::connectors::{Connectors, RefundOutcome};
use crate::domain::audit::Outcome;
use crate::domain::event::EventType;
use crate::domain::ids::{EventId, PaymentId, RefundId};
use crate::domain::money::{Currency, MinorUnits, Money};
use crate::domain::payment::PaymentStatus;
use crate::domain::payment_fields::RefundReason;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::events::EventRow;
use crate::store::group_commit::WriteJob;
use crate::store::refunds::RefundRow;
use crate::store::{self, Store, StoreError};

use super::actor::Actor;
use super::payments::view::RefundView;
use super::payments::Caller;
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

pub async fn create(
    store: &Store,
    connectors: &Connectors,
    actor: &Actor,
    caller: Caller<'_>,
    new: NewRefund,
) -> Result<RefundRow, ServiceError> {
    let tenant = caller.tenant;
    if let Some(key) = &new.idempotency_key {
        let since = Timestamp::now()
            .saturating_sub(super::payments::RECOVERY_WINDOW)
            .as_millis();
        if let Some(row) = store::refunds::get_by_idempotency_key(store.reader(), tenant, key, since).await? {
            return Ok(row);
        }
    }
    let payment = store::payments::get(store.reader(), tenant, &new.payment)
        .await?
        .ok_or(ServiceError::NotFound {
            resource: "payment",
            param: "payment",
        })?;
    if payment.status != PaymentStatus::Succeeded.as_str() {
        return Err(ServiceError::Conflict {
            code: "payment_unexpected_state",
            message: format!(
                "Only succeeded payments can be refunded; this one is {}",
                payment.status
            ),
        });
    }
    let refundable = payment.amount_received - payment.amount_refunded;
    let amount = new.amount.map_or(refundable, MinorUnits::get);
    if amount <= 0 || amount > refundable {
        return Err(too_large(refundable));
    }
    let connector = connectors
        .get(&payment.connector)
        .ok_or_else(|| ServiceError::Store(StoreError::Corrupt(format!("unknown connector {}", payment.connector))))?;
    let now = Timestamp::now();
    let id = RefundId::generate_time_ordered(now)?;
    let money = Money {
        amount: MinorUnits::parse(amount, i64::MAX).map_err(|_| corrupt("amount"))?,
        currency: Currency::parse(&payment.currency).map_err(|_| corrupt("currency"))?,
    };
    caller.check_limits(money, "amount")?;
    let mut row = RefundRow {
        id: id.to_string(),
        merchant_id: tenant.merchant().to_string(),
        payment_id: payment.id.clone(),
        mode: payment.mode.clone(),
        amount,
        currency: payment.currency.clone(),
        status: "pending".into(),
        reason: new.reason.map(|r| r.as_str().to_owned()),
        failure_reason: None,
        processor_reference: None,
        idempotency_key: new.idempotency_key.clone(),
        created_at: now.as_millis(),
        updated_at: now.as_millis(),
    };
    let reference = payment.processor_reference.clone().unwrap_or_default();
    if connector.has_external_effects() {
        write(store, actor, tenant, &new.payment, &row, Write::Reserve).await?;
        let outcome = connector.refund(&reference, &id, money).await;
        if matches!(outcome, Err(crate::connectors::ConnectorError::Timeout)) {
            // The refund may have happened: it stays `pending` with its
            // amount reserved (never failed and given back on a guess, which
            // would let a retry refund twice) until reconciled.
            tracing::warn!(refund = %row.id, "refund timed out at the processor; left pending");
            return Err(ServiceError::OutcomeUnknown {
                operation: "refund",
                retry_after: super::payments::CLAIM_TIMEOUT,
            });
        }
        settle(&mut row, outcome);
        write(store, actor, tenant, &new.payment, &row, Write::Settle).await?;
    } else {
        let outcome = connector.refund(&reference, &id, money).await;
        settle(&mut row, outcome);
        write(store, actor, tenant, &new.payment, &row, Write::Whole).await?;
    }
    Ok(row)
}

pub async fn get(store: &Store, tenant: &Tenant, id: &RefundId) -> Result<RefundRow, ServiceError> {
    store::refunds::get(store.reader(), tenant, id)
        .await?
        .ok_or(ServiceError::NotFound {
            resource: "refund",
            param: "id",
        })
}

pub async fn list(
    store: &Store,
    tenant: &Tenant,
    payment: Option<&PaymentId>,
    before: Option<&RefundId>,
    limit: i64,
) -> Result<Vec<RefundRow>, ServiceError> {
    Ok(store::refunds::list(store.reader(), tenant, payment, before, limit).await?)
}

/// Applies the processor's answer to the refund row.
fn settle(row: &mut RefundRow, outcome: Result<RefundOutcome, crate::connectors::ConnectorError>) {
    row.updated_at = Timestamp::now().as_millis();
    match outcome {
        Ok(RefundOutcome::Succeeded { reference }) => {
            row.status = "succeeded".into();
            row.processor_reference = Some(reference);
        }
        Ok(RefundOutcome::Failed { code }) => {
            row.status = "failed".into();
            row.failure_reason = Some(code.as_str().to_owned());
        }
        Err(e) => {
            tracing::warn!(refund = %row.id, error = %e, "refund failed at the processor");
            row.status = "failed".into();
            row.failure_reason = Some(crate::connectors::DeclineCode::ProcessingError.as_str().to_owned());
        }
    }
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

async fn write(
    store: &Store,
    actor: &Actor,
    tenant: &Tenant,
    payment: &PaymentId,
    row: &RefundRow,
    write: Write,
) -> Result<(), ServiceError> {
    let succeeded = row.status == "succeeded";
    let failed = row.status == "failed";
    let event = match (write, succeeded, failed) {
        (Write::Reserve, _, _) => None,
        (_, true, _) => Some(EventType::RefundSucceeded),
        (_, _, true) => Some(EventType::RefundFailed),
        _ => None,
    };
    let event_row = match event {
        Some(kind) => Some(EventRow {
            id: EventId::generate_time_ordered(Timestamp::now())?.to_string(),
            merchant_id: tenant.merchant().to_string(),
            mode: row.mode.clone(),
            event_type: kind.as_str().to_owned(),
            object_id: row.id.clone(),
            data: serde_json::to_string(&RefundView::from_row(row))
                .map_err(|e| StoreError::Corrupt(format!("refund snapshot: {e}")))?,
            created_at: row.updated_at,
        }),
        None => None,
    };
    let action = match write {
        Write::Reserve => "refund.created",
        _ if failed => "refund.failed",
        _ => "refund.succeeded",
    };
    let mut audit = actor.event(action, if failed { Outcome::Failure } else { Outcome::Success });
    audit.merchant_id = Some(tenant.merchant().to_string());
    audit.mode = Some(tenant.mode());
    audit.resource = Some(row.id.clone());
    audit.reason = Some(format!(
        "{} {} of {}{}",
        row.amount,
        row.currency.to_ascii_lowercase(),
        row.payment_id,
        row.failure_reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    ));
    let at = row.updated_at;
    let mut ops = match write {
        Write::Reserve => vec![
            store::payments::reserve_refund_op(tenant, payment, row.amount, at),
            store::refunds::insert_op(row),
        ],
        Write::Settle if failed => vec![
            store::refunds::settle_op(row),
            store::payments::release_refund_op(tenant, payment, row.amount, at),
        ],
        Write::Settle => vec![store::refunds::settle_op(row)],
        Write::Whole if failed => vec![store::refunds::insert_op(row)],
        Write::Whole => vec![
            store::payments::reserve_refund_op(tenant, payment, row.amount, at),
            store::refunds::insert_op(row),
        ],
    };
    if let Some(event) = &event_row {
        ops.extend(store::events::insert_ops(std::slice::from_ref(event)));
    }
    let result = store.group_commit().run(WriteJob::new(ops, vec![audit])).await;
    match result {
        Ok(()) => Ok(()),
        // Another refund took what was left in the meantime.
        Err(StoreError::Conflict) if write != Write::Settle => {
            let left = store::payments::get(store.reader(), tenant, payment)
                .await?
                .map_or(0, |p| p.amount_received - p.amount_refunded);
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

fn corrupt(column: &str) -> ServiceError {
    ServiceError::Store(StoreError::Corrupt(format!("payments.{column}")))
}
