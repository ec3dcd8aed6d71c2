//! The review queue: payments the fraud rules held (authorized, not
//! captured) until a person decides. Approving captures the payment,
//! rejecting cancels it as `fraudulent`; either closes the review (event
//! `review.closed`, as a capture or cancel of a held payment always does).
//! Only a payment whose review is open can be approved or rejected.

use crate::domain::ids::PaymentId;
use crate::domain::payment::{CancellationReason, Payment, PaymentStatus};
use crate::domain::tenant::Tenant;

use super::super::actor::Actor;
use super::super::ServiceError;
use super::{Caller, PaymentPorts, PaymentRecord, Payments};

fn not_open() -> ServiceError {
    ServiceError::Conflict {
        code: "review_not_open",
        message: "This payment is not held for a review (it was not held, or was already captured or canceled)".into(),
    }
}

impl<S: PaymentPorts> Payments<S> {
    /// Up to `limit` of the tenant's payments held for a review, newest
    /// first, older than `before` when given.
    pub async fn reviews(
        &self,
        tenant: &Tenant,
        before: Option<&PaymentId>,
        limit: i64,
    ) -> Result<Vec<Payment>, ServiceError> {
        Ok(self.store.list_open_reviews(tenant, before, limit).await?)
    }

    /// Approves a held payment: captures it in full.
    pub async fn approve_review(
        &self,
        actor: &Actor,
        caller: Caller<'_>,
        id: &PaymentId,
    ) -> Result<PaymentRecord, ServiceError> {
        self.open_review(caller.tenant, id).await?;
        self.capture(actor, caller, id, None).await
    }

    /// Rejects a held payment: cancels it (`fraudulent`), releasing the
    /// authorization.
    pub async fn reject_review(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: &PaymentId,
    ) -> Result<PaymentRecord, ServiceError> {
        self.open_review(tenant, id).await?;
        self.cancel(actor, tenant, id, Some(CancellationReason::Fraudulent))
            .await
    }

    /// The payment, if its review is open; 404 if it is not the tenant's,
    /// 409 if it is not held.
    async fn open_review(&self, tenant: &Tenant, id: &PaymentId) -> Result<Payment, ServiceError> {
        let payment = self.load(tenant, id).await?;
        let held = payment.risk.as_ref().is_some_and(|r| r.held_for_review());
        if held && payment.status() == PaymentStatus::RequiresCapture {
            Ok(payment)
        } else {
            Err(not_open())
        }
    }
}
