//! What Stripe's answers mean for the gateway: decline and error codes mapped
//! onto [`DeclineCode`] and [`ConnectorError`], PaymentIntent states onto
//! [`RemoteStatus`].
//!
//! Invariants: the messages built here name a code, an HTTP status or a fix,
//! never Stripe's free text or any part of a request; an answer whose effect
//! is unknown (a timeout or a 5xx after a POST, an unreadable 2xx) is a
//! [`ConnectorError::Timeout`], which the core reconciles through `sync`
//! rather than taking for a failure.

use super::wire::{identifier, ApiError, IntentStatus, PaymentIntent};
use crate::connectors::{ConnectorError, DeclineCode, RemoteStatus};

/// The operator's fix for Stripe's refusal of raw card numbers.
pub const RAW_CARD_DATA_FIX: &str = "Stripe refused the card number: this Stripe account does not have raw card \
     data APIs enabled. Ask Stripe to enable them for the account (Dashboard, Settings, Integration: handle card \
     information directly; see https://support.stripe.com/questions/enabling-access-to-raw-card-data-apis), or route \
     this merchant to another processor";

/// Stripe's `decline_code` (or, without one, its `code`) as a merchant sees it.
///
/// Reasons that would tell a fraudster something (`fraudulent`, `lost_card`,
/// `stolen_card`, `pickup_card`) become `generic_decline`, as Stripe itself
/// advises for what is shown to customers.
pub fn decline_code(code: Option<&str>, decline_code: Option<&str>) -> DeclineCode {
    match decline_code.or(code).unwrap_or("generic_decline") {
        "insufficient_funds" | "withdrawal_count_limit_exceeded" => DeclineCode::InsufficientFunds,
        "expired_card" | "invalid_expiry_month" | "invalid_expiry_year" => DeclineCode::ExpiredCard,
        "incorrect_cvc" | "invalid_cvc" => DeclineCode::IncorrectCvc,
        "processing_error" | "issuer_not_available" | "try_again_later" | "reenter_transaction" => {
            DeclineCode::ProcessingError
        }
        "authentication_required" | "payment_intent_authentication_failure" | "authentication_not_handled" => {
            DeclineCode::AuthenticationFailed
        }
        _ => DeclineCode::GenericDecline,
    }
}

/// Whether an error answer is Stripe refusing raw card data: an
/// `invalid_request_error` (HTTP 400 or 402) whose message is about sending
/// card numbers directly or about raw card data APIs.
pub fn is_raw_card_data_refusal(status: u16, error: &ApiError) -> bool {
    if !matches!(status, 400 | 402) || error.kind.as_deref() != Some("invalid_request_error") {
        return false;
    }
    let message = error.message.as_deref().unwrap_or_default().to_ascii_lowercase();
    message.contains("card numbers directly")
        || message.contains("raw card data")
        || message.contains("raw-card-data")
        || message.contains("raw_card_data")
}

/// A non-2xx answer that is not a decline, as a connector error. `post`
/// says whether the call was a POST (whose effect a 5xx leaves unknown).
pub fn error_answer(status: u16, error: Option<&ApiError>, post: bool) -> ConnectorError {
    if let Some(error) = error {
        if is_raw_card_data_refusal(status, error) {
            return ConnectorError::Configuration(RAW_CARD_DATA_FIX.into());
        }
    }
    let (kind, code) = match error {
        Some(e) => (identifier(e.kind.as_deref()), identifier(e.code.as_deref())),
        None => ("none", "none"),
    };
    match status {
        401 => ConnectorError::Configuration(
            "Stripe did not accept the secret key (HTTP 401): set a valid secret key for this connector".into(),
        ),
        403 => ConnectorError::Configuration(
            "the Stripe key may not do this (HTTP 403): use a secret key, or give the restricted key write access \
             to PaymentMethods, PaymentIntents and Refunds"
                .into(),
        ),
        429 => ConnectorError::Unavailable("Stripe is rate limiting this account (HTTP 429)".into()),
        500..=599 if post => ConnectorError::Timeout,
        500..=599 => ConnectorError::Unavailable(format!("Stripe answered HTTP {status}")),
        _ => ConnectorError::Rejected(format!("Stripe answered HTTP {status}: type {kind}, code {code}")),
    }
}

/// Where a PaymentIntent stands, in the core's terms; `None` while Stripe is
/// still deciding (`processing`) or for a state this version does not know.
pub fn remote_status(intent: &PaymentIntent) -> Option<RemoteStatus> {
    match intent.status {
        IntentStatus::RequiresCapture => Some(RemoteStatus::Authorized {
            reference: intent.id.clone(),
        }),
        IntentStatus::Succeeded => Some(RemoteStatus::Captured {
            reference: intent.id.clone(),
            amount: intent.amount_received.unwrap_or(intent.amount),
        }),
        IntentStatus::Canceled => Some(RemoteStatus::Voided),
        // Nothing is authorized: no card yet, not confirmed, or the customer
        // has yet to authenticate.
        IntentStatus::RequiresPaymentMethod | IntentStatus::RequiresConfirmation | IntentStatus::RequiresAction => {
            Some(RemoteStatus::NotFound)
        }
        IntentStatus::Processing | IntentStatus::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(json: &str) -> ApiError {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn decline_codes_map_onto_ours_and_hide_fraud_reasons() {
        let cases = [
            (
                Some("card_declined"),
                Some("insufficient_funds"),
                DeclineCode::InsufficientFunds,
            ),
            (
                Some("card_declined"),
                Some("generic_decline"),
                DeclineCode::GenericDecline,
            ),
            (Some("card_declined"), Some("fraudulent"), DeclineCode::GenericDecline),
            (Some("card_declined"), Some("stolen_card"), DeclineCode::GenericDecline),
            (Some("expired_card"), None, DeclineCode::ExpiredCard),
            (Some("incorrect_cvc"), None, DeclineCode::IncorrectCvc),
            (Some("processing_error"), None, DeclineCode::ProcessingError),
            (
                Some("card_declined"),
                Some("authentication_required"),
                DeclineCode::AuthenticationFailed,
            ),
            (
                Some("payment_intent_authentication_failure"),
                None,
                DeclineCode::AuthenticationFailed,
            ),
            (None, None, DeclineCode::GenericDecline),
        ];
        for (code, decline, expected) in cases {
            assert_eq!(decline_code(code, decline), expected, "{code:?} {decline:?}");
        }
    }

    #[test]
    fn the_raw_card_data_refusal_names_the_fix_and_nothing_of_the_answer() {
        let refusal = api_error(
            r#"{"type":"invalid_request_error","message":"Sending credit card numbers directly to the Stripe API is generally unsafe. To continue processing use Stripe.js, the Stripe mobile bindings, or Stripe Elements."}"#,
        );
        for status in [400, 402] {
            let ConnectorError::Configuration(text) = error_answer(status, Some(&refusal), true) else {
                panic!("a configuration error")
            };
            assert!(text.contains("raw card data"));
            assert!(!text.contains("generally unsafe"), "Stripe's text is not repeated");
        }
        let other = api_error(r#"{"type":"invalid_request_error","code":"parameter_missing","message":"Missing x"}"#);
        assert_eq!(
            error_answer(400, Some(&other), true),
            ConnectorError::Rejected(
                "Stripe answered HTTP 400: type invalid_request_error, code parameter_missing".into()
            )
        );
    }

    #[test]
    fn authentication_failures_are_configuration_errors_and_5xx_after_a_post_is_unknown() {
        assert!(matches!(
            error_answer(401, None, false),
            ConnectorError::Configuration(_)
        ));
        assert!(matches!(
            error_answer(403, None, true),
            ConnectorError::Configuration(_)
        ));
        assert_eq!(error_answer(500, None, true), ConnectorError::Timeout);
        assert_eq!(error_answer(503, None, true), ConnectorError::Timeout);
        assert!(matches!(error_answer(502, None, false), ConnectorError::Unavailable(_)));
        assert!(matches!(error_answer(429, None, true), ConnectorError::Unavailable(_)));
    }

    #[test]
    fn a_payload_in_a_code_field_is_not_repeated() {
        let hostile = api_error(r#"{"type":"invalid_request_error","code":"4242424242424242"}"#);
        let text = error_answer(400, Some(&hostile), true).to_string();
        assert!(!text.contains("4242"), "{text}");
    }
}
