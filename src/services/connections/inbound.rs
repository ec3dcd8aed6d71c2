//! Inbound processor webhooks (`POST /v1/connectors/{id}/webhooks`): a
//! delivery is verified with its connection's own signing secret, applied
//! once per processor event id, and mapped onto the payment state machine:
//! a payment left `processing` settles as the processor says, a refund made
//! in the processor's dashboard becomes a refund here, a pending refund of
//! ours settles, a dispute is recorded on its payment; each is re-emitted as
//! the gateway's own events, so merchants' webhooks follow.
//!
//! Invariants: nothing of a delivery is read before it verified; every
//! refusal (an unknown connection, no or a wrong signature, a stale
//! timestamp, an unreadable body) looks the same to the caller and is
//! audited without the payload; the event's record commits in the same unit
//! as the change it caused, with its audit entry and events, so a repeated
//! or concurrent delivery applies nothing twice; an event of a payment or
//! refund that is not this connection's changes nothing.

use crate::connectors::{
    Connector, ConnectorError, DeclineCode, InboundChange, InboundEvent, InboundHeaders, RefundOutcome, RemoteRefund,
};
use crate::domain::api_key::Mode;
use crate::domain::audit::{AuditEvent, Outcome};
use crate::domain::ids::{ConnectionId, MerchantId, PaymentId, RefundId};
use crate::domain::payment::Payment;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::services::actor::Actor;
use crate::services::payments::{Applied, PaymentPorts, Payments, RemoteReport};
use crate::services::refunds::{self, RefundPorts};
use crate::services::ServiceError;
use crate::store::ports::ProcessorEventStore;
use crate::store::processor_events::ProcessorEventRow;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

/// The storage an inbound webhook reaches.
pub trait InboundPorts: PaymentPorts + RefundPorts + ProcessorEventStore {}

impl<S: PaymentPorts + RefundPorts + ProcessorEventStore> InboundPorts for S {}

/// A delivery that was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// It changed a payment or refund: how (`payment_succeeded`).
    Applied(&'static str),
    /// Recorded, nothing to change (an event type the gateway does not act
    /// on, a payment that already reflects it, one that is not here).
    Ignored,
    /// This event was applied before (deliveries repeat).
    Duplicate,
}

/// Why a delivery was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// It did not verify (or names no connection): refused alike, audited.
    #[error("the webhook could not be verified")]
    Refused,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// The connection of `id`, its tenant and its connector; `None` if there is
/// no such connection.
async fn connection<S: InboundPorts>(
    payments: &Payments<S>,
    store: &S,
    id: &ConnectionId,
) -> Result<Option<(Tenant, std::sync::Arc<dyn Connector>)>, ServiceError> {
    let Some(row) = store.connection_by_id(id).await? else {
        return Ok(None);
    };
    let mode = Mode::parse(&row.mode)
        .ok_or_else(|| ServiceError::Store(StoreError::Corrupt("processor_connections.mode".into())))?;
    let tenant = Tenant::new(MerchantId::from_trusted(row.merchant_id), mode);
    let connector = payments.routing().resolve(store, &tenant, id.as_str()).await?;
    Ok(Some((tenant, connector)))
}

/// Verifies, deduplicates and applies one delivery to connection `raw_id`.
pub async fn receive<S: InboundPorts>(
    payments: &Payments<S>,
    store: &S,
    actor: &Actor,
    raw_id: &str,
    headers: &InboundHeaders,
    body: &[u8],
) -> Result<Received, InboundError> {
    let found = match ConnectionId::parse(raw_id) {
        Ok(id) => connection(payments, store, &id).await?.map(|(t, c)| (id, t, c)),
        Err(_) => None,
    };
    let Some((id, tenant, connector)) = found else {
        // About the work a known connection's refusal costs: one HMAC.
        let _ = crate::webhooks::signature::sign("whsec_none", 0, body);
        refuse(store, actor, None, "no such connection").await?;
        return Err(InboundError::Refused);
    };
    connector.prepare_webhook(headers).await;
    let event = match connector.parse_webhook(headers, body) {
        Ok(event) => event,
        Err(e) => {
            let why = match e {
                ConnectorError::InvalidSignature => "the signature did not verify (missing, wrong or stale)",
                ConnectorError::Rejected(_) => "a verified body could not be read or is of the other mode",
                _ => "the connector cannot verify webhooks",
            };
            refuse(store, actor, Some((&id, &tenant)), why).await?;
            return Err(InboundError::Refused);
        }
    };
    if store
        .processor_event_seen(&id, &event.processor_event_id)
        .await
        .map_err(ServiceError::from)?
    {
        return Ok(Received::Duplicate);
    }
    let cx = Delivery {
        payments,
        store,
        actor,
        id: &id,
        tenant: &tenant,
        event: &event,
    };
    let result = cx.apply().await;
    match result {
        Ok(Applied::Changed(how)) => Ok(Received::Applied(how)),
        Ok(Applied::Unchanged) => match cx.record_ignored().await {
            Ok(()) => Ok(Received::Ignored),
            Err(ServiceError::Store(StoreError::Duplicate)) => Ok(Received::Duplicate),
            Err(e) => Err(e.into()),
        },
        // A concurrent delivery of the same event committed first.
        Err(ServiceError::Store(StoreError::Duplicate)) => Ok(Received::Duplicate),
        Err(e) => Err(e.into()),
    }
}

/// Audits a refused delivery: which connection (when there is one) and
/// why, never the payload.
async fn refuse<S: InboundPorts>(
    store: &S,
    actor: &Actor,
    connection: Option<(&ConnectionId, &Tenant)>,
    why: &str,
) -> Result<(), ServiceError> {
    let mut event = actor.event("connector.webhook_refused", Outcome::Failure);
    if let Some((id, tenant)) = connection {
        event.merchant_id = Some(tenant.merchant_str().to_owned());
        event.mode = Some(tenant.mode());
        event.resource = Some(id.to_string());
    }
    event.reason = Some(why.to_owned());
    crate::services::audit::record(store, event).await
}

/// One verified delivery being applied.
struct Delivery<'a, S> {
    payments: &'a Payments<S>,
    store: &'a S,
    actor: &'a Actor,
    id: &'a ConnectionId,
    tenant: &'a Tenant,
    event: &'a InboundEvent,
}

impl<S: InboundPorts> Delivery<'_, S> {
    /// The unit recording this event with `outcome`, which the change it
    /// causes commits in.
    fn stage(&self, outcome: &'static str) -> UnitOfWork {
        let mut work = UnitOfWork::new();
        self.store.insert_processor_event(
            &mut work,
            &ProcessorEventRow {
                connection_id: self.id.to_string(),
                event_id: self.event.processor_event_id.clone(),
                merchant_id: self.tenant.merchant_str().to_owned(),
                mode: self.tenant.mode_str().to_owned(),
                event_type: self.event.kind.clone(),
                outcome: outcome.to_owned(),
                received_at: Timestamp::now().as_millis(),
            },
        );
        work
    }

    async fn record_ignored(&self) -> Result<(), ServiceError> {
        let mut work = self.stage("ignored");
        work.audit(self.audit("connector.webhook_ignored"));
        self.store.commit(work).await?;
        Ok(())
    }

    fn audit(&self, action: &str) -> AuditEvent {
        let mut event = self.actor.event(action, Outcome::Success);
        event.merchant_id = Some(self.tenant.merchant_str().to_owned());
        event.mode = Some(self.tenant.mode());
        event.resource = Some(self.id.to_string());
        // Both are identifiers the connector checked, never free text.
        event.reason = Some(format!("{} {}", self.event.kind, self.event.processor_event_id));
        event
    }

    /// The connection's payment named by our id (when the processor's
    /// object carries it) or by the processor's reference.
    async fn payment(&self, ours: Option<&str>, reference: &str) -> Result<Option<Payment>, ServiceError> {
        let by_id = match ours.map(PaymentId::parse) {
            Some(Ok(id)) => Some(id),
            _ => {
                self.store
                    .payment_by_processor_reference(self.tenant, self.id, reference)
                    .await?
            }
        };
        let Some(id) = by_id else { return Ok(None) };
        let payment = self.store.get_payment(self.tenant, &id).await?;
        Ok(payment.filter(|p| p.connector == self.id.as_str()))
    }

    async fn report(&self, payment: Option<Payment>, report: RemoteReport) -> Result<Applied, ServiceError> {
        let Some(payment) = payment else {
            return Ok(Applied::Unchanged);
        };
        self.payments
            .apply_remote(self.actor, payment, &report, |how| self.stage(how))
            .await
    }

    async fn apply(&self) -> Result<Applied, ServiceError> {
        match &self.event.change {
            InboundChange::Payment {
                payment,
                reference,
                status,
            } => {
                let found = self.payment(payment.as_deref(), reference).await?;
                self.report(found, RemoteReport::Status(status.clone())).await
            }
            InboundChange::PaymentFailed {
                payment,
                reference,
                code,
            } => {
                let found = self.payment(payment.as_deref(), reference).await?;
                self.report(found, RemoteReport::Failed(*code)).await
            }
            InboundChange::Dispute {
                reference,
                amount,
                reason,
            } => {
                let found = self.payment(None, reference).await?;
                let report = RemoteReport::Dispute {
                    amount: *amount,
                    reason: reason.clone(),
                };
                self.report(found, report).await
            }
            InboundChange::RefundedTotal { reference, total } => {
                let Some(payment) = self.payment(None, reference).await? else {
                    return Ok(Applied::Unchanged);
                };
                refunds::record_remote_total(
                    self.store,
                    self.payments.snapshots(),
                    self.actor,
                    &payment,
                    *total,
                    &self.event.processor_event_id,
                    |how| self.stage(how),
                )
                .await
            }
            InboundChange::Refund {
                refund: Some(ours),
                processor_refund,
                state,
            } => {
                let Ok(refund) = RefundId::parse(ours) else {
                    return Ok(Applied::Unchanged);
                };
                let outcome = match state {
                    RemoteRefund::Pending => return Ok(Applied::Unchanged),
                    RemoteRefund::Succeeded => RefundOutcome::Succeeded {
                        reference: processor_refund.clone(),
                    },
                    RemoteRefund::Failed => RefundOutcome::Failed {
                        code: DeclineCode::RefundFailed,
                    },
                };
                let reported = refunds::ReportedRefund {
                    tenant: self.tenant,
                    connector: self.id.as_str(),
                    id: &refund,
                    outcome,
                };
                refunds::settle_remote(self.store, self.payments.snapshots(), self.actor, reported, |how| {
                    self.stage(how)
                })
                .await
            }
            // A refund made in the dashboard is counted from
            // `charge.refunded`, which carries the payment's total.
            InboundChange::Refund { refund: None, .. } | InboundChange::Ignored => Ok(Applied::Unchanged),
        }
    }
}
