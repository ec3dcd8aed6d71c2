//! Fault injection between the PayPal connector and the fake PayPal: 5xx,
//! 429 with and without `Retry-After`, malformed and truncated JSON, an
//! authorization whose answer comes too late, lost capture and refund
//! answers, a token call that fails, and certificates that must be refused.
//! Each ends in a defined outcome; where PayPal may have acted the outcome is
//! `Timeout` (unknown) and `sync` tells what happened; a retried capture or
//! refund is never done twice.

use std::time::Duration;

use paywarden::connectors::http::HttpSettings;
use paywarden::connectors::paypal::{Paypal, PaypalConfig};
use paywarden::connectors::{CaptureOutcome, Connector, ConnectorError, RefundOutcome, RemoteStatus};
use paywarden::domain::ids::RefundId;

use super::fake_paypal::{rate_limited, request_id, server_error, Damage, FakePaypal, Fault};
use super::fake_stripe::certs::Presented;
use super::paypal_support::{approved, authorize, config_for, money, paypal_at};

#[tokio::test]
async fn a_5xx_on_authorize_is_unknown_and_sync_finds_nothing_authorized() {
    let fake = FakePaypal::start().await;
    let paypal = paypal_at(&fake.base);
    fake.inject("/authorize", server_error(500));
    let (payment, outcome) = authorize(&paypal, "4111111111111111", 2000).await;
    assert_eq!(outcome, Err(ConnectorError::Timeout));
    assert_eq!(paypal.sync(&payment).await, Ok(RemoteStatus::NotFound));
    assert_eq!(fake.applied().authorizations, 0);
    // A 5xx on a read has no effect to wonder about: PayPal is down.
    fake.inject("/v2/checkout/orders/", server_error(503));
    assert!(matches!(
        paypal.sync(&payment).await,
        Err(ConnectorError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_429_is_retried_after_a_short_retry_after_and_not_after_a_long_or_missing_one() {
    let fake = FakePaypal::start().await;
    let paypal = paypal_at(&fake.base);
    fake.inject("/authorize", rate_limited(Some(1)));
    let (_, outcome) = authorize(&paypal, "4111111111111111", 2000).await;
    approved(outcome);
    let calls = fake.calls_to("/authorize");
    assert_eq!(calls.len(), 2, "refused once, then done");
    assert_eq!(
        request_id(&calls[0]),
        request_id(&calls[1]),
        "the retry is the same call"
    );
    for fault in [rate_limited(Some(60)), rate_limited(None)] {
        fake.inject("/authorize", fault);
        let (_, outcome) = authorize(&paypal, "4111111111111111", 2000).await;
        assert!(matches!(outcome, Err(ConnectorError::Unavailable(_))), "{outcome:?}");
    }
    assert_eq!(
        fake.calls_to("/authorize").len(),
        4,
        "no retry without a short Retry-After"
    );
    assert_eq!(fake.applied().authorizations, 1);
}

#[tokio::test]
async fn malformed_truncated_or_late_answers_after_the_authorization_are_unknown_and_sync_finds_it() {
    for damage in [
        Damage::Malformed,
        Damage::Truncated,
        Damage::Delay(Duration::from_secs(4)),
        Damage::SlowBody(Duration::from_secs(4)),
    ] {
        let fake = FakePaypal::start().await;
        let paypal = paypal_at(&fake.base);
        fake.inject("/authorize", Fault::Processed(damage.clone()));
        let (payment, outcome) = authorize(&paypal, "4111111111111111", 2000).await;
        assert_eq!(outcome, Err(ConnectorError::Timeout), "{damage:?}");
        let Ok(RemoteStatus::Authorized { reference }) = paypal.sync(&payment).await else {
            panic!("{damage:?}: the authorization is found")
        };
        // And it is captured once, as any other.
        assert_eq!(
            paypal.capture(&reference, money(2000, "eur")).await,
            Ok(CaptureOutcome::Captured)
        );
        assert_eq!(
            (fake.applied().authorizations, fake.applied().captures),
            (1, 1),
            "{damage:?}"
        );
    }
}

#[tokio::test]
async fn a_capture_or_refund_whose_answer_is_lost_is_done_once_when_retried() {
    let fake = FakePaypal::start().await;
    let paypal = paypal_at(&fake.base);
    let (_, outcome) = authorize(&paypal, "4111111111111111", 2000).await;
    let order = approved(outcome);
    fake.inject("/v2/payments/authorizations/", Fault::Processed(Damage::Reset));
    assert_eq!(
        paypal.capture(&order, money(2000, "eur")).await,
        Err(ConnectorError::Timeout)
    );
    assert_eq!(
        paypal.capture(&order, money(2000, "eur")).await,
        Ok(CaptureOutcome::Captured)
    );
    assert_eq!(fake.applied().captures, 1, "captured once");
    assert_eq!(
        fake.calls_to("/capture").len(),
        1,
        "the retry read the order and found it captured"
    );

    let refund = RefundId::generate().unwrap();
    fake.inject("/refund", Fault::Processed(Damage::Truncated));
    assert_eq!(
        paypal.refund(&order, &refund, money(800, "eur")).await,
        Err(ConnectorError::Timeout)
    );
    assert!(matches!(
        paypal.refund(&order, &refund, money(800, "eur")).await,
        Ok(RefundOutcome::Succeeded { .. })
    ));
    let refunds = fake.calls_to("/refund");
    assert_eq!(refunds.len(), 2);
    assert!(
        !refunds[0].replayed && refunds[1].replayed,
        "PayPal replays the same request id"
    );
    assert_eq!(fake.applied().refunds, 1, "refunded once");
    // A refund whose answer was lost is found by our id, and only ours.
    let Some((found, state)) = paypal.find_refund(&order, &refund).await.unwrap() else {
        panic!("the refund is found")
    };
    assert_eq!(state, paywarden::connectors::RemoteRefund::Succeeded);
    assert_eq!(fake.status(&found), None, "a refund id, not an order or capture");
    assert_eq!(
        paypal.find_refund(&order, &RefundId::generate().unwrap()).await,
        Ok(None)
    );
}

#[tokio::test]
async fn a_failing_token_call_is_an_outage_and_nothing_else_is_sent() {
    let fake = FakePaypal::start().await;
    let paypal = paypal_at(&fake.base);
    fake.inject("/v1/oauth2/token", server_error(503));
    let (_, outcome) = authorize(&paypal, "4111111111111111", 2000).await;
    assert!(matches!(outcome, Err(ConnectorError::Unavailable(_))), "{outcome:?}");
    fake.inject("/v1/oauth2/token", Fault::Processed(Damage::Malformed));
    let (_, outcome) = authorize(&paypal, "4111111111111111", 2000).await;
    assert!(matches!(outcome, Err(ConnectorError::Unavailable(_))), "{outcome:?}");
    assert_eq!(fake.calls().len(), 2, "only the token calls");
    assert_eq!(fake.applied().orders, 0);
}

#[tokio::test]
async fn untrusted_expired_and_wrong_host_certificates_are_refused_before_any_request() {
    for presented in [Presented::Expired, Presented::WrongHost, Presented::UntrustedCa] {
        let fake = FakePaypal::presenting(presented).await;
        let (_, outcome) = authorize(&paypal_at(&fake.base), "4111111111111111", 1000).await;
        match outcome {
            Err(ConnectorError::Unavailable(text)) => assert!(text.contains("certificate"), "{presented:?}: {text}"),
            other => panic!("{presented:?}: expected a refusal, got {other:?}"),
        }
        assert!(fake.calls().is_empty(), "{presented:?}: nothing was sent");
    }
    // A valid certificate from a CA the connector was not told about.
    let fake = FakePaypal::start().await;
    let without_ca = Paypal::new(PaypalConfig {
        http: HttpSettings::default(),
        ..config_for(&fake.base)
    })
    .unwrap();
    let (_, outcome) = authorize(&without_ca, "4111111111111111", 1000).await;
    assert!(
        matches!(outcome, Err(ConnectorError::Unavailable(ref t)) if t.contains("certificate")),
        "{outcome:?}"
    );
    assert!(fake.calls().is_empty());
}
