//! The payments and refunds ports on the double ([`PaymentStore`]'s and
//! [`RefundStore`]'s semantics). A stored payment is rebuilt through
//! `Payment::restore`, as the database's mapping does, so a change the
//! domain would call contradictory fails here too.

use super::{limit, matched, stage, MemoryStore, Tables};
use crate::domain::ids::{PaymentId, RefundId};
use crate::domain::payment::{
    ListFilter, NewRefund, Payment, PaymentDraft, PaymentStatus, Refund, RefundStatus, StoredParts,
};
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::ports::{PaymentStore, RefundStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

fn key(tenant: &Tenant, id: &str) -> (String, String) {
    (tenant.merchant_str().to_owned(), id.to_owned())
}

/// `fixed`'s immutable parts (what the update statement does not write,
/// the refunded amount among them: `refunded`), with the mutable parts of
/// `from`, at `version` and `updated_at`.
fn rebuild(
    fixed: &Payment,
    from: &Payment,
    refunded: i64,
    version: i64,
    updated_at: Timestamp,
) -> Result<Payment, StoreError> {
    let draft = PaymentDraft {
        id: fixed.id.clone(),
        tenant: fixed.tenant.clone(),
        money: fixed.money(),
        capture_method: fixed.capture_method(),
        payment_method: from.payment_method.clone(),
        description: fixed.description.clone(),
        metadata: fixed.metadata.clone(),
        customer_ip: fixed.customer_ip,
        customer_email: fixed.customer_email.clone(),
        return_url: fixed.return_url.clone(),
        connector: fixed.connector.clone(),
        idempotency_key: fixed.idempotency_key.clone(),
    };
    let state = from.state();
    let parts = StoredParts {
        status: state.status,
        amount_capturable: state.amount_capturable,
        amount_received: state.amount_received,
        amount_refunded: refunded,
        processor_reference: from.processor_reference.clone(),
        decline: from.decline.clone(),
        next_action: from.next_action().cloned(),
        cancellation_reason: from.cancellation_reason(),
        claim: from.claim,
        version,
        created_at: fixed.created_at,
        updated_at,
        history: from.history().to_vec(),
    };
    let mut payment =
        Payment::restore(draft, parts).ok_or_else(|| StoreError::Constraint("payments: a rule on states".into()))?;
    payment.risk = from.risk.clone();
    Ok(payment)
}

/// The payment's method, if it has one, must be a stored token.
fn token_exists(t: &Tables, payment: &Payment) -> Result<(), StoreError> {
    match &payment.payment_method {
        Some(token) if !t.tokens.contains_key(token.as_str()) => {
            Err(StoreError::Constraint("payment_method references no token".into()))
        }
        _ => Ok(()),
    }
}

/// The tenant's payment `id`, for a write.
pub(super) fn payment_mut<'t>(t: &'t mut Tables, tenant: &Tenant, id: &PaymentId) -> Option<&'t mut Payment> {
    t.payments
        .get_mut(&key(tenant, id.as_str()))
        .filter(|p| p.tenant == *tenant)
}

/// Moves the refunded amount of the tenant's payment by `delta` if `allowed`.
fn move_refunded(
    t: &mut Tables,
    tenant: &Tenant,
    id: &PaymentId,
    delta: i64,
    at: i64,
    allowed: impl Fn(&Payment) -> bool,
) -> Result<bool, StoreError> {
    let Some(payment) = payment_mut(t, tenant, id).filter(|p| allowed(p)) else {
        return Ok(false);
    };
    let refunded = payment.state().amount_refunded + delta;
    *payment = rebuild(
        payment,
        payment,
        refunded,
        payment.version + 1,
        Timestamp::from_millis(at),
    )?;
    Ok(true)
}

impl PaymentStore for MemoryStore {
    fn insert_payment(&self, work: &mut UnitOfWork, payment: &Payment) -> Result<(), StoreError> {
        let payment = payment.clone();
        stage(work, move |t| {
            let key = key(&payment.tenant, payment.id.as_str());
            if t.payments.contains_key(&key) {
                return Err(StoreError::Duplicate);
            }
            t.merchant_exists(payment.tenant.merchant_str())?;
            token_exists(t, &payment)?;
            t.payments.insert(key, payment);
            Ok(())
        });
        Ok(())
    }

    fn update_payment(&self, work: &mut UnitOfWork, payment: &Payment) -> Result<(), StoreError> {
        let payment = payment.clone();
        stage(work, move |t| {
            token_exists(t, &payment)?;
            let stored =
                matched(payment_mut(t, &payment.tenant, &payment.id).filter(|p| p.version == payment.version - 1))?;
            *stored = rebuild(
                stored,
                &payment,
                stored.state().amount_refunded,
                payment.version,
                payment.updated_at,
            )?;
            Ok(())
        });
        Ok(())
    }

    fn reserve_refund(&self, work: &mut UnitOfWork, tenant: &Tenant, id: &PaymentId, amount: i64, at: i64) {
        let (tenant, id) = (tenant.clone(), id.clone());
        stage(work, move |t| {
            let reserved = move_refunded(t, &tenant, &id, amount, at, |p| {
                let state = p.state();
                state.status == PaymentStatus::Succeeded && state.amount_refunded + amount <= state.amount_received
            })?;
            matched(reserved.then_some(()))
        });
    }

    fn release_refund(&self, work: &mut UnitOfWork, tenant: &Tenant, id: &PaymentId, amount: i64, at: i64) {
        let (tenant, id) = (tenant.clone(), id.clone());
        stage(work, move |t| {
            move_refunded(t, &tenant, &id, -amount, at, |p| p.state().amount_refunded >= amount)?;
            Ok(())
        });
    }

    async fn get_payment(&self, tenant: &Tenant, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        Ok(self.read(|t| {
            t.payments
                .get(&key(tenant, id.as_str()))
                .filter(|p| p.tenant == *tenant)
                .cloned()
        }))
    }

    async fn get_payment_with_next_action(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        Ok(self.read(|t| {
            t.payments
                .values()
                .find(|p| p.id == *id && p.next_action().is_some())
                .cloned()
        }))
    }

    async fn get_payment_by_idempotency_key(
        &self,
        tenant: &Tenant,
        key: &str,
        since: i64,
    ) -> Result<Option<Payment>, StoreError> {
        Ok(self.read(|t| {
            t.payments
                .values()
                .filter(|p| {
                    p.tenant == *tenant
                        && p.idempotency_key.as_deref() == Some(key)
                        && p.created_at.as_millis() >= since
                })
                .max_by(|a, b| a.id.as_str().cmp(b.id.as_str()))
                .cloned()
        }))
    }

    async fn list_payments(&self, tenant: &Tenant, filter: &ListFilter, page: i64) -> Result<Vec<Payment>, StoreError> {
        let mut payments: Vec<Payment> = self.read(|t| {
            t.payments
                .values()
                .filter(|p| {
                    p.tenant == *tenant
                        && filter.status.is_none_or(|s| p.status() == s)
                        && filter.created_gte.is_none_or(|at| p.created_at >= at)
                        && filter.created_lte.is_none_or(|at| p.created_at <= at)
                        && filter.before.as_ref().is_none_or(|b| p.id.as_str() < b.as_str())
                })
                .cloned()
                .collect()
        });
        payments.sort_by(|a, b| b.id.as_str().cmp(a.id.as_str()));
        payments.truncate(limit(page));
        Ok(payments)
    }

    async fn list_open_reviews(
        &self,
        tenant: &Tenant,
        before: Option<&PaymentId>,
        page: i64,
    ) -> Result<Vec<Payment>, StoreError> {
        let mut payments: Vec<Payment> = self.read(|t| {
            t.payments
                .values()
                .filter(|p| {
                    p.tenant == *tenant
                        && p.status() == PaymentStatus::RequiresCapture
                        && p.risk.as_ref().is_some_and(|r| r.held_for_review())
                        && before.is_none_or(|b| p.id.as_str() < b.as_str())
                })
                .cloned()
                .collect()
        });
        payments.sort_by(|a, b| b.id.as_str().cmp(a.id.as_str()));
        payments.truncate(limit(page));
        Ok(payments)
    }

    async fn expired_actions(&self, now: i64, page: i64) -> Result<Vec<Payment>, StoreError> {
        let expiry = |p: &Payment| p.next_action().map(|a| a.expires_at.as_millis());
        let mut payments: Vec<Payment> = self.read(|t| {
            t.payments
                .values()
                .filter(|p| p.status() == PaymentStatus::RequiresAction && expiry(p).is_some_and(|at| at < now))
                .cloned()
                .collect()
        });
        payments.sort_by_key(expiry);
        payments.truncate(limit(page));
        Ok(payments)
    }
}

impl RefundStore for MemoryStore {
    fn insert_refund(&self, work: &mut UnitOfWork, refund: &Refund) {
        let refund = refund.clone();
        stage(work, move |t| {
            if t.refunds.contains_key(refund.id.as_str()) {
                return Err(StoreError::Duplicate);
            }
            if !t.payments.contains_key(&key(&refund.tenant, refund.payment.as_str())) {
                return Err(StoreError::Constraint(
                    "refunds: payment_id references no payment".into(),
                ));
            }
            t.refunds.insert(refund.id.to_string(), refund);
            Ok(())
        });
    }

    fn settle_refund(&self, work: &mut UnitOfWork, refund: &Refund) {
        let refund = refund.clone();
        stage(work, move |t| {
            let stored = matched(
                t.refunds
                    .get_mut(refund.id.as_str())
                    .filter(|r| r.tenant == refund.tenant && r.status() == RefundStatus::Pending),
            )?;
            let new = NewRefund {
                id: stored.id.clone(),
                tenant: stored.tenant.clone(),
                payment: stored.payment.clone(),
                money: stored.money,
                reason: stored.reason,
                idempotency_key: stored.idempotency_key.clone(),
            };
            *stored = Refund::from_stored(
                new,
                refund.status(),
                refund.failure_reason.clone(),
                refund.processor_reference.clone(),
                stored.created_at,
                refund.updated_at,
            );
            Ok(())
        });
    }

    async fn get_refund(&self, tenant: &Tenant, id: &RefundId) -> Result<Option<Refund>, StoreError> {
        Ok(self.read(|t| t.refunds.get(id.as_str()).filter(|r| r.tenant == *tenant).cloned()))
    }

    async fn get_refund_by_idempotency_key(
        &self,
        tenant: &Tenant,
        key: &str,
        since: i64,
    ) -> Result<Option<Refund>, StoreError> {
        Ok(self.read(|t| {
            t.refunds
                .values()
                .filter(|r| {
                    r.tenant == *tenant
                        && r.idempotency_key.as_deref() == Some(key)
                        && r.created_at.as_millis() >= since
                })
                .max_by(|a, b| a.id.as_str().cmp(b.id.as_str()))
                .cloned()
        }))
    }

    async fn list_refunds(
        &self,
        tenant: &Tenant,
        payment: Option<&PaymentId>,
        before: Option<&RefundId>,
        page: i64,
    ) -> Result<Vec<Refund>, StoreError> {
        let mut refunds: Vec<Refund> = self.read(|t| {
            t.refunds
                .values()
                .filter(|r| {
                    r.tenant == *tenant
                        && payment.is_none_or(|p| r.payment == *p)
                        && before.is_none_or(|b| r.id.as_str() < b.as_str())
                })
                .cloned()
                .collect()
        });
        refunds.sort_by(|a, b| b.id.as_str().cmp(a.id.as_str()));
        refunds.truncate(limit(page));
        Ok(refunds)
    }
}
