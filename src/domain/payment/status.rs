//! A payment's status and the state machine every change goes through, with
//! the amounts it guards (authorized, captured, refunded).
//!
//! Invariants, whatever sequence of steps is applied: nothing is captured
//! beyond the amount, nothing refunded beyond what was captured, a terminal
//! status never changes, and a refused step leaves the payment untouched.

use std::fmt;

use crate::domain::money::{MinorUnits, Money};

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    RequiresCapture,
    Succeeded,
    Failed,
    Canceled,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 8] = [
        PaymentStatus::RequiresPaymentMethod,
        PaymentStatus::RequiresConfirmation,
        PaymentStatus::RequiresAction,
        PaymentStatus::Processing,
        PaymentStatus::RequiresCapture,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::RequiresPaymentMethod => "requires_payment_method",
            PaymentStatus::RequiresConfirmation => "requires_confirmation",
            PaymentStatus::RequiresAction => "requires_action",
            PaymentStatus::Processing => "processing",
            PaymentStatus::RequiresCapture => "requires_capture",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Canceled => "canceled",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }

    /// No step leaves these (refunds change amounts, not the status).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PaymentStatus::Succeeded | PaymentStatus::Failed | PaymentStatus::Canceled
        )
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an approved authorization is captured at once or on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaptureMethod {
    #[default]
    Automatic,
    Manual,
}

impl CaptureMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureMethod::Automatic => "automatic",
            CaptureMethod::Manual => "manual",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "automatic" => Some(CaptureMethod::Automatic),
            "manual" => Some(CaptureMethod::Manual),
            _ => None,
        }
    }
}

/// One step in a payment's life. Each is allowed from a fixed set of statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A card token is attached (or replaced) before confirmation.
    AttachPaymentMethod,
    /// The merchant confirms: the payment goes to the processor.
    Confirm,
    /// The issuer wants the customer to authenticate (3-D Secure).
    RequireAction,
    /// The customer authenticated; authorization resumes.
    Authenticated,
    /// The processor approved the authorization for the full amount.
    Authorized,
    /// The processor captured this many minor units (at most what is capturable).
    Capture { amount: MinorUnits },
    /// Declined, authentication failed, or the processor failed.
    Fail,
    /// Canceled by the merchant, or abandoned (an unanswered challenge);
    /// releases any authorization.
    Cancel,
    /// A refund of this many minor units of what was captured.
    Refund { amount: MinorUnits },
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::AttachPaymentMethod => "attach_payment_method",
            Step::Confirm => "confirm",
            Step::RequireAction => "require_action",
            Step::Authenticated => "authenticate",
            Step::Authorized => "authorize",
            Step::Capture { .. } => "capture",
            Step::Fail => "fail",
            Step::Cancel => "cancel",
            Step::Refund { .. } => "refund",
        }
    }
}

/// Why a step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("a payment in status {from} cannot {action}")]
    IllegalTransition { from: PaymentStatus, action: &'static str },
    #[error("the amount must be positive and at most {max}")]
    AmountOutOfRange { max: i64 },
}

/// The part of a payment the state machine owns: its status and amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentState {
    pub status: PaymentStatus,
    pub money: Money,
    pub capture_method: CaptureMethod,
    /// Authorized and not yet captured or released.
    pub amount_capturable: i64,
    /// Captured.
    pub amount_received: i64,
    /// Refunded, out of `amount_received`.
    pub amount_refunded: i64,
}

impl PaymentState {
    /// A new payment: waiting for a card, or for confirmation if it has one.
    pub fn new(money: Money, capture_method: CaptureMethod, has_payment_method: bool) -> Self {
        Self {
            status: if has_payment_method {
                PaymentStatus::RequiresConfirmation
            } else {
                PaymentStatus::RequiresPaymentMethod
            },
            money,
            capture_method,
            amount_capturable: 0,
            amount_received: 0,
            amount_refunded: 0,
        }
    }

    /// What is left to refund.
    pub fn refundable(&self) -> i64 {
        self.amount_received - self.amount_refunded
    }

    /// Applies `step`, or refuses it and changes nothing. Returns the status
    /// before the step.
    pub fn apply(&mut self, step: Step) -> Result<PaymentStatus, PaymentError> {
        use PaymentStatus as S;
        let from = self.status;
        let illegal = PaymentError::IllegalTransition {
            from,
            action: step.name(),
        };
        let next = match (step, from) {
            (Step::AttachPaymentMethod, S::RequiresPaymentMethod | S::RequiresConfirmation) => S::RequiresConfirmation,
            (Step::Confirm, S::RequiresConfirmation) => S::Processing,
            (Step::RequireAction, S::Processing) => S::RequiresAction,
            (Step::Authenticated, S::RequiresAction) => S::Processing,
            (Step::Authorized, S::Processing) => {
                self.amount_capturable = self.money.amount.get();
                S::RequiresCapture
            }
            (Step::Capture { amount }, S::RequiresCapture) => {
                let amount = amount.get();
                if amount > self.amount_capturable {
                    return Err(PaymentError::AmountOutOfRange {
                        max: self.amount_capturable,
                    });
                }
                self.amount_received = amount;
                self.amount_capturable = 0;
                S::Succeeded
            }
            (Step::Fail, S::Processing | S::RequiresAction | S::RequiresCapture) => {
                self.amount_capturable = 0;
                S::Failed
            }
            (
                Step::Cancel,
                S::RequiresPaymentMethod | S::RequiresConfirmation | S::RequiresAction | S::RequiresCapture,
            ) => {
                self.amount_capturable = 0;
                S::Canceled
            }
            (Step::Refund { amount }, S::Succeeded) => {
                let max = self.refundable();
                let amount = amount.get();
                if amount > max {
                    return Err(PaymentError::AmountOutOfRange { max });
                }
                self.amount_refunded += amount;
                S::Succeeded
            }
            _ => return Err(illegal),
        };
        self.status = next;
        Ok(from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Currency;
    use proptest::prelude::*;

    fn units(amount: i64) -> MinorUnits {
        MinorUnits::parse(amount, i64::MAX).unwrap()
    }

    fn state(amount: i64, capture: CaptureMethod) -> PaymentState {
        let money = Money {
            amount: MinorUnits::parse(amount, i64::MAX).unwrap(),
            currency: Currency::parse("usd").unwrap(),
        };
        PaymentState::new(money, capture, true)
    }

    #[test]
    fn automatic_flow_authorizes_then_captures_then_refunds_partially() {
        let mut p = state(1000, CaptureMethod::Automatic);
        p.apply(Step::Confirm).unwrap();
        p.apply(Step::Authorized).unwrap();
        assert_eq!(p.amount_capturable, 1000);
        p.apply(Step::Capture { amount: units(1000) }).unwrap();
        assert_eq!(
            (p.status, p.amount_received, p.amount_capturable),
            (PaymentStatus::Succeeded, 1000, 0)
        );
        p.apply(Step::Refund { amount: units(300) }).unwrap();
        p.apply(Step::Refund { amount: units(700) }).unwrap();
        assert_eq!(p.refundable(), 0);
        assert_eq!(
            p.apply(Step::Refund { amount: units(1) }),
            Err(PaymentError::AmountOutOfRange { max: 0 })
        );
    }

    #[test]
    fn partial_capture_releases_the_rest() {
        let mut p = state(1000, CaptureMethod::Manual);
        p.apply(Step::Confirm).unwrap();
        p.apply(Step::Authorized).unwrap();
        assert_eq!(
            p.apply(Step::Capture { amount: units(1001) }),
            Err(PaymentError::AmountOutOfRange { max: 1000 })
        );
        p.apply(Step::Capture { amount: units(400) }).unwrap();
        assert_eq!((p.amount_received, p.amount_capturable), (400, 0));
        assert_eq!(
            p.apply(Step::Refund { amount: units(401) }),
            Err(PaymentError::AmountOutOfRange { max: 400 })
        );
    }

    #[test]
    fn illegal_transitions_name_the_status_and_action() {
        let mut p = state(1000, CaptureMethod::Automatic);
        p.apply(Step::Confirm).unwrap();
        p.apply(Step::Fail).unwrap();
        let err = p.apply(Step::Cancel).unwrap_err();
        assert_eq!(
            err,
            PaymentError::IllegalTransition {
                from: PaymentStatus::Failed,
                action: "cancel"
            }
        );
        assert_eq!(err.to_string(), "a payment in status failed cannot cancel");
    }

    #[test]
    fn three_d_secure_path_resumes_or_fails() {
        let mut p = state(500, CaptureMethod::Automatic);
        p.apply(Step::Confirm).unwrap();
        p.apply(Step::RequireAction).unwrap();
        assert!(
            p.apply(Step::Authorized).is_err(),
            "no authorization while waiting for the customer"
        );
        p.apply(Step::Authenticated).unwrap();
        p.apply(Step::Authorized).unwrap();
        assert_eq!(p.status, PaymentStatus::RequiresCapture);
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(PaymentStatus::parse("paid"), None);
    }

    fn any_step() -> impl Strategy<Value = Step> {
        prop_oneof![
            Just(Step::AttachPaymentMethod),
            Just(Step::Confirm),
            Just(Step::RequireAction),
            Just(Step::Authenticated),
            Just(Step::Authorized),
            (1i64..2_000).prop_map(|amount| Step::Capture { amount: units(amount) }),
            Just(Step::Fail),
            Just(Step::Cancel),
            (1i64..2_000).prop_map(|amount| Step::Refund { amount: units(amount) }),
        ]
    }

    proptest! {
        /// Whatever sequence of steps arrives, the amounts stay consistent,
        /// terminal statuses stay put, and refused steps change nothing.
        #[test]
        fn state_machine_invariants_hold(amount in 1i64..1_500, manual in any::<bool>(),
                                         steps in proptest::collection::vec(any_step(), 0..40)) {
            let capture = if manual { CaptureMethod::Manual } else { CaptureMethod::Automatic };
            let mut p = state(amount, capture);
            for step in steps {
                let before = p.clone();
                match p.apply(step) {
                    Ok(from) => {
                        prop_assert_eq!(from, before.status);
                        if before.status.is_terminal() {
                            prop_assert_eq!(p.status, before.status);
                            prop_assert!(matches!(step, Step::Refund { .. }), "only refunds succeed on a terminal payment");
                        }
                    }
                    Err(_) => prop_assert_eq!(&p, &before),
                }
                prop_assert!(p.amount_received <= amount);
                prop_assert!(p.amount_capturable <= amount && p.amount_capturable >= 0);
                prop_assert!(p.amount_refunded <= p.amount_received);
                prop_assert!(p.amount_refunded >= 0);
                if p.status != PaymentStatus::RequiresCapture {
                    prop_assert_eq!(p.amount_capturable, 0);
                }
                if p.amount_received > 0 {
                    prop_assert_eq!(p.status, PaymentStatus::Succeeded);
                }
            }
        }
    }
}
