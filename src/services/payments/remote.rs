//! What a processor reports of a payment after the fact (a verified inbound
//! webhook, the reconciliation job), applied through the state machine: a
//! payment left `processing` is settled as the processor says, one
//! authorized here but captured or canceled in the processor's dashboard
//! follows it, a dispute is recorded on the payment and announced.
//!
//! Invariants: nothing is called at the processor here (the report is the
//! processor's own word); a report that the state machine refuses, or that
//! the payment already reflects, changes nothing; the change commits with
//! what the caller staged (the event's record) in one unit.

use crate::connectors::{DeclineCode, RemoteStatus};
use crate::domain::event::EventType;
use crate::domain::money::MinorUnits;
use crate::domain::payment::{Payment, PaymentStatus};
use crate::store::unit_of_work::UnitOfWork;

use super::super::actor::Actor;
use super::super::ServiceError;
use super::change::Change;
use super::flow::decline;
use super::{PaymentPorts, Payments};

/// What the processor reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteReport {
    /// Where the authorization stands.
    Status(RemoteStatus),
    /// The authorization failed with this code.
    Failed(DeclineCode),
    /// The cardholder disputed `amount` for `reason` (an identifier).
    Dispute { amount: i64, reason: String },
    /// Reconciliation could not learn the outcome within its horizon: the
    /// payment stays `processing` and its history and an event say so.
    Overdue,
}

/// What applying a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The payment (or refund) changed: a short name of how
    /// (`payment_succeeded`).
    Changed(&'static str),
    /// Nothing to change; nothing was written.
    Unchanged,
}

/// The change a report makes to `payment`, if any.
fn plan(change: &mut Change, report: &RemoteReport) -> Option<&'static str> {
    use PaymentStatus as S;
    let status = change.payment.status();
    match (report, status) {
        (RemoteReport::Status(RemoteStatus::Authorized { reference }), S::Processing) => {
            change.payment.processor_reference = Some(reference.clone());
            change.apply(|p, at| p.authorize(at)).ok()?;
            Some("payment_authorized")
        }
        (RemoteReport::Status(RemoteStatus::Captured { reference, amount }), S::Processing | S::RequiresCapture) => {
            let amount = MinorUnits::parse(*amount, change.payment.money().amount.get()).ok()?;
            if status == S::Processing {
                change.payment.processor_reference = Some(reference.clone());
                change.apply(|p, at| p.authorize(at)).ok()?;
            }
            change.apply(|p, at| p.capture(amount, at)).ok()?;
            Some("payment_succeeded")
        }
        (RemoteReport::Status(RemoteStatus::Voided), S::RequiresCapture) => {
            change.apply(|p, at| p.cancel(None, at)).ok()?;
            Some("payment_canceled")
        }
        (RemoteReport::Status(RemoteStatus::Voided), S::Processing) => {
            let code = DeclineCode::ConnectorError;
            change
                .apply(|p, at| p.fail(decline(code), "canceled at the processor".into(), at))
                .ok()?;
            Some("payment_failed")
        }
        (RemoteReport::Failed(code), S::Processing | S::RequiresAction) => {
            let code = *code;
            change
                .apply(|p, at| p.fail(decline(code), format!("the processor reported {}", code.as_str()), at))
                .ok()?;
            Some("payment_failed")
        }
        (RemoteReport::Status(RemoteStatus::NotFound), S::Processing) => {
            // The processor has no authorization of this payment.
            let code = DeclineCode::ProcessorUnavailable;
            change
                .apply(|p, at| p.fail(decline(code), "the processor has no record of it".into(), at))
                .ok()?;
            Some("payment_failed")
        }
        (RemoteReport::Overdue, S::Processing) => {
            change.attempt(
                "reconcile",
                "overdue",
                Some("the processor's answer is still unknown".into()),
            );
            change.events.push(EventType::PaymentReconciliationOverdue);
            Some("payment_overdue")
        }
        (RemoteReport::Dispute { amount, reason }, S::Succeeded) => {
            change.attempt("dispute", "opened", Some(format!("{amount} disputed: {reason}")));
            change.events.push(EventType::PaymentDisputed);
            Some("payment_disputed")
        }
        _ => None,
    }
}

impl<S: PaymentPorts> Payments<S> {
    /// Applies what the processor reports of `payment`, committing the
    /// change in the unit `stage` makes (given how the payment changed:
    /// the caller stages its own record of the report there).
    pub async fn apply_remote(
        &self,
        actor: &Actor,
        payment: Payment,
        report: &RemoteReport,
        stage: impl FnOnce(&'static str) -> UnitOfWork + Send,
    ) -> Result<Applied, ServiceError> {
        let action = match report {
            RemoteReport::Dispute { .. } => "payment.disputed",
            RemoteReport::Overdue => "payment.reconciliation_overdue",
            _ => "payment.reconciled",
        };
        let mut change = Change::of(payment, action);
        let Some(outcome) = plan(&mut change, report) else {
            return Ok(Applied::Unchanged);
        };
        change
            .commit_in(stage(outcome), &self.store, self.snapshots, actor)
            .await?;
        Ok(Applied::Changed(outcome))
    }
}
