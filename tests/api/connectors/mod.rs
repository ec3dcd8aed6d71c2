//! Processor connectors against doubles of the processors: the Stripe
//! connector against a spec-shaped fake over verified TLS ([`fake_stripe`]),
//! and against localstripe when one runs (`LOCALSTRIPE_URL`); the PayPal
//! connector against its own fake ([`fake_paypal`], same certificates).

pub mod fake_paypal;
pub mod fake_stripe;
pub mod paypal_support;

mod connections;
mod failover;
mod inbound_webhooks;
mod paypal_connection;
mod paypal_faults;
mod paypal_flows;
mod paypal_gateway;
mod paypal_webhooks;
mod reconciliation;
mod refund_reconciliation;
mod stripe_faults;
mod stripe_flows;
mod stripe_gateway;
mod stripe_localstripe;
mod stripe_spec;
mod stripe_tls;

use std::time::Duration;

use paywarden::connectors::http::HttpSettings;
use paywarden::connectors::stripe::payments::Authorization;
use paywarden::connectors::stripe::{Stripe, StripeConfig};
use paywarden::connectors::{Authentication, AuthorizeRequest, CardDetails, ConnectorError};
use paywarden::connectors::{Connectors, StripeSettings};
use paywarden::domain::api_key::Mode;
use paywarden::domain::card::{CardNumber, Cvc, ExpiryDate};
use paywarden::domain::ids::PaymentId;
use paywarden::domain::money::{Currency, MinorUnits, Money};
use paywarden::services::reconciliation::Settings;
use secrecy::SecretString;
use serde_json::{json, Value};

use self::fake_stripe::FakeStripe;
use crate::support::Replica;

/// The card the gateway tests pay with unless they test a card's outcome.
pub const VISA: &str = "4242424242424242";

/// Tokenizes `number` through `gateway` and creates a manual-capture EUR
/// payment of `amount` with it, confirmed or not: the payment as answered,
/// which must be a 200.
pub async fn pay_with_card(gateway: &Replica, sk: &str, number: &str, amount: i64, confirm: bool) -> Value {
    let card = json!({"card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}});
    let token: Value = gateway.post("/v1/tokens", sk, &card).await.json().await.unwrap();
    let body = json!({"amount": amount, "currency": "eur", "payment_method": token["id"], "confirm": confirm,
                      "capture_method": "manual"});
    let r = gateway.post("/v1/payments", sk, &body).await;
    let status = r.status();
    let payment: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{payment}");
    payment
}

/// The built-in connectors with Stripe at the fake `fake_base` (its CA
/// trusted, calls cut after 2 s).
pub fn stripe_connectors(fake_base: &str) -> Connectors {
    Connectors::builtin().with_stripe(StripeSettings {
        base_url: fake_base.to_owned(),
        http: HttpSettings {
            extra_root_ca_pem: Some(FakeStripe::ca_pem()),
            request_timeout: Duration::from_secs(2),
            ..HttpSettings::default()
        },
    })
}

/// Reconciliation settings for tests: everything at once, the next round
/// an hour later (a test makes it due), alerts at once.
pub const EAGER: Settings = Settings {
    interval: Duration::from_secs(3600),
    min_age: Duration::ZERO,
    backoff: Duration::from_secs(3600),
    horizon: Duration::ZERO,
    batch: 1000,
};

/// The key the tests' Stripe account uses.
pub const TEST_KEY: &str = "sk_test_paywarden_fake";

/// A connector for `base`, trusting the fake's CA, calls cut after 2 s.
pub fn stripe_at(base: &str) -> Stripe {
    Stripe::new(config_for(base)).unwrap()
}

pub fn config_for(base: &str) -> StripeConfig {
    StripeConfig {
        base_url: base.to_owned(),
        http: HttpSettings {
            extra_root_ca_pem: Some(FakeStripe::ca_pem()),
            request_timeout: Duration::from_secs(2),
            ..HttpSettings::default()
        },
        ..StripeConfig::new(SecretString::from(TEST_KEY))
    }
}

pub fn card(number: &str) -> CardDetails {
    let number = CardNumber::parse(number).unwrap();
    let cvc = Cvc::parse("123", number.brand()).unwrap();
    CardDetails {
        number,
        expiry: ExpiryDate::from_stored(12, 2030).unwrap(),
        cvc: Some(cvc),
        name: None,
    }
}

pub fn eur(amount: i64) -> Money {
    Money {
        amount: MinorUnits::parse(amount, i64::MAX).unwrap(),
        currency: Currency::parse("eur").unwrap(),
    }
}

/// Authorizes `amount` on `number` for a new payment.
pub async fn authorize(
    stripe: &Stripe,
    number: &str,
    amount: i64,
) -> (PaymentId, Result<Authorization, ConnectorError>) {
    let payment = PaymentId::generate().unwrap();
    let outcome = authorize_payment(stripe, &payment, number, amount, None).await;
    (payment, outcome)
}

pub async fn authorize_payment(
    stripe: &Stripe,
    payment: &PaymentId,
    number: &str,
    amount: i64,
    authentication: Option<&Authentication>,
) -> Result<Authorization, ConnectorError> {
    let card = card(number);
    stripe
        .authorize_with_action(AuthorizeRequest {
            payment,
            mode: Mode::Test,
            money: eur(amount),
            card: &card,
            authentication,
            customer_ip: None,
            capture_at_once: false,
        })
        .await
}
