//! The Stripe connector verifies the processor's certificate: a fake Stripe
//! with an expired certificate, one for another host, one from a CA nobody
//! trusts, or a valid one whose CA the connector was not told about, is
//! refused before any request is sent.

use paywarden::connectors::http::HttpSettings;
use paywarden::connectors::stripe::{Stripe, StripeConfig};
use paywarden::connectors::ConnectorError;

use super::fake_stripe::certs::Presented;
use super::fake_stripe::FakeStripe;
use super::{authorize, config_for, stripe_at};

#[tokio::test]
async fn untrusted_expired_and_wrong_host_certificates_are_refused_before_any_request() {
    for presented in [Presented::Expired, Presented::WrongHost, Presented::UntrustedCa] {
        let fake = FakeStripe::presenting(presented).await;
        let stripe = stripe_at(&fake.base);
        let (_, outcome) = authorize(&stripe, "4242424242424242", 1000).await;
        match outcome {
            Err(ConnectorError::Unavailable(text)) => assert!(text.contains("certificate"), "{presented:?}: {text}"),
            other => panic!("{presented:?}: expected a refusal, got {other:?}"),
        }
        assert!(fake.calls().is_empty(), "{presented:?}: nothing was sent");
    }
}

#[tokio::test]
async fn a_valid_certificate_from_a_ca_not_configured_is_refused_and_accepted_once_configured() {
    let fake = FakeStripe::start().await;
    let without_ca = Stripe::new(StripeConfig {
        http: HttpSettings::default(),
        ..config_for(&fake.base)
    })
    .unwrap();
    let (_, outcome) = authorize(&without_ca, "4242424242424242", 1000).await;
    assert!(
        matches!(outcome, Err(ConnectorError::Unavailable(ref t)) if t.contains("certificate")),
        "{outcome:?}"
    );
    assert!(fake.calls().is_empty());
    let (_, outcome) = authorize(&stripe_at(&fake.base), "4242424242424242", 1000).await;
    assert!(outcome.is_ok());
}
