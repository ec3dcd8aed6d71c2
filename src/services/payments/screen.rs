//! Screening a confirmed payment with the merchant's fraud rules, before any
//! processor sees it: the facts the rules language reads (from the payment,
//! its card token and the mode), the assessment stored on the payment
//! (`risk`, explained by its signals), and what each decision does:
//! `block` fails the payment (`fraudulent`, the processor never called),
//! `challenge` sends the customer to the 3-D Secure challenge first,
//! `review` authorizes but holds the payment uncaptured (see `flow`),
//! `allow` and a low score go on to the processor.
//!
//! A tenant without rules costs nothing here but a cache look-up
//! (`services::fraud::cache`). Facts the gateway does not know yet are
//! absent (a test of them is false): `card.funding`, `customer.ip_country`
//! and the `velocity.*` counters.

use crate::connectors::DeclineCode;
use crate::domain::api_key::Mode;
use crate::domain::fraud_rules::{Decision, RiskFacts};
use crate::domain::payment::risk::decision_str;
use crate::domain::payment::{Payment, Risk};
use crate::domain::payment_fields::CustomerEmail;
use crate::services::fraud;
use crate::services::tokens::Token;

use super::super::ServiceError;
use super::change::Change;
use super::{flow, PaymentPorts, Payments};

/// What the screening left to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Screening {
    /// On to the processor (allowed, no rules, or held for review after
    /// authorization).
    Proceed,
    /// The payment was failed or sent to a challenge: commit it as it is.
    Stopped,
}

/// The strings the facts borrow.
struct Owned {
    currency: String,
    email: Option<String>,
    ip: Option<String>,
}

impl Owned {
    fn of(payment: &Payment) -> Self {
        Self {
            currency: payment.money().currency.api_code(),
            email: payment
                .customer_email
                .as_ref()
                .map(|e| CustomerEmail::as_str(e).to_lowercase()),
            ip: payment.customer_ip.map(|ip| ip.to_string()),
        }
    }

    fn facts<'a>(&'a self, payment: &'a Payment, token: &'a Token) -> RiskFacts<'a> {
        RiskFacts {
            amount: Some(payment.money().amount.get()),
            currency: Some(&self.currency),
            capture_method: Some(payment.capture_method().as_str()),
            card_brand: Some(token.brand.as_str()),
            card_bin: Some(&token.bin),
            card_last4: Some(&token.last4),
            card_funding: None,
            customer_ip_country: None,
            customer_email_domain: self.email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d),
            customer_email: self.email.as_deref(),
            customer_ip: self.ip.as_deref(),
            is_livemode: Some(payment.tenant.mode() == Mode::Live),
            velocity_card_payments_1h: None,
            velocity_ip_payments_1h: None,
            velocity_card_declines_24h: None,
        }
    }
}

impl<S: PaymentPorts> Payments<S> {
    /// Screens a payment just confirmed (in `processing`, not yet sent)
    /// with the tenant's active rules, recording the assessment on it and
    /// in its history; see the module documentation for what follows.
    pub(super) async fn screen(&self, change: &mut Change, token: &Token) -> Result<Screening, ServiceError> {
        let Some(active) = self.fraud.active(&change.payment.tenant).await? else {
            return Ok(Screening::Proceed);
        };
        let owned = Owned::of(&change.payment);
        let facts = owned.facts(&change.payment, token);
        let explanation = active.rules.explain(&facts, active.as_ref(), fraud::thresholds()?);
        let risk = Risk::from_explanation(active.version, &explanation);
        let decision = risk.decision;
        change.attempt(
            "screen",
            decision_str(decision),
            Some(format!("risk score {}, rules v{}", risk.score, risk.rules_version)),
        );
        change.payment.risk = Some(risk);
        change.screened = true;
        Ok(match decision {
            Decision::Block => {
                flow::fail(change, "screen", DeclineCode::Fraudulent);
                Screening::Stopped
            }
            Decision::Challenge => {
                flow::challenge(&self.policy, change, None);
                Screening::Stopped
            }
            Decision::Review | Decision::Allow => Screening::Proceed,
        })
    }
}
