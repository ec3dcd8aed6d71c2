//! What PayPal's answers mean for the gateway: its error `name` and
//! `details[].issue`, and the card network's `processor_response.response_code`
//! of a denied authorization or declined capture, mapped onto
//! [`DeclineCode`] and [`ConnectorError`].
//!
//! Invariants: the messages built here name an issue, an HTTP status or a
//! fix, never PayPal's free text or any part of a request; an answer whose
//! effect is unknown (a 5xx after a POST) is a [`ConnectorError::Timeout`],
//! which the core reconciles through `sync`; reasons that would tell a
//! fraudster something (lost, stolen, suspected fraud) become
//! `generic_decline`.

use super::wire::{identifier, ApiError};
use crate::connectors::{ConnectorError, DeclineCode};

/// The operator's fix for an account PayPal will not let take cards.
pub const CARD_PROCESSING_FIX: &str = "PayPal refused to process a card for this account: the PayPal business \
     account is not enabled for card processing (advanced credit and debit card payments). Enable it for the REST \
     app (PayPal Developer Dashboard, Apps & Credentials, the app, Features: Advanced Credit and Debit Card \
     Payments; live accounts must also be approved for it), or route this merchant to another processor";

/// Issues that say the account (not the card) may not take this payment.
const CONFIGURATION_ISSUES: [&str; 7] = [
    "PAYEE_NOT_ENABLED_FOR_CARD_PROCESSING",
    "NOT_ENABLED_FOR_CARD_PROCESSING",
    "NOT_AUTHORIZED",
    "PERMISSION_DENIED",
    "AUTH_CAPTURE_NOT_ENABLED",
    "PAYEE_ACCOUNT_RESTRICTED",
    "PAYEE_ACCOUNT_LOCKED_OR_CLOSED",
];

/// A card refusal carried in an error answer's issue, as a decline.
pub fn decline_of_issue(issue: &str) -> Option<DeclineCode> {
    Some(match issue {
        "CARD_EXPIRED" | "INVALID_EXPIRY_DATE" | "REFERENCED_CARD_EXPIRED" => DeclineCode::ExpiredCard,
        "INVALID_SECURITY_CODE_LENGTH" => DeclineCode::IncorrectCvc,
        "INSTRUMENT_DECLINED"
        | "TRANSACTION_REFUSED"
        | "PAYER_CANNOT_PAY"
        | "PAYMENT_SOURCE_DECLINED_BY_PROCESSOR"
        | "PAYMENT_SOURCE_CANNOT_BE_USED"
        | "PAYMENT_SOURCE_INFO_CANNOT_BE_VERIFIED"
        | "CARD_TYPE_NOT_SUPPORTED"
        | "CARD_BRAND_NOT_SUPPORTED"
        | "DECLINED_DUE_TO_RELATED_TXN"
        | "MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED"
        | "TRANSACTION_LIMIT_EXCEEDED"
        | "PAYER_ACCOUNT_LOCKED_OR_CLOSED"
        | "PAYER_ACCOUNT_RESTRICTED" => DeclineCode::GenericDecline,
        "PAYER_ACTION_REQUIRED" => DeclineCode::AuthenticationFailed,
        _ => return None,
    })
}

/// The card network's `response_code` of a denied authorization or a
/// declined capture (PayPal's processor response codes) as a merchant sees it.
pub fn decline_of_response_code(code: Option<&str>) -> DeclineCode {
    match code.unwrap_or_default() {
        "5120" => DeclineCode::InsufficientFunds,
        "5400" | "1380" => DeclineCode::ExpiredCard,
        "5110" | "00N7" | "1382" => DeclineCode::IncorrectCvc,
        "0960" | "5910" | "5920" | "8000" | "8100" | "8110" | "8220" | "9100" => DeclineCode::ProcessingError,
        "5650" | "7700" | "7710" => DeclineCode::AuthenticationFailed,
        // 5100 generic, 9500 suspected fraud, 9520 lost or stolen, 5150
        // pick up card, and everything else: not told.
        _ => DeclineCode::GenericDecline,
    }
}

/// Whether an error answer says the account may not take cards (or this
/// operation): a 403, or one of [`CONFIGURATION_ISSUES`].
pub fn is_configuration(status: u16, error: Option<&ApiError>) -> bool {
    status == 403
        || error.is_some_and(|e| {
            e.issue().is_some_and(|i| CONFIGURATION_ISSUES.contains(&i))
                || e.name.as_deref().is_some_and(|n| CONFIGURATION_ISSUES.contains(&n))
        })
}

/// A non-2xx answer that is not a decline, as a connector error. `post`
/// says whether the call was a POST (whose effect a 5xx leaves unknown).
pub fn error_answer(status: u16, error: Option<&ApiError>, post: bool) -> ConnectorError {
    if is_configuration(status, error) {
        return ConnectorError::Configuration(CARD_PROCESSING_FIX.into());
    }
    let (name, issue) = match error {
        Some(e) => (identifier(e.name.as_deref()), identifier(e.issue())),
        None => ("none", "none"),
    };
    match status {
        401 => ConnectorError::Configuration(
            "PayPal did not accept the access token of this REST app (HTTP 401 after a fresh token): check the \
             connection's client id and secret"
                .into(),
        ),
        429 => ConnectorError::Unavailable("PayPal is rate limiting this account (HTTP 429)".into()),
        500..=599 if post => ConnectorError::Timeout,
        500..=599 => ConnectorError::Unavailable(format!("PayPal answered HTTP {status}")),
        _ => ConnectorError::Rejected(format!("PayPal answered HTTP {status}: name {name}, issue {issue}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(json: &str) -> ApiError {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn card_issues_and_response_codes_map_onto_our_declines_and_hide_fraud_reasons() {
        assert_eq!(decline_of_issue("CARD_EXPIRED"), Some(DeclineCode::ExpiredCard));
        assert_eq!(
            decline_of_issue("INSTRUMENT_DECLINED"),
            Some(DeclineCode::GenericDecline)
        );
        assert_eq!(
            decline_of_issue("TRANSACTION_REFUSED"),
            Some(DeclineCode::GenericDecline)
        );
        assert_eq!(decline_of_issue("INVALID_PARAMETER_VALUE"), None);
        for (code, expected) in [
            ("5120", DeclineCode::InsufficientFunds),
            ("5400", DeclineCode::ExpiredCard),
            ("5110", DeclineCode::IncorrectCvc),
            ("9100", DeclineCode::ProcessingError),
            ("9500", DeclineCode::GenericDecline),
            ("9520", DeclineCode::GenericDecline),
            ("0500", DeclineCode::GenericDecline),
        ] {
            assert_eq!(decline_of_response_code(Some(code)), expected, "{code}");
        }
        assert_eq!(decline_of_response_code(None), DeclineCode::GenericDecline);
    }

    #[test]
    fn an_account_not_enabled_for_cards_is_a_configuration_error_naming_the_fix() {
        let refusal = api_error(
            r#"{"name":"UNPROCESSABLE_ENTITY","message":"The requested action could not be performed","details":[{"issue":"PAYEE_NOT_ENABLED_FOR_CARD_PROCESSING","description":"The API Caller account is not setup to be able to process card payments."}]}"#,
        );
        let ConnectorError::Configuration(text) = error_answer(422, Some(&refusal), true) else {
            panic!("a configuration error")
        };
        assert!(text.contains("Advanced Credit and Debit Card"), "{text}");
        assert!(!text.contains("API Caller"), "PayPal's text is not repeated");
        let not_authorized = api_error(r#"{"name":"NOT_AUTHORIZED","details":[{"issue":"PERMISSION_DENIED"}]}"#);
        assert!(matches!(
            error_answer(403, Some(&not_authorized), true),
            ConnectorError::Configuration(_)
        ));
        assert!(matches!(
            error_answer(403, None, false),
            ConnectorError::Configuration(_)
        ));
    }

    #[test]
    fn other_errors_name_only_identifiers_and_5xx_after_a_post_is_unknown() {
        let hostile = api_error(r#"{"name":"INVALID_REQUEST","details":[{"issue":"4111111111111111"}]}"#);
        let text = error_answer(400, Some(&hostile), true).to_string();
        assert!(!text.contains("4111"), "{text}");
        assert!(text.contains("INVALID_REQUEST"), "{text}");
        assert_eq!(error_answer(500, None, true), ConnectorError::Timeout);
        assert!(matches!(error_answer(503, None, false), ConnectorError::Unavailable(_)));
        assert!(matches!(error_answer(429, None, true), ConnectorError::Unavailable(_)));
        assert!(matches!(
            error_answer(401, None, true),
            ConnectorError::Configuration(_)
        ));
    }
}
