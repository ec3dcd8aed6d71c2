//! The customer's 3-D Secure challenge: the page that shows it, its answer
//! (resume authorization, or fail the payment), and the expiry of challenges
//! left unanswered. The challenge secret in the page's URL is the only
//! credential, checked here once ([`NextAction::challenge_matches`]).

use crate::connectors::{Authentication, DeclineCode};
use crate::domain::ids::PaymentId;
use crate::domain::money::Money;
use crate::domain::payment::{NextAction, Payment, PaymentStatus};
use crate::domain::payment_fields::ReturnUrl;
use crate::domain::time::Timestamp;

use super::super::actor::Actor;
use super::super::ServiceError;
use super::change::Change;
use super::{corrupt, flow, illegal, PaymentPorts, Payments};

/// Where the customer's browser goes after answering a challenge.
#[derive(Debug, Clone)]
pub struct ChallengeResult {
    pub payment: Payment,
    pub return_url: Option<String>,
}

fn unknown() -> ServiceError {
    ServiceError::NotFound {
        resource: "challenge",
        param: "challenge",
    }
}

impl<S: PaymentPorts> Payments<S> {
    /// The payment whose challenge secret is `presented`; not found for any
    /// other (no payment, no challenge, another secret).
    async fn find_challenge(&self, id: &PaymentId, presented: &str) -> Result<Payment, ServiceError> {
        let payment = self.store.get_payment_with_next_action(id).await?.ok_or_else(unknown)?;
        if !payment
            .next_action()
            .is_some_and(|action: &NextAction| action.challenge_matches(presented))
        {
            return Err(unknown());
        }
        Ok(payment)
    }

    /// What the challenge page shows: the amount of the payment waiting for
    /// this challenge. Not found unless `presented` is its secret and the
    /// payment still waits.
    pub async fn challenge_page(&self, id: &PaymentId, presented: &str) -> Result<Money, ServiceError> {
        let payment = self.find_challenge(id, presented).await?;
        if payment.status() != PaymentStatus::RequiresAction {
            return Err(unknown());
        }
        Ok(payment.money())
    }

    /// The customer answered the challenge page: resume authorization, or
    /// fail the payment. `challenge` is the secret from the page's URL.
    pub async fn complete_challenge(
        &self,
        actor: &Actor,
        id: &PaymentId,
        challenge: &str,
        approved: bool,
    ) -> Result<ChallengeResult, ServiceError> {
        let payment = self.find_challenge(id, challenge).await?;
        let now = Timestamp::now();
        if payment.status() != PaymentStatus::RequiresAction || payment.next_action().is_none_or(|a| a.expires_at < now)
        {
            return Err(ServiceError::Conflict {
                code: "challenge_expired",
                message: "This authentication has expired or was already answered".into(),
            });
        }
        let tenant = payment.tenant.clone();
        let return_url = payment.return_url.as_ref().map(|u| ReturnUrl::as_str(u).to_owned());
        let mut change = Change::of(payment, "payment.authenticated");
        if !approved {
            change.action = "payment.authentication_failed";
            let code = DeclineCode::AuthenticationFailed;
            change
                .apply(|p, at| p.fail(flow::decline(code), "the customer failed authentication".into(), at))
                .map_err(illegal)?;
            let payment = change.commit(&self.store, self.snapshots, actor).await?.payment;
            return Ok(ChallengeResult { payment, return_url });
        }
        // A frozen merchant authorizes nothing, also not a challenge answered
        // after the freeze: the payment waits, and expires if still frozen.
        let frozen = self
            .store
            .get_merchant(tenant.merchant())
            .await?
            .is_none_or(|m| m.frozen.is_some());
        if frozen {
            return Err(ServiceError::Conflict {
                code: "merchant_frozen",
                message: "This merchant's account is frozen; the payment cannot be authorized now".into(),
            });
        }
        change.apply(Payment::authenticate).map_err(illegal)?;
        let token = change
            .payment
            .payment_method
            .clone()
            .ok_or_else(|| corrupt("payment_method"))?;
        let (_, card) = self.open_card(&tenant, &token, false).await?;
        let connector = self
            .connector(&change.payment.tenant, &change.payment.connector)
            .await?;
        // The `processing` record (challenge cleared) is written first, as on
        // confirm: of two answers sent at once (a double click, a replayed
        // form) only the one whose compare-and-set wins asks the processor;
        // the other finds no challenge, and the expiry sweep finds nothing
        // to cancel while the authorization is under way.
        if connector.has_external_effects() {
            change = self.write_ahead(change, actor).await?;
        }
        let authentication = Authentication {
            reference: change.payment.processor_reference.clone().unwrap_or_default(),
        };
        flow::authorize(
            &self.policy,
            connector.as_ref(),
            &mut change,
            &card,
            Some(&authentication),
            // The customer authenticated with this processor: never another.
            None,
        )
        .await;
        let payment = change.commit(&self.store, self.snapshots, actor).await?.payment;
        Ok(ChallengeResult { payment, return_url })
    }

    /// Cancels payments whose challenge went unanswered past its expiry
    /// (`cancellation_reason: abandoned`). Returns how many.
    pub async fn expire_challenges(&self) -> Result<usize, ServiceError> {
        let actor = Actor::System {
            task: "challenge-expiry",
        };
        let now = Timestamp::now();
        let payments = self.store.expired_actions(now.as_millis(), 100).await?;
        let mut expired = 0;
        for payment in payments {
            let mut change = Change::of(payment, "payment.challenge_expired");
            if change.apply(Payment::abandon).is_err() {
                continue;
            }
            match change.commit(&self.store, self.snapshots, &actor).await {
                Ok(_) => expired += 1,
                // Answered in the meantime: nothing to expire.
                Err(ServiceError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }
}
