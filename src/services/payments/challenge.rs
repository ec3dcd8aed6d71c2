//! The customer's 3-D Secure challenge at the sandbox ACS: the page that
//! shows it (with its one-time code in test mode), its answers (a code,
//! fail, abandon), and the expiry of challenges left unanswered. The
//! challenge secret in the page's URL is the only credential, checked here
//! once ([`NextAction::challenge_matches`]); the one-time code is derived
//! from it (`sca_sandbox::one_time_code`) and compared in constant time.
//!
//! A correct code is the final status `Y`: the card's SCA counters reset and
//! authorization resumes. A wrong one counts; the [`MAX_CODE_ATTEMPTS`]th
//! wrong one, or a `fail`, is `N` (`authentication_failed`, the processor
//! never called). `abandon` cancels the payment (`abandoned`), as the
//! expiry sweep does. Each answer is one change of the payment
//! (compare-and-set), so a replayed or concurrent answer finds no challenge.

use subtle::ConstantTimeEq;

use crate::domain::api_key::Mode;
use crate::domain::ids::PaymentId;
use crate::domain::money::Money;
use crate::domain::payment::{CancellationReason, NextAction, Payment, PaymentStatus};
use crate::domain::payment_fields::ReturnUrl;
use crate::domain::sca::TransStatus;
use crate::domain::time::Timestamp;

use super::super::actor::Actor;
use super::super::ServiceError;
use super::change::Change;
use super::{corrupt, flow, illegal, sca_sandbox, PaymentPorts, Payments};

/// Wrong codes a challenge takes before it fails.
pub const MAX_CODE_ATTEMPTS: u8 = 3;

/// What the challenge page shows.
#[derive(Debug, Clone)]
pub struct ChallengePage {
    pub money: Money,
    /// The one-time code, shown in test mode only.
    pub code: Option<String>,
    pub attempts_left: u8,
    /// The origin of the merchant's `return_url` (`https://shop.example`),
    /// where the page's form may send the browser once answered.
    pub return_origin: Option<String>,
}

/// The customer's answer on the challenge page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeAnswer {
    /// The one-time code as entered.
    Code(String),
    Fail,
    Abandon,
}

/// Where the customer's browser goes after answering a challenge.
#[derive(Debug, Clone)]
pub struct ChallengeResult {
    pub payment: Payment,
    pub return_url: Option<String>,
    /// A wrong code: the challenge waits, with this many attempts left.
    pub retry: Option<ChallengePage>,
}

fn unknown() -> ServiceError {
    ServiceError::NotFound {
        resource: "challenge",
        param: "challenge",
    }
}

fn attempts_left(payment: &Payment) -> u8 {
    let used = payment.sca.as_ref().map_or(0, |s| s.challenge_failures);
    MAX_CODE_ATTEMPTS.saturating_sub(used)
}

fn page_of(payment: &Payment, secret: &str) -> ChallengePage {
    ChallengePage {
        money: payment.money(),
        code: (payment.tenant.mode() == Mode::Test).then(|| sca_sandbox::one_time_code(secret)),
        attempts_left: attempts_left(payment),
        return_origin: payment
            .return_url
            .as_ref()
            .and_then(|u| url::Url::parse(ReturnUrl::as_str(u)).ok())
            .map(|u| u.origin().ascii_serialization())
            .filter(|origin| origin != "null"),
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

    /// What the challenge page shows. Not found unless `presented` is its
    /// secret and the payment still waits.
    pub async fn challenge_page(&self, id: &PaymentId, presented: &str) -> Result<ChallengePage, ServiceError> {
        let payment = self.find_challenge(id, presented).await?;
        if payment.status() != PaymentStatus::RequiresAction {
            return Err(unknown());
        }
        Ok(page_of(&payment, presented))
    }

    /// The customer answered the challenge page; see the module
    /// documentation. `challenge` is the secret from the page's URL.
    pub async fn complete_challenge(
        &self,
        actor: &Actor,
        id: &PaymentId,
        challenge: &str,
        answer: ChallengeAnswer,
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
        let done = |payment| ChallengeResult {
            payment,
            return_url: return_url.clone(),
            retry: None,
        };
        if answer == ChallengeAnswer::Abandon {
            change.action = "payment.challenge_abandoned";
            change
                .apply(|p, at| p.cancel(Some(CancellationReason::Abandoned), at))
                .map_err(illegal)?;
            let payment = change.commit(&self.store, self.snapshots, actor).await?.payment;
            return Ok(done(payment));
        }
        let token = change
            .payment
            .payment_method
            .clone()
            .ok_or_else(|| corrupt("payment_method"))?;
        let (token, card) = self.open_card(&tenant, &token, false).await?;
        let approved = match &answer {
            ChallengeAnswer::Code(code) => {
                let expected = sca_sandbox::one_time_code(challenge);
                let right = bool::from(expected.as_bytes().ct_eq(code.trim().as_bytes()));
                if !right {
                    let failures = change
                        .payment
                        .sca
                        .as_ref()
                        .map_or(0, |s| s.challenge_failures)
                        .saturating_add(1);
                    if let Some(sca) = change.payment.sca.as_mut() {
                        sca.challenge_failures = failures;
                    }
                    if failures < MAX_CODE_ATTEMPTS {
                        change.action = "payment.authentication_code_wrong";
                        change.attempt(
                            "authenticate",
                            "wrong_code",
                            Some(format!(
                                "wrong one-time code, {} attempts left",
                                MAX_CODE_ATTEMPTS - failures
                            )),
                        );
                        let payment = change.commit(&self.store, self.snapshots, actor).await?.payment;
                        let page = page_of(&payment, challenge);
                        return Ok(ChallengeResult {
                            retry: Some(page),
                            ..done(payment)
                        });
                    }
                }
                right
            }
            ChallengeAnswer::Fail | ChallengeAnswer::Abandon => false,
        };
        if !approved {
            change.action = "payment.authentication_failed";
            self.finish_challenge(&mut change, &token, TransStatus::NotAuthenticated)?;
            let payment = change.commit(&self.store, self.snapshots, actor).await?.payment;
            return Ok(done(payment));
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
        let authentication = self.finish_challenge(&mut change, &token, TransStatus::Authenticated)?;
        let connector = self
            .connector(&change.payment.tenant, &change.payment.connector)
            .await?;
        // The `processing` record (challenge cleared) is written first, as on
        // confirm: of two answers sent at once (a double click, a replayed
        // form) only the one whose compare-and-set wins asks the processor;
        // the other finds no challenge, and the expiry sweep finds nothing
        // to cancel while the authorization is under way. The counters'
        // reset commits with it.
        if connector.has_external_effects() {
            change = self.write_ahead(change, actor).await?;
        }
        // A challenge the processor asked for resumes with its reference.
        let authentication = match (&change.payment.processor_reference, authentication) {
            (Some(reference), _) => Some(crate::connectors::Authentication {
                reference: reference.clone(),
            }),
            (None, found) => found,
        };
        flow::authorize(
            &self.policy,
            connector.as_ref(),
            &mut change,
            &card,
            authentication.as_ref(),
            // The customer authenticated with this processor: never another.
            None,
        )
        .await;
        let payment = change.commit(&self.store, self.snapshots, actor).await?.payment;
        Ok(done(payment))
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
