//! Events: one per state change, stored in the same transaction as the change
//! (the transactional outbox) and delivered to merchants by webhook.

use std::fmt;

/// What an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    PaymentCreated,
    PaymentRequiresAction,
    PaymentAmountCapturableUpdated,
    PaymentSucceeded,
    PaymentCaptured,
    PaymentFailed,
    PaymentCanceled,
    RefundSucceeded,
    RefundFailed,
    WebhookEndpointDisabled,
    /// The fraud rules held an authorized payment for a review.
    ReviewOpened,
    /// A held payment was captured (approved) or canceled (rejected).
    ReviewClosed,
    /// A cardholder disputed a payment at the processor (reported by the
    /// processor's webhook).
    PaymentDisputed,
    /// A payment's outcome at its processor is still unknown past the
    /// reconciliation horizon (an operator should look).
    PaymentReconciliationOverdue,
    /// A refund's outcome at its processor is still unknown past the
    /// reconciliation horizon (an operator should look).
    RefundReconciliationOverdue,
    /// An anomaly detector raised an alert about one of the merchant's
    /// keys, the merchant itself, or an address using its keys.
    AnomalyDetected,
}

impl EventType {
    pub const ALL: [EventType; 16] = [
        EventType::PaymentCreated,
        EventType::PaymentRequiresAction,
        EventType::PaymentAmountCapturableUpdated,
        EventType::PaymentSucceeded,
        EventType::PaymentCaptured,
        EventType::PaymentFailed,
        EventType::PaymentCanceled,
        EventType::RefundSucceeded,
        EventType::RefundFailed,
        EventType::WebhookEndpointDisabled,
        EventType::ReviewOpened,
        EventType::ReviewClosed,
        EventType::PaymentDisputed,
        EventType::PaymentReconciliationOverdue,
        EventType::RefundReconciliationOverdue,
        EventType::AnomalyDetected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PaymentCreated => "payment.created",
            EventType::PaymentRequiresAction => "payment.requires_action",
            EventType::PaymentAmountCapturableUpdated => "payment.amount_capturable_updated",
            EventType::PaymentSucceeded => "payment.succeeded",
            EventType::PaymentCaptured => "payment.captured",
            EventType::PaymentFailed => "payment.failed",
            EventType::PaymentCanceled => "payment.canceled",
            EventType::RefundSucceeded => "refund.succeeded",
            EventType::RefundFailed => "refund.failed",
            EventType::WebhookEndpointDisabled => "webhook_endpoint.disabled",
            EventType::ReviewOpened => "review.opened",
            EventType::ReviewClosed => "review.closed",
            EventType::PaymentDisputed => "payment.disputed",
            EventType::PaymentReconciliationOverdue => "payment.reconciliation_overdue",
            EventType::RefundReconciliationOverdue => "refund.reconciliation_overdue",
            EventType::AnomalyDetected => "anomaly.detected",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == input)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("payment.*"), None);
    }
}
