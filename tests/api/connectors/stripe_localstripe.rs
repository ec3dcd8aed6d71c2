//! The Stripe connector against localstripe, an independent Stripe double
//! (PyPI, GPL: a separate process, started by `scripts/localstripe.sh`),
//! when `LOCALSTRIPE_URL` names one; `REQUIRE_LOCALSTRIPE=1` makes its
//! absence a failure. localstripe serves plain HTTP on 127.0.0.1: the only
//! connector that speaks it is [`Stripe::plain_loopback_for_tests`], which
//! takes nothing but a test key and a loopback IP address.
//!
//! localstripe differs from Stripe where the recipe says
//! (`shared/vendor-specs/localstripe/RECIPE.md`); these tests assert only
//! what both share, and the fake Stripe covers the rest.

use paywarden::connectors::stripe::{Stripe, StripeConfig};
use paywarden::connectors::{
    Authentication, AuthorizeOutcome, CaptureOutcome, Connector, ConnectorError, InboundChange, InboundHeaders,
    RefundOutcome, RemoteStatus,
};
use paywarden::domain::ids::RefundId;
use secrecy::SecretString;
use serde_json::Value;

use super::{authorize, authorize_payment, eur, TEST_KEY};

fn localstripe() -> Option<String> {
    match std::env::var("LOCALSTRIPE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("REQUIRE_LOCALSTRIPE").as_deref() != Ok("1"),
                "REQUIRE_LOCALSTRIPE=1 but LOCALSTRIPE_URL is not set (scripts/localstripe.sh start)"
            );
            eprintln!("skipped: LOCALSTRIPE_URL is not set");
            None
        }
    }
}

fn connector(url: &str) -> Stripe {
    connector_verifying(url, None)
}

fn connector_verifying(url: &str, webhook_secret: Option<&str>) -> Stripe {
    Stripe::plain_loopback_for_tests(StripeConfig {
        base_url: url.to_owned(),
        webhook_secret: webhook_secret.map(SecretString::from),
        ..StripeConfig::new(SecretString::from(TEST_KEY))
    })
    .unwrap()
}

fn approved(outcome: AuthorizeOutcome) -> String {
    match outcome {
        AuthorizeOutcome::Approved { reference } => reference,
        other => panic!("expected an approval, got {other:?}"),
    }
}

#[tokio::test]
async fn authorize_partial_capture_refund_and_cancel() {
    let Some(url) = localstripe() else { return };
    let stripe = connector(&url);
    let (payment, outcome) = authorize(&stripe, "4242424242424242", 2000).await;
    let intent = approved(outcome.unwrap().outcome);
    assert_eq!(
        stripe.sync(&payment).await,
        Ok(RemoteStatus::Authorized {
            reference: intent.clone()
        })
    );
    assert_eq!(stripe.capture(&intent, eur(1500)).await, Ok(CaptureOutcome::Captured));
    assert!(matches!(stripe.sync(&payment).await, Ok(RemoteStatus::Captured { .. })));
    let refund = RefundId::generate().unwrap();
    assert!(matches!(
        stripe.refund(&intent, &refund, eur(500)).await,
        Ok(RefundOutcome::Succeeded { .. })
    ));

    let (payment, outcome) = authorize(&stripe, "4242424242424242", 700).await;
    let intent = approved(outcome.unwrap().outcome);
    assert_eq!(stripe.void(&intent).await, Ok(()));
    assert_eq!(stripe.sync(&payment).await, Ok(RemoteStatus::Voided));
}

#[tokio::test]
async fn a_card_declined_at_charge_time_is_a_decline() {
    let Some(url) = localstripe() else { return };
    let stripe = connector(&url);
    let (payment, outcome) = authorize(&stripe, "4000000000000341", 2000).await;
    assert!(
        matches!(outcome.unwrap().outcome, AuthorizeOutcome::Declined { .. }),
        "declined"
    );
    assert_eq!(stripe.sync(&payment).await, Ok(RemoteStatus::NotFound));
}

#[tokio::test]
async fn three_d_secure_completed_through_authenticate_then_captured() {
    let Some(url) = localstripe() else { return };
    let stripe = connector(&url);
    for success in [true, false] {
        let (payment, outcome) = authorize(&stripe, "4000002760003184", 5000).await;
        let AuthorizeOutcome::ChallengeRequired { reference } = outcome.unwrap().outcome else {
            panic!("a challenge")
        };
        // What localstripe's Stripe.js does when the customer answers.
        let http = reqwest::Client::new();
        let intent: Value = http
            .get(format!("{url}/v1/payment_intents/{reference}"))
            .bearer_auth(TEST_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let secret = intent["client_secret"].as_str().unwrap().to_owned();
        let answered = http
            .post(format!("{url}/v1/payment_intents/{reference}/_authenticate"))
            .bearer_auth(TEST_KEY)
            .form(&[("client_secret", secret.as_str()), ("success", &success.to_string())])
            .send()
            .await
            .unwrap();
        assert_eq!(answered.status(), 200);
        let authentication = Authentication {
            reference: reference.clone(),
        };
        let after = authorize_payment(&stripe, &payment, "4000002760003184", 5000, Some(&authentication))
            .await
            .unwrap()
            .outcome;
        if success {
            assert_eq!(
                after,
                AuthorizeOutcome::Approved {
                    reference: reference.clone()
                }
            );
            assert_eq!(
                stripe.capture(&reference, eur(5000)).await,
                Ok(CaptureOutcome::Captured)
            );
        } else {
            assert!(matches!(after, AuthorizeOutcome::Declined { .. }), "{after:?}");
        }
    }
}

/// localstripe's signed webhooks verify and map: a plain-HTTP receiver on
/// 127.0.0.1 (localstripe delivers to any registered URL, to every
/// receiver, about a second after the event).
#[tokio::test]
async fn localstripes_signed_webhooks_verify_and_a_wrong_secret_does_not() {
    let Some(url) = localstripe() else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}/stripe", listener.local_addr().unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                if let Some(call) = super::fake_stripe::read_call(&mut tcp).await {
                    let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
                    let _ = tx.send(call);
                }
            });
        }
    });
    let secret = format!("whsec_{}", paywarden::domain::random::base62_string(24).unwrap());
    let http = reqwest::Client::new();
    let id = paywarden::domain::random::base62_string(12).unwrap();
    let registered = http
        .post(format!("{url}/_config/webhooks/{id}"))
        .bearer_auth(TEST_KEY)
        .form(&[
            ("url", receiver.as_str()),
            ("secret", secret.as_str()),
            ("events[]", "payment_intent.succeeded"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 200);

    let stripe = connector_verifying(&url, Some(&secret));
    let (_, outcome) = authorize(&stripe, "4242424242424242", 2500).await;
    let intent = approved(outcome.unwrap().outcome);
    assert_eq!(stripe.capture(&intent, eur(2500)).await, Ok(CaptureOutcome::Captured));

    // Other tests' events reach every receiver too: wait for this intent's.
    let delivery = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let call = rx.recv().await.unwrap();
            if String::from_utf8_lossy(&call.body).contains(&intent) {
                return call;
            }
        }
    })
    .await
    .expect("localstripe delivered the event");
    let headers = InboundHeaders::new(delivery.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
    let event = stripe.parse_webhook(&headers, &delivery.body).unwrap();
    assert!(event.processor_event_id.starts_with("evt_"));
    assert!(
        matches!(&event.change, InboundChange::Payment { reference, status: RemoteStatus::Captured { .. }, .. } if *reference == intent),
        "{event:?}"
    );
    let wrong = connector_verifying(&url, Some("whsec_not_the_secret"));
    assert_eq!(
        wrong.parse_webhook(&headers, &delivery.body),
        Err(ConnectorError::InvalidSignature)
    );
    let mut tampered = delivery.body.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(
        stripe.parse_webhook(&headers, &tampered),
        Err(ConnectorError::InvalidSignature)
    );
}
