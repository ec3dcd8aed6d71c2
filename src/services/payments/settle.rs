//! Capture and cancel of an authorized payment. At a processor with effects
//! outside the gateway, the payment is first claimed for the operation (one
//! compare-and-set: of two concurrent requests only one reaches the
//! processor), and a call whose outcome is unknown keeps its claim until
//! [`CLAIM_TIMEOUT`], so nothing can act on the payment twice meanwhile.

use crate::connectors::{CaptureOutcome, Connector, ConnectorError, RemoteStatus};
use crate::domain::event::EventType;
use crate::domain::ids::PaymentId;
use crate::domain::money::{MinorUnits, Money};
use crate::domain::payment::{CancellationReason, Claim, Payment, PaymentError, PaymentStatus, Step};
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;

use super::super::actor::Actor;
use super::super::ServiceError;
use super::change::Change;
use super::{illegal, Caller, PaymentPorts, PaymentRecord, Payments, CLAIM_TIMEOUT};

impl<S: PaymentPorts> Payments<S> {
    /// Captures an authorized payment, fully or partly (`amount` ≤ authorized;
    /// the rest is released).
    pub async fn capture(
        &self,
        actor: &Actor,
        caller: Caller<'_>,
        id: &PaymentId,
        amount: Option<MinorUnits>,
    ) -> Result<PaymentRecord, ServiceError> {
        let payment = self.load(caller.tenant, id).await?;
        refuse_if_claimed(&payment)?;
        let capturable = payment.state().amount_capturable;
        // The state machine decides before the processor is asked.
        let out_of_range = |max| ServiceError::ExceedsBalance {
            param: "amount_to_capture",
            code: "amount_exceeds_capturable",
            message: format!("amount_to_capture must be between 1 and the authorized amount ({max})"),
        };
        let amount = match amount.or_else(|| MinorUnits::parse(capturable, i64::MAX).ok()) {
            Some(amount) => amount,
            // Nothing to capture: refused as the state machine refuses it.
            None if payment.status() == PaymentStatus::RequiresCapture => return Err(out_of_range(capturable)),
            None => {
                return Err(illegal(PaymentError::IllegalTransition {
                    from: payment.status(),
                    action: "capture",
                }))
            }
        };
        payment.check(Step::Capture { amount }).map_err(|e| match e {
            PaymentError::AmountOutOfRange { max } => out_of_range(max),
            other => illegal(other),
        })?;
        let connector = self.connector(&payment.tenant, &payment.connector).await?;
        let reference = payment.processor_reference.clone().unwrap_or_default();
        let money = Money {
            amount,
            currency: payment.money().currency,
        };
        caller.check_limits(money, "amount_to_capture")?;
        // A processor with effects outside the gateway is called only by the
        // request whose claim won the compare-and-set: two concurrent
        // captures never both reach it.
        let claimed = connector.has_external_effects();
        // A claim left by a gateway that died mid-call (it is past
        // CLAIM_TIMEOUT, or `refuse_if_claimed` would have refused): the
        // processor may already have captured.
        let taken_over = payment.claim.is_some();
        let payment = if claimed {
            self.claim(actor, payment, Claim::Capture).await?
        } else {
            payment
        };
        let mut change = Change::of(payment, "payment.captured");
        change.payment.claim = None;
        let already = if taken_over {
            self.remote_status(connector.as_ref(), id).await
        } else {
            None
        };
        let call = async {
            match already {
                Some(RemoteStatus::Captured { .. }) => Ok(CaptureOutcome::Captured),
                _ => connector.capture(&reference, money).await,
            }
        };
        let outcome = match call.await {
            // The capture may have happened: ask the processor before the
            // claim is given up, so a retry never captures twice.
            Err(ConnectorError::Timeout) if claimed => match self.remote_status(connector.as_ref(), id).await {
                Some(RemoteStatus::Captured { .. }) => Ok(CaptureOutcome::Captured),
                Some(RemoteStatus::Authorized { .. }) => Err(ConnectorError::Unavailable("capture timed out".into())),
                _ => return Err(outcome_unknown("capture")),
            },
            other => other,
        };
        match outcome {
            Ok(CaptureOutcome::Captured) => {
                change.apply(|p, at| p.capture(amount, at)).map_err(illegal)?;
                close_review(&mut change);
                change.commit(&self.store, self.snapshots, actor).await
            }
            Ok(CaptureOutcome::Failed { code }) => {
                change.action = "payment.capture_failed";
                change.attempt("capture", "declined", Some(code.as_str().to_owned()));
                change.commit(&self.store, self.snapshots, actor).await?;
                Err(ServiceError::Declined {
                    code: code.as_str(),
                    message: code.message().to_owned(),
                })
            }
            Err(e) => {
                if claimed {
                    self.release_claim(change, actor, "capture").await?;
                }
                Err(ServiceError::ProcessorUnavailable { detail: e.to_string() })
            }
        }
    }

    /// Cancels a payment that is not yet captured, releasing any authorization.
    pub async fn cancel(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: &PaymentId,
        reason: Option<CancellationReason>,
    ) -> Result<PaymentRecord, ServiceError> {
        let payment = self.load(tenant, id).await?;
        refuse_if_claimed(&payment)?;
        payment.check(Step::Cancel).map_err(illegal)?;
        let mut payment = payment;
        if payment.status() == PaymentStatus::RequiresCapture {
            let connector = self.connector(&payment.tenant, &payment.connector).await?;
            if connector.has_external_effects() {
                payment = self.claim(actor, payment, Claim::Cancel).await?;
            }
            let reference = payment.processor_reference.clone().unwrap_or_default();
            let claimed = payment.claim.is_some();
            let voided = match connector.void(&reference).await {
                // The void may have happened: ask before giving the claim up.
                Err(ConnectorError::Timeout) if claimed => match self.remote_status(connector.as_ref(), id).await {
                    Some(RemoteStatus::Voided) => Ok(()),
                    Some(RemoteStatus::Authorized { .. }) => Err(ConnectorError::Unavailable("void timed out".into())),
                    _ => return Err(outcome_unknown("cancel")),
                },
                other => other,
            };
            if let Err(e) = voided {
                if claimed {
                    self.release_claim(Change::of(payment, "payment.canceled"), actor, "cancel")
                        .await?;
                }
                return Err(ServiceError::ProcessorUnavailable { detail: e.to_string() });
            }
        }
        let was_held = payment.status() == PaymentStatus::RequiresCapture;
        let mut change = Change::of(payment, "payment.canceled");
        change.payment.claim = None;
        change.apply(|p, at| p.cancel(reason, at)).map_err(illegal)?;
        if was_held {
            close_review(&mut change);
        }
        change.commit(&self.store, self.snapshots, actor).await
    }

    /// Claims `payment` for `claim` before a processor with external effects
    /// is called: one compare-and-set, so of two concurrent requests only one
    /// goes on to the processor; the other gets a 409. Returns the payment as
    /// claimed.
    async fn claim(&self, actor: &Actor, payment: Payment, claim: Claim) -> Result<Payment, ServiceError> {
        let action = match claim {
            Claim::Cancel => "payment.cancel_started",
            Claim::Capture => "payment.capture_started",
        };
        let mut change = Change::of(payment, action);
        change.payment.claim = Some(claim);
        change.attempt(claim.as_str(), "started", None);
        match change.commit(&self.store, self.snapshots, actor).await {
            Ok(record) => Ok(record.payment),
            Err(ServiceError::Conflict { .. }) => Err(operation_in_progress()),
            Err(e) => Err(e),
        }
    }

    /// Where the processor says a payment stands, when it can say.
    async fn remote_status(&self, connector: &dyn Connector, id: &PaymentId) -> Option<RemoteStatus> {
        connector.sync(id).await.ok()
    }

    /// Gives a claim back once the processor surely did not act (it refused
    /// the call, or says the payment is still only authorized), so that the
    /// operation may be retried at once. A call with an unknown outcome keeps
    /// its claim until [`CLAIM_TIMEOUT`].
    async fn release_claim(&self, change: Change, actor: &Actor, operation: &str) -> Result<(), ServiceError> {
        let mut change = change;
        change.action = "payment.claim_released";
        change.payment.claim = None;
        change.attempt(operation, "processor_unavailable", None);
        change.commit(&self.store, self.snapshots, actor).await.map(drop)
    }
}

/// A payment the fraud rules held for review leaves the queue once captured
/// (approved) or canceled (rejected) from `requires_capture`.
fn close_review(change: &mut Change) {
    if change.payment.risk.as_ref().is_some_and(|r| r.held_for_review()) {
        change.events.push(EventType::ReviewClosed);
    }
}

/// 503 for a capture or cancel whose outcome at the processor is unknown (it
/// timed out and the processor could not say): the payment stays claimed
/// until [`CLAIM_TIMEOUT`], so nothing can act on it twice meanwhile.
fn outcome_unknown(operation: &'static str) -> ServiceError {
    ServiceError::OutcomeUnknown {
        operation,
        retry_after: CLAIM_TIMEOUT,
    }
}

/// 409 while another request's capture or cancel is at the processor.
fn operation_in_progress() -> ServiceError {
    ServiceError::Conflict {
        code: "payment_operation_in_progress",
        message: "Another request is capturing or canceling this payment at the processor; fetch it and retry".into(),
    }
}

/// Refuses to start an operation on a payment another request has claimed
/// (unless that claim is older than [`CLAIM_TIMEOUT`]).
fn refuse_if_claimed(payment: &Payment) -> Result<(), ServiceError> {
    let timeout = i64::try_from(CLAIM_TIMEOUT.as_millis()).unwrap_or(i64::MAX);
    let live = payment.claim.is_some()
        && Timestamp::now()
            .as_millis()
            .saturating_sub(payment.updated_at.as_millis())
            < timeout;
    if live {
        Err(operation_in_progress())
    } else {
        Ok(())
    }
}
