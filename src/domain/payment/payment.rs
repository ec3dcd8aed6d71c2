//! A payment: its state (status and amounts, held once, changed only by the
//! state machine), what the merchant gave when creating it, what the
//! processor said, and its history.
//!
//! Every transition is a method that applies one step of the state machine,
//! appends the history entry it makes, and returns the events it causes; a
//! refused transition returns the error and leaves the payment untouched.

use std::net::IpAddr;

use subtle::ConstantTimeEq;

use crate::domain::event::EventType;
use crate::domain::ids::{PaymentId, TokenId};
use crate::domain::money::{MinorUnits, Money};
use crate::domain::payment_fields::{CustomerEmail, Description, Metadata, ReturnUrl};
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;

use super::history::HistoryEntry;
use super::status::{CaptureMethod, PaymentError, PaymentState, PaymentStatus, Step};

/// Why a payment was canceled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancellationReason {
    Duplicate,
    Fraudulent,
    RequestedByCustomer,
    /// The customer never answered the challenge (set by the expiry sweep).
    Abandoned,
}

impl CancellationReason {
    pub const ALL: [CancellationReason; 4] = [
        CancellationReason::Duplicate,
        CancellationReason::Fraudulent,
        CancellationReason::RequestedByCustomer,
        CancellationReason::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CancellationReason::Duplicate => "duplicate",
            CancellationReason::Fraudulent => "fraudulent",
            CancellationReason::RequestedByCustomer => "requested_by_customer",
            CancellationReason::Abandoned => "abandoned",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == input)
    }
}

/// An operation at a processor with effects outside the gateway that one
/// request holds the payment for (see `services::payments`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Capture,
    Cancel,
}

impl Claim {
    pub fn as_str(self) -> &'static str {
        match self {
            Claim::Capture => "capture",
            Claim::Cancel => "cancel",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "capture" => Some(Claim::Capture),
            "cancel" => Some(Claim::Cancel),
            _ => None,
        }
    }
}

/// Why the issuer or processor refused: a code and a sentence, never
/// processor payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decline {
    pub code: String,
    pub message: String,
}

/// What the customer must do: open `url` (the challenge page, whose query
/// carries the challenge secret) before `expires_at`, then come back to
/// `return_url`. A payment has one exactly while it is `requires_action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextAction {
    pub url: String,
    pub return_url: Option<String>,
    pub expires_at: Timestamp,
}

impl NextAction {
    /// Whether `presented` is the challenge secret of this action's URL
    /// (compared in constant time).
    pub fn challenge_matches(&self, presented: &str) -> bool {
        let Ok(parsed) = url::Url::parse(&self.url) else {
            return false;
        };
        let Some((_, expected)) = parsed.query_pairs().find(|(k, _)| k == "challenge") else {
            return false;
        };
        !presented.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    }
}

/// What a new payment is made of (all of it parsed at the edge).
#[derive(Debug, Clone)]
pub struct PaymentDraft {
    pub id: PaymentId,
    pub tenant: Tenant,
    pub money: Money,
    pub capture_method: CaptureMethod,
    pub payment_method: Option<TokenId>,
    pub description: Option<Description>,
    pub metadata: Metadata,
    pub customer_ip: Option<IpAddr>,
    pub customer_email: Option<CustomerEmail>,
    pub return_url: Option<ReturnUrl>,
    /// The connector that handles it.
    pub connector: String,
    /// The key-scoped idempotency key of the request that created it.
    pub idempotency_key: Option<String>,
}

/// A payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: PaymentId,
    pub tenant: Tenant,
    state: PaymentState,
    pub payment_method: Option<TokenId>,
    pub description: Option<Description>,
    pub metadata: Metadata,
    pub customer_ip: Option<IpAddr>,
    pub customer_email: Option<CustomerEmail>,
    pub return_url: Option<ReturnUrl>,
    pub connector: String,
    /// The processor's reference of its authorization.
    pub processor_reference: Option<String>,
    /// The last refusal (`failed` payments).
    pub decline: Option<Decline>,
    next_action: Option<NextAction>,
    cancellation_reason: Option<CancellationReason>,
    pub idempotency_key: Option<String>,
    /// Set while a request holds the payment for a processor call.
    pub claim: Option<Claim>,
    /// What the merchant's fraud rules decided when it was confirmed (none
    /// without a rule set).
    pub risk: Option<super::risk::Risk>,
    /// The SCA decision made when it was confirmed and the 3-D Secure result
    /// (none before confirmation).
    pub sca: Option<crate::domain::sca::ScaRecord>,
    /// Moves on by one with every stored change (compare-and-set).
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    history: Vec<HistoryEntry>,
}

/// What a stored payment holds beyond its draft (the store's mapping builds it).
#[derive(Debug, Clone)]
pub struct StoredParts {
    pub status: PaymentStatus,
    pub amount_capturable: i64,
    pub amount_received: i64,
    pub amount_refunded: i64,
    pub processor_reference: Option<String>,
    pub decline: Option<Decline>,
    pub next_action: Option<NextAction>,
    pub cancellation_reason: Option<CancellationReason>,
    pub claim: Option<Claim>,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub history: Vec<HistoryEntry>,
}

impl Payment {
    /// A new payment (version 1): waiting for a card, or for confirmation if
    /// it has one. Returns the event its creation causes.
    pub fn create(draft: PaymentDraft, at: Timestamp) -> (Self, Vec<EventType>) {
        let state = PaymentState::new(draft.money, draft.capture_method, draft.payment_method.is_some());
        let mut payment = Self::assemble(draft, state, at);
        payment.push(at, "create", None, "succeeded", Some(payment.state.money.amount), None);
        (payment, vec![EventType::PaymentCreated])
    }

    /// A payment as stored. `None` if the parts contradict each other (an
    /// amount outside what the status allows, a next action outside
    /// `requires_action`).
    pub fn restore(draft: PaymentDraft, parts: StoredParts) -> Option<Self> {
        let state = PaymentState {
            status: parts.status,
            money: draft.money,
            capture_method: draft.capture_method,
            amount_capturable: parts.amount_capturable,
            amount_received: parts.amount_received,
            amount_refunded: parts.amount_refunded,
        };
        let amount = draft.money.amount.get();
        let consistent = (0..=amount).contains(&state.amount_capturable)
            && (0..=amount).contains(&state.amount_received)
            && (0..=state.amount_received).contains(&state.amount_refunded)
            && (parts.next_action.is_none() || parts.status == PaymentStatus::RequiresAction);
        if !consistent {
            return None;
        }
        let mut payment = Self::assemble(draft, state, parts.created_at);
        payment.processor_reference = parts.processor_reference;
        payment.decline = parts.decline;
        payment.next_action = parts.next_action;
        payment.cancellation_reason = parts.cancellation_reason;
        payment.claim = parts.claim;
        payment.version = parts.version;
        payment.updated_at = parts.updated_at;
        payment.history = parts.history;
        Some(payment)
    }

    fn assemble(draft: PaymentDraft, state: PaymentState, at: Timestamp) -> Self {
        Self {
            id: draft.id,
            tenant: draft.tenant,
            state,
            payment_method: draft.payment_method,
            description: draft.description,
            metadata: draft.metadata,
            customer_ip: draft.customer_ip,
            customer_email: draft.customer_email,
            return_url: draft.return_url,
            connector: draft.connector,
            processor_reference: None,
            decline: None,
            next_action: None,
            cancellation_reason: None,
            idempotency_key: draft.idempotency_key,
            claim: None,
            risk: None,
            sca: None,
            version: 1,
            created_at: at,
            updated_at: at,
            history: Vec::new(),
        }
    }

    pub fn status(&self) -> PaymentStatus {
        self.state.status
    }

    /// Status and amounts.
    pub fn state(&self) -> &PaymentState {
        &self.state
    }

    pub fn money(&self) -> Money {
        self.state.money
    }

    pub fn capture_method(&self) -> CaptureMethod {
        self.state.capture_method
    }

    pub fn next_action(&self) -> Option<&NextAction> {
        self.next_action.as_ref()
    }

    pub fn cancellation_reason(&self) -> Option<CancellationReason> {
        self.cancellation_reason
    }

    /// Every transition and attempt, oldest first.
    pub fn history(&self) -> &[HistoryEntry] {
        &self.history
    }

    /// Starts a stored change at `now`: the version moves on by one and the
    /// change's time is after the payment's last one, also within one
    /// millisecond (so ids ordered by time sort the changes in order).
    /// Returns the change's time.
    pub fn begin_change(&mut self, now: Timestamp) -> Timestamp {
        let at = now.max(Timestamp::from_millis(self.updated_at.as_millis().saturating_add(1)));
        self.version += 1;
        self.updated_at = at;
        at
    }

    /// Whether `step` would be allowed now (nothing changes either way).
    pub fn check(&self, step: Step) -> Result<(), PaymentError> {
        self.state.clone().apply(step).map(drop)
    }

    /// Attaches (or replaces) the card token before confirmation.
    pub fn attach_payment_method(&mut self, token: TokenId, at: Timestamp) -> Result<Vec<EventType>, PaymentError> {
        self.step(Step::AttachPaymentMethod, at, "succeeded", None)?;
        self.payment_method = Some(token);
        Ok(Vec::new())
    }

    /// The merchant confirms: the payment goes to the processor.
    pub fn confirm(&mut self, at: Timestamp) -> Result<Vec<EventType>, PaymentError> {
        self.step(Step::Confirm, at, "succeeded", None)?;
        Ok(Vec::new())
    }

    /// The issuer wants the customer to authenticate: the payment waits for
    /// `action`.
    pub fn require_action(&mut self, action: NextAction, at: Timestamp) -> Result<Vec<EventType>, PaymentError> {
        self.step(
            Step::RequireAction,
            at,
            "challenge_required",
            Some("3-D Secure challenge".into()),
        )?;
        self.next_action = Some(action);
        Ok(vec![EventType::PaymentRequiresAction])
    }

    /// The customer authenticated: authorization resumes.
    pub fn authenticate(&mut self, at: Timestamp) -> Result<Vec<EventType>, PaymentError> {
        self.step(Step::Authenticated, at, "succeeded", None)?;
        Ok(Vec::new())
    }

    /// The processor approved the authorization. A payment captured on
    /// request announces what it can capture; one captured at once announces
    /// nothing yet (its capture follows).
    pub fn authorize(&mut self, at: Timestamp) -> Result<Vec<EventType>, PaymentError> {
        self.step(Step::Authorized, at, "approved", None)?;
        Ok(match self.state.capture_method {
            CaptureMethod::Manual => vec![EventType::PaymentAmountCapturableUpdated],
            CaptureMethod::Automatic => Vec::new(),
        })
    }

    /// The processor captured `amount` (the rest of the authorization is
    /// released). A capture on request is announced as such before the
    /// payment's success.
    pub fn capture(&mut self, amount: MinorUnits, at: Timestamp) -> Result<Vec<EventType>, PaymentError> {
        self.step(Step::Capture { amount }, at, "succeeded", None)?;
        Ok(match self.state.capture_method {
            CaptureMethod::Manual => vec![EventType::PaymentCaptured, EventType::PaymentSucceeded],
            CaptureMethod::Automatic => vec![EventType::PaymentSucceeded],
        })
    }

    /// The payment failed (declined, authentication failed, processor
    /// failure) with `decline`; `reason` is what its history says.
    pub fn fail(&mut self, decline: Decline, reason: String, at: Timestamp) -> Result<Vec<EventType>, PaymentError> {
        self.step(Step::Fail, at, "failed", Some(reason))?;
        self.decline = Some(decline);
        Ok(vec![EventType::PaymentFailed])
    }

    /// The merchant cancels, releasing any authorization.
    pub fn cancel(
        &mut self,
        reason: Option<CancellationReason>,
        at: Timestamp,
    ) -> Result<Vec<EventType>, PaymentError> {
        self.step(Step::Cancel, at, "succeeded", reason.map(|r| r.as_str().to_owned()))?;
        self.cancellation_reason = reason;
        Ok(vec![EventType::PaymentCanceled])
    }

    /// The customer's challenge went unanswered past its expiry.
    pub fn abandon(&mut self, at: Timestamp) -> Result<Vec<EventType>, PaymentError> {
        self.step(
            Step::Cancel,
            at,
            "expired",
            Some("the customer did not answer the challenge in time".into()),
        )?;
        self.cancellation_reason = Some(CancellationReason::Abandoned);
        Ok(vec![EventType::PaymentCanceled])
    }

    /// Records an attempt that changed no status (a declined capture, a claim
    /// taken or given back).
    pub fn record_attempt(&mut self, action: &str, outcome: &str, reason: Option<String>, at: Timestamp) {
        let status = self.state.status;
        self.push(at, action, Some(status), outcome, None, reason);
    }

    fn step(&mut self, step: Step, at: Timestamp, outcome: &str, reason: Option<String>) -> Result<(), PaymentError> {
        let from = self.state.apply(step)?;
        if self.state.status != PaymentStatus::RequiresAction {
            self.next_action = None;
        }
        let amount = match step {
            Step::Capture { amount } | Step::Refund { amount } => Some(amount),
            _ => None,
        };
        self.push(at, step.name(), Some(from), outcome, amount, reason);
        Ok(())
    }

    fn push(
        &mut self,
        at: Timestamp,
        action: &str,
        from: Option<PaymentStatus>,
        outcome: &str,
        amount: Option<MinorUnits>,
        reason: Option<String>,
    ) {
        self.history.push(HistoryEntry {
            at,
            action: action.to_owned(),
            from,
            to: self.state.status,
            outcome: outcome.to_owned(),
            amount,
            reason,
        });
    }
}

#[cfg(test)]
#[path = "payment_tests.rs"]
mod tests;
