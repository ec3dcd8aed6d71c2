//! The payment operations against Stripe: authorize (PaymentMethod, then
//! PaymentIntent, then confirm), capture, cancel, refund, and sync.
//!
//! Invariants: every POST's idempotency key is derived from our payment or
//! refund id (or the intent's) and the step, so a retried call is the same
//! call; the card leaves the vault's types only into the zeroizing body of
//! the PaymentMethod request; a 3-D Secure `next_action` becomes
//! [`AuthorizeOutcome::ChallengeRequired`].

use secrecy::ExposeSecret;

use super::api::{segment, Answer, Request};
use super::mapping::{decline_code, error_answer, remote_status};
use super::wire::{ApiError, Form, IntentStatus, PaymentIntent, PaymentMethod, Refund, RefundStatus, SearchResult};
use super::Stripe;
use crate::connectors::{
    AuthorizeOutcome, AuthorizeRequest, CaptureOutcome, ConnectorError, DeclineCode, RefundOutcome, RemoteStatus,
};
use crate::domain::ids::{PaymentId, RefundId};
use crate::domain::money::Money;

/// The metadata key that ties a PaymentIntent to our payment.
pub const PAYMENT_METADATA: &str = "paywarden_payment";

/// An authorization's outcome, with where to send the customer when Stripe
/// wants 3-D Secure and gave a redirect (`next_action.redirect_to_url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub outcome: AuthorizeOutcome,
    pub redirect_url: Option<String>,
}

impl From<AuthorizeOutcome> for Authorization {
    fn from(outcome: AuthorizeOutcome) -> Self {
        Self {
            outcome,
            redirect_url: None,
        }
    }
}

/// The idempotency key of one step of one operation on `id`.
pub fn idempotency_key(id: &str, step: &str) -> String {
    format!("paywarden-{id}-{step}")
}

impl Stripe {
    /// [`crate::connectors::Connector::authorize`], also returning the
    /// redirect of a 3-D Secure challenge.
    pub async fn authorize_with_action(&self, request: AuthorizeRequest<'_>) -> Result<Authorization, ConnectorError> {
        self.check_mode(request.mode)?;
        let payment = request.payment.as_str();
        // The answer to a challenge: the intent tells how it ended.
        if request.authentication.is_some() {
            if let Some(intent) = self.references.get(payment).or_else(|| {
                request
                    .authentication
                    .map(|a| a.reference.clone())
                    .filter(|r| r.starts_with("pi_"))
            }) {
                let answer = self
                    .api
                    .call::<PaymentIntent>(Request::get(format!("/v1/payment_intents/{}", segment(&intent)?)));
                return match answer.await? {
                    Answer::Ok(intent) => self.after_confirm(&intent),
                    Answer::Failed { status, error } => Err(error_answer(status, error.as_ref(), false)),
                };
            }
        }
        let method = match self.create_payment_method(&request).await? {
            Ok(id) => id,
            Err(declined) => return Ok(declined.into()),
        };
        let form = Form::new()
            .field("amount", &request.money.amount.get().to_string())
            .field("currency", &request.money.currency.api_code())
            .field("payment_method", &method)
            .field("payment_method_types[]", "card")
            .field("capture_method", "manual")
            .field(&format!("metadata[{PAYMENT_METADATA}]"), payment);
        let created = self
            .api
            .call::<PaymentIntent>(Request::post(
                "/v1/payment_intents".into(),
                form,
                idempotency_key(payment, "intent"),
            ))
            .await?;
        let intent = match created {
            Answer::Ok(intent) => intent,
            Answer::Failed { status, error } => return self.declined_or_error(status, error, true),
        };
        self.references.record(payment, &intent.id);
        let form = Form::new().optional("return_url", self.return_url.as_deref());
        let confirmed = self
            .api
            .call::<PaymentIntent>(Request::post(
                format!("/v1/payment_intents/{}/confirm", segment(&intent.id)?),
                form,
                idempotency_key(payment, "confirm"),
            ))
            .await?;
        match confirmed {
            Answer::Ok(intent) => self.after_confirm(&intent),
            Answer::Failed { status, error } => self.declined_or_error(status, error, true).map(|mut a| {
                if let AuthorizeOutcome::Declined { reference, .. } = &mut a.outcome {
                    reference.get_or_insert_with(|| intent.id.clone());
                }
                a
            }),
        }
    }

    /// Creates the PaymentMethod: its id, or the decline when Stripe refused
    /// the card itself (an invalid number or expiry).
    async fn create_payment_method(
        &self,
        request: &AuthorizeRequest<'_>,
    ) -> Result<Result<String, AuthorizeOutcome>, ConnectorError> {
        let card = request.card;
        let form = Form::new()
            .field("type", "card")
            .field("card[number]", card.number.expose_digits())
            .field("card[exp_month]", &card.expiry.month().to_string())
            .field("card[exp_year]", &card.expiry.year().to_string())
            .optional("card[cvc]", card.cvc.as_ref().map(|c| c.expose()))
            .optional("billing_details[name]", card.name.as_ref().map(|n| n.expose_secret()));
        let answer = self
            .api
            .call::<PaymentMethod>(Request::post(
                "/v1/payment_methods".into(),
                form,
                idempotency_key(request.payment.as_str(), "payment_method"),
            ))
            .await?;
        match answer {
            Answer::Ok(method) => Ok(Ok(method.id)),
            Answer::Failed { status, error } => Ok(Err(self.declined_or_error(status, error, true)?.outcome)),
        }
    }

    /// A card error as a decline; any other error answer as an error. Stripe
    /// sends declines as `card_error`; a 402 with a code (but not the
    /// raw-card-data refusal) is read as one too, as stripe-python does
    /// (localstripe answers `invalid_request_error` + `card_declined`).
    fn declined_or_error(
        &self,
        status: u16,
        error: Option<ApiError>,
        post: bool,
    ) -> Result<Authorization, ConnectorError> {
        let is_decline = |e: &ApiError| {
            e.kind.as_deref() == Some("card_error")
                || (status == 402 && e.code.is_some() && !super::mapping::is_raw_card_data_refusal(status, e))
        };
        match error {
            Some(e) if is_decline(&e) => Ok(AuthorizeOutcome::Declined {
                code: decline_code(e.code.as_deref(), e.decline_code.as_deref()),
                reference: e.payment_intent.map(|pi| pi.id().to_owned()),
            }
            .into()),
            other => Err(error_answer(status, other.as_ref(), post)),
        }
    }

    /// What a confirmed (or re-read) intent means for the authorization.
    fn after_confirm(&self, intent: &PaymentIntent) -> Result<Authorization, ConnectorError> {
        let reference = intent.id.clone();
        let outcome = match intent.status {
            IntentStatus::RequiresCapture | IntentStatus::Succeeded => AuthorizeOutcome::Approved { reference },
            IntentStatus::RequiresAction => {
                let redirect_url = intent
                    .next_action
                    .as_ref()
                    .filter(|a| a.kind == "redirect_to_url")
                    .and_then(|a| a.redirect_to_url.as_ref())
                    .and_then(|r| r.url.clone())
                    .filter(|u| u.starts_with("https://"));
                return Ok(Authorization {
                    outcome: AuthorizeOutcome::ChallengeRequired { reference },
                    redirect_url,
                });
            }
            IntentStatus::RequiresPaymentMethod | IntentStatus::Canceled => {
                let error = intent.last_payment_error.as_ref();
                AuthorizeOutcome::Declined {
                    code: decline_code(
                        error.and_then(|e| e.code.as_deref()),
                        error.and_then(|e| e.decline_code.as_deref()),
                    ),
                    reference: Some(reference),
                }
            }
            // Not decided yet (or a state unknown to this version): the
            // outcome is unknown, and `sync` will tell.
            IntentStatus::Processing | IntentStatus::RequiresConfirmation | IntentStatus::Unknown => {
                return Err(ConnectorError::Timeout)
            }
        };
        Ok(outcome.into())
    }

    pub(super) async fn capture_intent(
        &self,
        reference: &str,
        amount: Money,
    ) -> Result<CaptureOutcome, ConnectorError> {
        let intent = segment(reference)?;
        let form = Form::new().field("amount_to_capture", &amount.amount.get().to_string());
        let answer = self
            .api
            .call::<PaymentIntent>(Request::post(
                format!("/v1/payment_intents/{intent}/capture"),
                form,
                idempotency_key(intent, "capture"),
            ))
            .await?;
        match answer {
            Answer::Ok(intent) if intent.status == IntentStatus::Succeeded => Ok(CaptureOutcome::Captured),
            Answer::Ok(_) => Ok(CaptureOutcome::Failed {
                code: DeclineCode::CaptureFailed,
            }),
            Answer::Failed { status, error } => match error {
                Some(e) if matches!(e.kind.as_deref(), Some("card_error")) || status == 402 => {
                    Ok(CaptureOutcome::Failed {
                        code: DeclineCode::CaptureFailed,
                    })
                }
                other => Err(error_answer(status, other.as_ref(), true)),
            },
        }
    }

    pub(super) async fn cancel_intent(&self, reference: &str) -> Result<(), ConnectorError> {
        let intent = segment(reference)?;
        let answer = self
            .api
            .call::<PaymentIntent>(Request::post(
                format!("/v1/payment_intents/{intent}/cancel"),
                Form::new(),
                idempotency_key(intent, "cancel"),
            ))
            .await?;
        match answer {
            Answer::Ok(intent) if intent.status == IntentStatus::Canceled => Ok(()),
            Answer::Ok(_) => Err(ConnectorError::Rejected(
                "Stripe did not cancel the PaymentIntent".into(),
            )),
            Answer::Failed { status, error } => Err(error_answer(status, error.as_ref(), true)),
        }
    }

    pub(super) async fn refund_intent(
        &self,
        reference: &str,
        refund: &RefundId,
        amount: Money,
    ) -> Result<RefundOutcome, ConnectorError> {
        let intent = segment(reference)?;
        let form = Form::new()
            .field("payment_intent", intent)
            .field("amount", &amount.amount.get().to_string())
            .field("metadata[paywarden_refund]", refund.as_str());
        let answer = self
            .api
            .call::<Refund>(Request::post(
                "/v1/refunds".into(),
                form,
                idempotency_key(refund.as_str(), "refund"),
            ))
            .await?;
        let failed = RefundOutcome::Failed {
            code: DeclineCode::RefundFailed,
        };
        match answer {
            Answer::Ok(refund) => match refund.status {
                Some(RefundStatus::Succeeded) => Ok(RefundOutcome::Succeeded { reference: refund.id }),
                Some(RefundStatus::Failed | RefundStatus::Canceled) => Ok(failed),
                // Accepted but not settled: not known yet, which the core
                // treats as a timeout (the refund stays pending until
                // reconciled), never as a success or a failure on a guess.
                _ => Err(ConnectorError::Timeout),
            },
            // Stripe refused the refund itself (already refunded, amount
            // over what remains, a failed charge).
            Answer::Failed {
                status: 400 | 402,
                error: Some(_),
            } => Ok(failed),
            Answer::Failed { status, error } => Err(error_answer(status, error.as_ref(), true)),
        }
    }

    pub(super) async fn sync_payment(&self, payment: &PaymentId) -> Result<RemoteStatus, ConnectorError> {
        let intent = match self.references.get(payment.as_str()) {
            Some(intent) => {
                let answer = self
                    .api
                    .call::<PaymentIntent>(Request::get(format!("/v1/payment_intents/{}", segment(&intent)?)))
                    .await?;
                match answer {
                    Answer::Ok(intent) => Some(intent),
                    Answer::Failed { status: 404, .. } => None,
                    Answer::Failed { status, error } => return Err(error_answer(status, error.as_ref(), false)),
                }
            }
            None => self.search(payment).await?,
        };
        match intent {
            Some(intent) => remote_status(&intent).ok_or(ConnectorError::Timeout),
            None => Ok(RemoteStatus::NotFound),
        }
    }

    /// Finds the intent of `payment` by its metadata (Stripe's search API,
    /// which lags writes by up to about a minute: used only when the intent's
    /// id is not remembered).
    async fn search(&self, payment: &PaymentId) -> Result<Option<PaymentIntent>, ConnectorError> {
        // Payment ids are letters, digits and `_`: nothing to escape.
        let query = format!("metadata['{PAYMENT_METADATA}']:'{}'", segment(payment.as_str())?);
        let answer = self
            .api
            .call::<SearchResult>(Request::get("/v1/payment_intents/search".into()).query("query", query))
            .await?;
        let found = match answer {
            Answer::Ok(found) => found,
            Answer::Failed { status, error } => return Err(error_answer(status, error.as_ref(), false)),
        };
        // An authorized or captured intent wins over an abandoned one.
        let mut matching: Vec<PaymentIntent> = found
            .data
            .into_iter()
            .filter(|i| i.metadata.get(PAYMENT_METADATA).map(String::as_str) == Some(payment.as_str()))
            .collect();
        matching.sort_by_key(|i| !matches!(i.status, IntentStatus::RequiresCapture | IntentStatus::Succeeded));
        if let Some(intent) = matching.first() {
            self.references.record(payment.as_str(), &intent.id);
        }
        Ok(matching.into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_derived_from_the_id_and_the_step() {
        assert_eq!(idempotency_key("pay_1", "confirm"), "paywarden-pay_1-confirm");
        assert_ne!(idempotency_key("pay_1", "intent"), idempotency_key("pay_1", "confirm"));
        assert_ne!(idempotency_key("pay_1", "intent"), idempotency_key("pay_2", "intent"));
    }
}
