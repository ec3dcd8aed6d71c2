//! The Stripe connector's payment flows against the fake Stripe: authorize
//! (approved, declined, 3-D Secure), capture (full, partial), void, refund,
//! sync, the raw-card-data refusal, and what every call carries.

use paywarden::connectors::stripe::{StripeConfig, STRIPE_VERSION};
use paywarden::connectors::{
    Authentication, AuthorizeOutcome, AuthorizeRequest, CaptureOutcome, Connector, ConnectorError, DeclineCode,
    RefundOutcome, RemoteStatus,
};
use paywarden::domain::api_key::Mode;
use paywarden::domain::ids::{PaymentId, RefundId};

use super::fake_stripe::FakeStripe;
use super::{authorize, authorize_payment, card, config_for, eur, stripe_at};

fn approved(outcome: &AuthorizeOutcome) -> String {
    match outcome {
        AuthorizeOutcome::Approved { reference } => reference.clone(),
        other => panic!("expected an approval, got {other:?}"),
    }
}

#[tokio::test]
async fn authorize_capture_refund_and_sync_an_approved_payment() {
    let fake = FakeStripe::start().await;
    let stripe = stripe_at(&fake.base);
    let (payment, outcome) = authorize(&stripe, "4242424242424242", 2000).await;
    let intent = approved(&outcome.unwrap().outcome);
    assert!(intent.starts_with("pi_"));
    assert_eq!(fake.status(&intent), Some("requires_capture"));
    assert_eq!(
        stripe.sync(&payment).await,
        Ok(RemoteStatus::Authorized {
            reference: intent.clone()
        })
    );

    assert_eq!(stripe.capture(&intent, eur(2000)).await, Ok(CaptureOutcome::Captured));
    assert_eq!(fake.calls_to("/capture")[0].param("amount_to_capture"), Some("2000"));
    assert_eq!(
        stripe.sync(&payment).await,
        Ok(RemoteStatus::Captured {
            reference: intent.clone(),
            amount: 2000
        })
    );

    let refund = RefundId::generate().unwrap();
    let RefundOutcome::Succeeded { reference } = stripe.refund(&intent, &refund, eur(500)).await.unwrap() else {
        panic!("refund failed")
    };
    assert!(reference.starts_with("re_"));
    let call = &fake.calls_to("/v1/refunds")[0];
    assert_eq!(call.param("payment_intent"), Some(intent.as_str()));
    assert_eq!(call.param("amount"), Some("500"));
    assert_eq!(call.param("metadata[paywarden_refund]"), Some(refund.as_str()));
    // More than what remains is refused by Stripe: a failed refund.
    let again = RefundId::generate().unwrap();
    assert_eq!(
        stripe.refund(&intent, &again, eur(1600)).await,
        Ok(RefundOutcome::Failed {
            code: DeclineCode::RefundFailed
        })
    );
    let applied = fake.applied();
    assert_eq!((applied.confirms, applied.captures, applied.refunds), (1, 1, 1));
}

#[tokio::test]
async fn every_call_carries_the_key_the_pinned_version_and_a_derived_idempotency_key() {
    let fake = FakeStripe::start().await;
    let stripe = stripe_at(&fake.base);
    let (payment, outcome) = authorize(&stripe, "4242424242424242", 1500).await;
    let intent = approved(&outcome.unwrap().outcome);
    stripe.capture(&intent, eur(1500)).await.unwrap();
    let calls = fake.calls();
    assert_eq!(calls.len(), 4, "payment method, intent, confirm, capture");
    for call in &calls {
        assert_eq!(call.stripe_version.as_deref(), Some(STRIPE_VERSION));
        assert_eq!(call.authorization.as_deref(), Some("Bearer sk_test_paywarden_fake"));
        assert_eq!(call.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
        assert!(!call.replayed);
    }
    let keys: Vec<String> = calls.iter().map(|c| c.idempotency_key.clone().unwrap()).collect();
    assert_eq!(
        keys,
        [
            format!("paywarden-{payment}-payment_method"),
            format!("paywarden-{payment}-intent"),
            format!("paywarden-{payment}-confirm"),
            format!("paywarden-{intent}-capture"),
        ]
    );
    let method = &calls[0];
    assert_eq!(method.param("card[number]"), Some("4242424242424242"));
    assert_eq!(method.param("card[exp_month]"), Some("12"));
    assert_eq!(method.param("card[exp_year]"), Some("2030"));
    assert_eq!(method.param("card[cvc]"), Some("123"));
    let create = &calls[1];
    assert_eq!(create.param("capture_method"), Some("manual"));
    assert_eq!(create.param("payment_method_types[]"), Some("card"));
    assert_eq!(create.param("metadata[paywarden_payment]"), Some(payment.as_str()));
    assert_eq!(create.param("currency"), Some("eur"));
    // Only the PaymentMethod call carries the card.
    for call in &calls[1..] {
        assert!(!String::from_utf8_lossy(&call.body).contains("4242424242424242"));
    }
}

#[tokio::test]
async fn the_same_authorization_again_is_replayed_by_stripe_not_repeated() {
    let fake = FakeStripe::start().await;
    let stripe = stripe_at(&fake.base);
    let (payment, first) = authorize(&stripe, "4242424242424242", 900).await;
    let first = approved(&first.unwrap().outcome);
    // Another connector (as after a restart): nothing remembered locally.
    let restarted = stripe_at(&fake.base);
    let second = authorize_payment(&restarted, &payment, "4242424242424242", 900, None).await;
    assert_eq!(approved(&second.unwrap().outcome), first);
    assert_eq!(fake.applied().confirms, 1);
    assert!(fake.calls().iter().skip(3).all(|c| c.replayed));
}

#[tokio::test]
async fn partial_capture_and_void() {
    let fake = FakeStripe::start().await;
    let stripe = stripe_at(&fake.base);
    let (payment, outcome) = authorize(&stripe, "4242424242424242", 2000).await;
    let intent = approved(&outcome.unwrap().outcome);
    assert_eq!(stripe.capture(&intent, eur(1500)).await, Ok(CaptureOutcome::Captured));
    assert_eq!(
        stripe.sync(&payment).await,
        Ok(RemoteStatus::Captured {
            reference: intent,
            amount: 1500
        })
    );

    let (payment, outcome) = authorize(&stripe, "4242424242424242", 700).await;
    let intent = approved(&outcome.unwrap().outcome);
    assert_eq!(stripe.void(&intent).await, Ok(()));
    assert_eq!(fake.status(&intent), Some("canceled"));
    assert_eq!(stripe.sync(&payment).await, Ok(RemoteStatus::Voided));
    // A voided authorization cannot be captured.
    assert!(stripe.capture(&intent, eur(700)).await.is_err());
    assert_eq!(fake.applied().captures, 1);
}

#[tokio::test]
async fn declines_map_onto_our_codes_with_the_intent_as_reference() {
    let fake = FakeStripe::start().await;
    let stripe = stripe_at(&fake.base);
    for (number, expected) in [
        ("4000000000000002", DeclineCode::GenericDecline),
        ("4000000000009995", DeclineCode::InsufficientFunds),
        ("4000000000009987", DeclineCode::GenericDecline), // lost_card: not told
        ("4000000000000069", DeclineCode::ExpiredCard),
        ("4000000000000127", DeclineCode::IncorrectCvc),
        ("4000000000000119", DeclineCode::ProcessingError),
    ] {
        let (payment, outcome) = authorize(&stripe, number, 1000).await;
        match outcome.unwrap().outcome {
            AuthorizeOutcome::Declined { code, reference } => {
                assert_eq!(code, expected, "{number}");
                let reference = reference.expect("the declined intent");
                assert_eq!(fake.status(&reference), Some("requires_payment_method"));
            }
            other => panic!("{number}: expected a decline, got {other:?}"),
        }
        assert_eq!(stripe.sync(&payment).await, Ok(RemoteStatus::NotFound));
    }
}

#[tokio::test]
async fn three_d_secure_is_a_challenge_then_the_answer_decides() {
    let fake = FakeStripe::start().await;
    let stripe = paywarden::connectors::stripe::Stripe::new(StripeConfig {
        return_url: Some("https://gateway.example/v1/stripe/return".into()),
        ..config_for(&fake.base)
    })
    .unwrap();
    for success in [true, false] {
        let (payment, outcome) = authorize(&stripe, "4000002760003184", 5000).await;
        let outcome = outcome.unwrap();
        let AuthorizeOutcome::ChallengeRequired { reference } = outcome.outcome else {
            panic!("a challenge")
        };
        assert!(outcome
            .redirect_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://hooks.stripe.com/3d_secure_2/")));
        assert_eq!(
            fake.calls_to("/confirm").last().unwrap().param("return_url"),
            Some("https://gateway.example/v1/stripe/return")
        );
        assert_eq!(stripe.sync(&payment).await, Ok(RemoteStatus::NotFound));
        fake.complete_challenge(&reference, success);
        let authentication = Authentication {
            reference: reference.clone(),
        };
        let after = authorize_payment(&stripe, &payment, "4000002760003184", 5000, Some(&authentication))
            .await
            .unwrap()
            .outcome;
        if success {
            assert_eq!(after, AuthorizeOutcome::Approved { reference });
        } else {
            assert_eq!(
                after,
                AuthorizeOutcome::Declined {
                    code: DeclineCode::AuthenticationFailed,
                    reference: Some(reference)
                }
            );
        }
    }
    // Without a return URL Stripe asks for Stripe.js (`use_stripe_sdk`):
    // still a challenge, with no redirect to offer.
    let plain = stripe_at(&fake.base);
    let (_, outcome) = authorize(&plain, "4000002760003184", 5000).await;
    let outcome = outcome.unwrap();
    assert!(matches!(outcome.outcome, AuthorizeOutcome::ChallengeRequired { .. }));
    assert_eq!(outcome.redirect_url, None);
}

#[tokio::test]
async fn an_account_without_raw_card_data_access_is_a_configuration_error_naming_the_fix() {
    let fake = FakeStripe::start().await;
    fake.refuse_raw_card_data();
    let stripe = stripe_at(&fake.base);
    let (_, outcome) = authorize(&stripe, "4242424242424242", 1000).await;
    let Err(ConnectorError::Configuration(text)) = outcome else {
        panic!("a configuration error, got {outcome:?}")
    };
    assert!(text.contains("raw card data") && text.contains("enable"), "{text}");
    assert!(!text.contains("4242") && !text.contains("generally unsafe"), "{text}");
    assert_eq!(fake.applied().intents, 0, "no intent is created");
}

#[tokio::test]
async fn a_wrong_key_is_a_configuration_error_and_a_payment_of_the_other_mode_is_refused() {
    let fake = FakeStripe::start().await;
    // The fake's account has one key; another is refused as Stripe refuses
    // a revoked or mistyped key.
    let wrong = paywarden::connectors::stripe::Stripe::new(StripeConfig {
        secret_key: secrecy::SecretString::from("sk_test_revoked"),
        ..config_for(&fake.base)
    })
    .unwrap();
    let (_, outcome) = authorize(&wrong, "4242424242424242", 1000).await;
    assert!(matches!(outcome, Err(ConnectorError::Configuration(text)) if text.contains("401")));

    let stripe = stripe_at(&fake.base);
    let payment = PaymentId::generate().unwrap();
    let card = card("4242424242424242");
    let live = stripe
        .authorize(AuthorizeRequest {
            payment: &payment,
            mode: Mode::Live,
            money: eur(1000),
            card: &card,
            authentication: None,
            customer_ip: None,
            capture_at_once: false,
        })
        .await;
    assert_eq!(live, Err(ConnectorError::ModeNotSupported("live")));
    assert_eq!(fake.calls().len(), 1, "only the refused key's call reached Stripe");
}
