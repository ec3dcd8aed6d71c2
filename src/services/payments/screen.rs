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
//! (`services::fraud::cache`); the facts are `services::fraud::facts`. A
//! screened confirm reads its velocity signals (one query, only if a rule
//! tests them) and leaves its observation on the change, recorded when the
//! payment commits (`services::fraud::velocity`).

use crate::connectors::DeclineCode;
use crate::domain::fraud_rules::Decision;
use crate::domain::payment::risk::decision_str;
use crate::domain::payment::Risk;
use crate::services::fraud::facts::{CardFacts, PaymentFacts};
use crate::services::fraud::velocity::{Observation, SignalKeys};
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

impl<S: PaymentPorts> Payments<S> {
    /// Screens a payment just confirmed (in `processing`, not yet sent)
    /// with the tenant's active rules, recording the assessment on it and
    /// in its history; see the module documentation for what follows.
    pub(super) async fn screen(&self, change: &mut Change, token: &Token) -> Result<Screening, ServiceError> {
        let Some(active) = self.fraud.active(&change.payment.tenant).await? else {
            return Ok(Screening::Proceed);
        };
        let keys = SignalKeys::of(self.vault.fingerprinter(), &change.payment, &token.fingerprint);
        let signals = self
            .fraud
            .signals(
                &change.payment.tenant,
                &keys,
                change.payment.money(),
                change.now,
                active.needs_velocity,
                active.needs_usual,
            )
            .await?;
        change.observation = Some(Observation { keys, at: change.now });
        let owned = PaymentFacts::of(&change.payment);
        let card = CardFacts {
            brand: token.brand.as_str(),
            bin: &token.bin,
            last4: &token.last4,
        };
        let facts = owned.facts(&change.payment, Some(card), &signals);
        let explanation = active.rules.explain(&facts, active.as_ref(), active.thresholds);
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
