//! A refund of (part of) a succeeded payment: `pending` until the processor
//! answers, then `succeeded` or `failed`, never anything else afterwards.
//!
//! The amount a refund takes out of its payment is reserved by the store in
//! the same commit that writes the refund (see `store::payments`), so the
//! refunds of one payment never add up to more than was captured.

use crate::domain::event::EventType;
use crate::domain::ids::{PaymentId, RefundId};
use crate::domain::money::Money;
use crate::domain::payment_fields::RefundReason;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

impl RefundStatus {
    pub const ALL: [RefundStatus; 3] = [RefundStatus::Pending, RefundStatus::Succeeded, RefundStatus::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }
}

/// A settlement of a refund that is no longer pending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a refund in status {} cannot be settled again", .0.as_str())]
pub struct AlreadySettled(pub RefundStatus);

/// A refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: RefundId,
    pub tenant: Tenant,
    pub payment: PaymentId,
    /// The amount refunded, in the payment's currency.
    pub money: Money,
    status: RefundStatus,
    pub reason: Option<RefundReason>,
    /// Why the processor refused (`failed` refunds).
    pub failure_reason: Option<String>,
    pub processor_reference: Option<String>,
    /// The key-scoped idempotency key of the request that created it.
    pub idempotency_key: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a new refund is made of.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub id: RefundId,
    pub tenant: Tenant,
    pub payment: PaymentId,
    pub money: Money,
    pub reason: Option<RefundReason>,
    pub idempotency_key: Option<String>,
}

impl Refund {
    /// A new refund, `pending` until the processor answers.
    pub fn new(new: NewRefund, at: Timestamp) -> Self {
        Self {
            id: new.id,
            tenant: new.tenant,
            payment: new.payment,
            money: new.money,
            status: RefundStatus::Pending,
            reason: new.reason,
            failure_reason: None,
            processor_reference: None,
            idempotency_key: new.idempotency_key,
            created_at: at,
            updated_at: at,
        }
    }

    /// A refund as stored (the store's mapping is its only caller).
    pub fn from_stored(
        new: NewRefund,
        status: RefundStatus,
        failure_reason: Option<String>,
        processor_reference: Option<String>,
        created_at: Timestamp,
        updated_at: Timestamp,
    ) -> Self {
        Self {
            status,
            failure_reason,
            processor_reference,
            created_at,
            updated_at,
            ..Self::new(new, created_at)
        }
    }

    pub fn status(&self) -> RefundStatus {
        self.status
    }

    /// The processor refunded: returns the event this causes.
    pub fn succeed(&mut self, reference: String, at: Timestamp) -> Result<Vec<EventType>, AlreadySettled> {
        self.settle(RefundStatus::Succeeded, at)?;
        self.processor_reference = Some(reference);
        Ok(vec![EventType::RefundSucceeded])
    }

    /// The processor refused (`reason` is its decline code): returns the
    /// event this causes.
    pub fn fail(&mut self, reason: &str, at: Timestamp) -> Result<Vec<EventType>, AlreadySettled> {
        self.settle(RefundStatus::Failed, at)?;
        self.failure_reason = Some(reason.to_owned());
        Ok(vec![EventType::RefundFailed])
    }

    fn settle(&mut self, to: RefundStatus, at: Timestamp) -> Result<(), AlreadySettled> {
        if self.status != RefundStatus::Pending {
            return Err(AlreadySettled(self.status));
        }
        self.status = to;
        self.updated_at = at;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::api_key::Mode;
    use crate::domain::ids::MerchantId;
    use crate::domain::money::{Currency, MinorUnits};

    fn refund() -> Refund {
        let new = NewRefund {
            id: RefundId::from_trusted("re_1".into()),
            tenant: Tenant::new(MerchantId::from_trusted("mer_1".into()), Mode::Test),
            payment: PaymentId::from_trusted("pay_1".into()),
            money: Money {
                amount: MinorUnits::parse(250, i64::MAX).unwrap(),
                currency: Currency::parse("eur").unwrap(),
            },
            reason: Some(RefundReason::Duplicate),
            idempotency_key: None,
        };
        Refund::new(new, Timestamp::from_millis(10))
    }

    #[test]
    fn a_pending_refund_settles_once_with_its_event() {
        let mut r = refund();
        assert_eq!(r.status(), RefundStatus::Pending);
        assert_eq!(
            r.succeed("ref_1".into(), Timestamp::from_millis(20)),
            Ok(vec![EventType::RefundSucceeded])
        );
        assert_eq!(
            (r.status(), r.updated_at),
            (RefundStatus::Succeeded, Timestamp::from_millis(20))
        );
        assert_eq!(r.processor_reference.as_deref(), Some("ref_1"));
        let settled = r.clone();
        assert_eq!(
            r.fail("x", Timestamp::from_millis(30)),
            Err(AlreadySettled(RefundStatus::Succeeded))
        );
        assert_eq!(r, settled, "a refused settlement changes nothing");

        let mut r = refund();
        assert_eq!(
            r.fail("card_declined", Timestamp::from_millis(20)),
            Ok(vec![EventType::RefundFailed])
        );
        assert_eq!(r.failure_reason.as_deref(), Some("card_declined"));
        let failed = r.clone();
        assert!(r.succeed("ref".into(), Timestamp::from_millis(30)).is_err());
        assert_eq!(r, failed);
    }

    #[test]
    fn refund_statuses_round_trip_through_text() {
        for s in RefundStatus::ALL {
            assert_eq!(RefundStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(RefundStatus::parse("refunded"), None);
    }
}
