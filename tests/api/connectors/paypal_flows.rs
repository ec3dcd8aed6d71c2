//! The PayPal connector's payment flows against the fake PayPal: the OAuth
//! token (fetched once and cached, refreshed before expiry, refreshed once on
//! a 401), authorize and partial capture, capture at once (intent CAPTURE),
//! void, refund, sync, declines, zero-decimal amounts, an account not enabled
//! for cards, wrong credentials, and what every call carries.

use std::time::Duration;

use paywarden::connectors::paypal::Paypal;
use paywarden::connectors::{
    AuthorizeOutcome, AuthorizeRequest, CaptureOutcome, Connector, ConnectorError, DeclineCode, RefundOutcome,
    RemoteStatus,
};
use paywarden::domain::api_key::Mode;
use paywarden::domain::ids::{PaymentId, RefundId};
use secrecy::SecretString;
use serde_json::json;

use super::card;
use super::fake_paypal::{json_of, request_id, FakePaypal, Fault};
use super::paypal_support::{approved, authorize, config_for, money, pay, paypal_at};

#[tokio::test]
async fn authorize_capture_part_refund_and_sync_with_one_token_and_derived_request_ids() {
    let fake = FakePaypal::start().await;
    let paypal = paypal_at(&fake.base);
    let (payment, outcome) = authorize(&paypal, "4111111111111111", 2000).await;
    let order = approved(outcome);
    assert_eq!(
        paypal.sync(&payment).await,
        Ok(RemoteStatus::Authorized {
            reference: order.clone()
        })
    );
    assert_eq!(
        paypal.capture(&order, money(1500, "eur")).await,
        Ok(CaptureOutcome::Captured)
    );
    assert_eq!(
        paypal.sync(&payment).await,
        Ok(RemoteStatus::Captured {
            reference: order.clone(),
            amount: 1500
        })
    );
    let refund = RefundId::generate().unwrap();
    let Ok(RefundOutcome::Succeeded { reference }) = paypal.refund(&order, &refund, money(500, "eur")).await else {
        panic!("refund failed")
    };
    assert!(!reference.is_empty());
    // More than what remains is refused by PayPal: a failed refund.
    let again = RefundId::generate().unwrap();
    assert_eq!(
        paypal.refund(&order, &again, money(1001, "eur")).await,
        Ok(RefundOutcome::Failed {
            code: DeclineCode::RefundFailed
        })
    );
    let applied = fake.applied();
    assert_eq!(
        (
            applied.tokens,
            applied.authorizations,
            applied.captures,
            applied.refunds
        ),
        (1, 1, 1, 1)
    );

    let tokens = fake.calls_to("/v1/oauth2/token");
    assert_eq!(tokens.len(), 1, "the token is cached across calls");
    assert!(tokens[0].authorization.as_deref().unwrap().starts_with("Basic "));
    assert_eq!(tokens[0].param("grant_type"), Some("client_credentials"));
    for call in fake.calls().iter().filter(|c| c.path != "/v1/oauth2/token") {
        assert_eq!(
            call.authorization.as_deref(),
            Some("Bearer A21AAfakeToken0001"),
            "{}",
            call.path
        );
        assert_eq!(
            request_id(call).is_some(),
            call.method == "POST",
            "{} {}",
            call.method,
            call.path
        );
        if call.path != format!("/v2/checkout/orders/{order}/authorize") {
            assert!(
                !String::from_utf8_lossy(&call.body).contains("4111111111111111"),
                "{}",
                call.path
            );
        }
    }
    let create = &fake.calls_to("/v2/checkout/orders")[0];
    assert_eq!(request_id(create), Some(format!("paywarden-{payment}-order")));
    assert_eq!(
        json_of(create),
        json!({"intent": "AUTHORIZE", "purchase_units": [{"reference_id": "default", "custom_id": payment.as_str(),
               "amount": {"currency_code": "EUR", "value": "20.00"}}]})
    );
    let authorize = &fake.calls_to("/authorize")[0];
    assert_eq!(request_id(authorize), Some(format!("paywarden-{payment}-authorize")));
    assert_eq!(
        json_of(authorize),
        json!({"payment_source": {"card": {"number": "4111111111111111", "expiry": "2030-12", "security_code": "123"}}})
    );
    let capture = &fake.calls_to("/capture")[0];
    assert_eq!(request_id(capture), Some(format!("paywarden-{order}-capture")));
    assert_eq!(
        json_of(capture),
        json!({"amount": {"currency_code": "EUR", "value": "15.00"}, "final_capture": true})
    );
    let refunds = fake.calls_to("/refund");
    assert_eq!(request_id(&refunds[0]), Some(format!("paywarden-{refund}-refund")));
    assert_eq!(json_of(&refunds[0])["custom_id"], refund.as_str());
}

#[tokio::test]
async fn a_token_near_its_expiry_is_refreshed_and_a_401_refreshes_once_then_retries_once() {
    let fake = FakePaypal::start().await;
    fake.token_lifetime(2);
    let paypal = paypal_at(&fake.base);
    let (payment, outcome) = authorize(&paypal, "4111111111111111", 2000).await;
    approved(outcome);
    assert_eq!(fake.applied().tokens, 1);
    // Refreshed shortly before expiry (here: after half its life).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(matches!(
        paypal.sync(&payment).await,
        Ok(RemoteStatus::Authorized { .. })
    ));
    assert_eq!(fake.applied().tokens, 2);

    fake.token_lifetime(32_400);
    let paypal = paypal_at(&fake.base);
    let (payment, outcome) = authorize(&paypal, "4111111111111111", 2000).await;
    approved(outcome);
    assert_eq!(fake.applied().tokens, 3);
    // PayPal stops accepting the cached token: one new token, one retry.
    fake.revoke_tokens();
    assert!(matches!(
        paypal.sync(&payment).await,
        Ok(RemoteStatus::Authorized { .. })
    ));
    assert_eq!(fake.applied().tokens, 4);
    // A 401 again after the fresh token is not retried a second time.
    let unauthorized = || Fault::Refuse {
        status: 401,
        retry_after: None,
        body: r#"{"error":"invalid_token","error_description":"Token signature verification failed"}"#.into(),
    };
    fake.inject("/v2/checkout/orders/", unauthorized());
    fake.inject("/v2/checkout/orders/", unauthorized());
    let gets = fake.calls_to("").len();
    assert!(matches!(
        paypal.sync(&payment).await,
        Err(ConnectorError::Configuration(_))
    ));
    assert_eq!(fake.applied().tokens, 5, "one refresh");
    assert_eq!(fake.calls_to("").len(), gets + 3, "two tries and one token call");
}

#[tokio::test]
async fn capture_at_once_uses_intent_capture_and_the_following_capture_does_not_capture_again() {
    let fake = FakePaypal::start().await;
    let paypal = paypal_at(&fake.base);
    let (payment, outcome) = pay(&paypal, "4111111111111111", money(1500, "jpy"), true).await;
    let order = approved(outcome);
    assert_eq!(json_of(&fake.calls_to("/v2/checkout/orders")[0])["intent"], "CAPTURE");
    assert_eq!(
        json_of(&fake.calls_to("/v2/checkout/orders")[0])["purchase_units"][0]["amount"],
        json!({"currency_code": "JPY", "value": "1500"}),
        "a zero-decimal currency has no decimals"
    );
    assert_eq!(fake.calls_to(&format!("{order}/capture")).len(), 1);
    assert_eq!(
        paypal.capture(&order, money(1500, "jpy")).await,
        Ok(CaptureOutcome::Captured)
    );
    assert_eq!(
        paypal.sync(&payment).await,
        Ok(RemoteStatus::Captured {
            reference: order,
            amount: 1500
        })
    );
    assert_eq!(fake.applied().captures, 1, "captured once");
    assert!(fake.calls_to("").iter().all(|c| !c.path.starts_with("/v2/payments/")));
}

#[tokio::test]
async fn a_void_releases_the_authorization_and_it_can_no_longer_be_captured() {
    let fake = FakePaypal::start().await;
    let paypal = paypal_at(&fake.base);
    let (payment, outcome) = authorize(&paypal, "4111111111111111", 700).await;
    let order = approved(outcome);
    assert_eq!(paypal.void(&order).await, Ok(()));
    let void = &fake.calls_to("/void")[0];
    assert_eq!(request_id(void), Some(format!("paywarden-{order}-void")));
    assert_eq!(paypal.sync(&payment).await, Ok(RemoteStatus::Voided));
    // Voiding again changes nothing; capturing fails.
    assert_eq!(paypal.void(&order).await, Ok(()));
    assert_eq!(
        paypal.capture(&order, money(700, "eur")).await,
        Ok(CaptureOutcome::Failed {
            code: DeclineCode::CaptureFailed
        })
    );
    let applied = fake.applied();
    assert_eq!((applied.voids, applied.captures), (1, 0));
}

#[tokio::test]
async fn declines_map_onto_our_codes_with_the_order_as_reference() {
    let fake = FakePaypal::start().await;
    let paypal = paypal_at(&fake.base);
    for (number, expected) in [
        ("4000000000000002", DeclineCode::GenericDecline), // INSTRUMENT_DECLINED
        ("4000000000000069", DeclineCode::ExpiredCard),    // CARD_EXPIRED
        ("4000000000009995", DeclineCode::InsufficientFunds), // 5120
        ("4000000000000127", DeclineCode::IncorrectCvc),   // 5110
        ("4000000000000119", DeclineCode::ProcessingError), // 9100
        ("4000000000009987", DeclineCode::GenericDecline), // 9520 lost or stolen: not told
    ] {
        let (payment, outcome) = authorize(&paypal, number, 1000).await;
        match outcome {
            Ok(AuthorizeOutcome::Declined { code, reference }) => {
                assert_eq!(code, expected, "{number}");
                assert!(fake.status(&reference.expect("the order")).is_some());
            }
            other => panic!("{number}: expected a decline, got {other:?}"),
        }
        assert_eq!(paypal.sync(&payment).await, Ok(RemoteStatus::NotFound), "{number}");
    }
    assert_eq!(fake.applied().authorizations, 0);
}

#[tokio::test]
async fn an_account_not_enabled_for_cards_is_a_configuration_error_naming_the_fix() {
    let fake = FakePaypal::start().await;
    fake.disable_cards();
    let paypal = paypal_at(&fake.base);
    let (_, outcome) = authorize(&paypal, "4111111111111111", 1000).await;
    let Err(ConnectorError::Configuration(text)) = outcome else {
        panic!("a configuration error, got {outcome:?}")
    };
    assert!(
        text.contains("card processing") && text.contains("Advanced Credit and Debit Card"),
        "{text}"
    );
    assert!(!text.contains("4111") && !text.contains("PayPal writes"), "{text}");
    assert_eq!(fake.applied().authorizations, 0);
}

#[tokio::test]
async fn wrong_credentials_are_a_configuration_error_and_a_payment_of_the_other_mode_is_refused() {
    let fake = FakePaypal::start().await;
    let wrong = Paypal::new(paywarden::connectors::paypal::PaypalConfig {
        client_secret: SecretString::from("EwrongSecret0123456789"),
        ..config_for(&fake.base)
    })
    .unwrap();
    let (_, outcome) = authorize(&wrong, "4111111111111111", 1000).await;
    assert!(
        matches!(&outcome, Err(ConnectorError::Configuration(text)) if text.contains("401") && !text.contains("wrongSecret")),
        "{outcome:?}"
    );
    assert_eq!(fake.applied().orders, 0);

    let paypal = paypal_at(&fake.base);
    let payment = PaymentId::generate().unwrap();
    let card = card("4111111111111111");
    let live = paypal
        .authorize(AuthorizeRequest {
            payment: &payment,
            mode: Mode::Live,
            money: money(1000, "eur"),
            card: &card,
            authentication: None,
            customer_ip: None,
            capture_at_once: false,
        })
        .await;
    assert_eq!(live, Err(ConnectorError::ModeNotSupported("live")));
    assert_eq!(fake.calls().len(), 1, "only the refused token call reached PayPal");
}
