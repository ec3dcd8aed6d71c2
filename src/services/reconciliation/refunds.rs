//! The refunds half of the reconciliation job: every refund left `pending`
//! after an unknown outcome (a timeout, an answer that was not final, a
//! crash after the reservation) is looked up at its payment's processor
//! (`Connector::sync_refund`), round after round with the payments' backoff
//! and claims, and settled as the processor says
//! (`refunds::settle_remote`: a failure gives the reserved amount back).
//!
//! Invariants: the job never refunds; it only asks and records, so a refund
//! is never made twice at a processor. A refund the processor has no record
//! of fails only from the second round on, once its request can no longer
//! be in flight (the job leaves refunds younger than `min_age` alone). One
//! still unknown past the horizon gets one `refund.reconciliation_overdue`
//! event and audit entry.

use crate::connectors::{FoundRefund, RefundOutcome, RemoteRefund};
use crate::domain::api_key::Mode;
use crate::domain::ids::{MerchantId, RefundId};
use crate::domain::payment::RefundStatus;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::services::actor::Actor;
use crate::services::payments::{Applied, PaymentPorts, Payments};
use crate::services::refunds::{self, ReportedRefund};
use crate::services::ServiceError;
use crate::store::ports::{ReconciliationStore, RefundStore};
use crate::store::reconciliation::Subject;
use crate::store::unit_of_work::UnitOfWork;

use super::{claim_round, millis, Round, Settings, Sweep};

/// One sweep over the refunds to reconcile.
pub async fn sweep<S: PaymentPorts + RefundStore + ReconciliationStore>(
    payments: &Payments<S>,
    store: &S,
    settings: &Settings,
) -> Result<Sweep, ServiceError> {
    let actor = Actor::System { task: "reconciliation" };
    let now = Timestamp::now().as_millis();
    let mut done = Sweep::default();
    let cutoff = now.saturating_sub(millis(settings.min_age));
    for stale in store.stale_pending_refunds(cutoff, settings.batch).await? {
        let merchant = MerchantId::from_trusted(stale.merchant_id);
        let id = RefundId::from_trusted(stale.id);
        let Some(mode) = Mode::parse(&stale.mode) else { continue };
        let Round::Taken { attempts, claim } =
            claim_round(store, settings, now, &merchant, &stale.mode, Subject::Refund(&id)).await?
        else {
            continue;
        };
        let tenant = Tenant::new(merchant.clone(), mode);
        let Some(refund) = store.get_refund(&tenant, &id).await? else {
            continue;
        };
        if refund.status() != RefundStatus::Pending {
            continue;
        }
        let Some(payment) = store.get_payment(&tenant, &refund.payment).await? else {
            continue;
        };
        let reference = payment.processor_reference.clone().unwrap_or_default();
        let connector = payments.routing().resolve(store, &tenant, &payment.connector).await?;
        let outcome = match connector.sync_refund(&reference, &id).await {
            Ok(Some(FoundRefund {
                processor_refund,
                state: RemoteRefund::Succeeded,
            })) => Some(RefundOutcome::Succeeded {
                reference: processor_refund,
            }),
            Ok(Some(FoundRefund {
                state: RemoteRefund::Failed,
                ..
            })) => Some(failed()),
            // Never made at the processor: its request is long over.
            Ok(None) if attempts > 0 => Some(failed()),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(refund = %id, error = %e, "reconciliation could not ask the processor about a refund");
                None
            }
        };
        if let Some(outcome) = outcome {
            let reported = ReportedRefund {
                tenant: &tenant,
                connector: &payment.connector,
                id: &id,
                outcome,
            };
            let applied =
                refunds::settle_remote(store, payments.snapshots(), &actor, reported, |_| UnitOfWork::new()).await?;
            if matches!(applied, Applied::Changed(_)) {
                done.resolved += 1;
                continue;
            }
        }
        done.unresolved += 1;
        let age = now.saturating_sub(refund.created_at.as_millis());
        if claim.is_none_or(|c| c.alerted == 0) && age > millis(settings.horizon) {
            tracing::error!(refund = %id, merchant = %merchant, "refund outcome still unknown past the reconciliation horizon");
            let mut work = UnitOfWork::new();
            store.reconciliation_alerted(&mut work, &merchant, Subject::Refund(&id));
            refunds::announce_overdue(store, payments.snapshots(), &actor, &refund, work).await?;
            done.overdue += 1;
        }
    }
    Ok(done)
}

/// How a refund the processor failed, or never received, is recorded.
fn failed() -> RefundOutcome {
    RefundOutcome::Failed {
        code: crate::connectors::DeclineCode::RefundFailed,
    }
}
