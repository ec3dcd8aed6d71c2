//! The PayPal connector's test helpers: a connector for the fake PayPal
//! (trusting the test CA, calls cut after 2 s), and an authorization of a
//! test card for a new payment.

use std::time::Duration;

use paywarden::connectors::http::HttpSettings;
use paywarden::connectors::paypal::{Paypal, PaypalConfig};
use paywarden::connectors::{AuthorizeOutcome, AuthorizeRequest, Connector, ConnectorError, PaypalSettings};
use paywarden::domain::api_key::Mode;
use paywarden::domain::ids::PaymentId;
use paywarden::domain::money::{Currency, MinorUnits, Money};
use secrecy::SecretString;

use super::card;
use super::fake_paypal::ledger::{CLIENT_ID, CLIENT_SECRET};
use super::fake_stripe::FakeStripe;

fn http() -> HttpSettings {
    HttpSettings {
        extra_root_ca_pem: Some(FakeStripe::ca_pem()),
        request_timeout: Duration::from_secs(2),
        ..HttpSettings::default()
    }
}

pub fn config_for(base: &str) -> PaypalConfig {
    PaypalConfig {
        base_url: base.to_owned(),
        http: http(),
        ..PaypalConfig::new(CLIENT_ID.into(), SecretString::from(CLIENT_SECRET), Mode::Test)
    }
}

pub fn paypal_at(base: &str) -> Paypal {
    Paypal::new(config_for(base)).unwrap()
}

/// The gateway's PayPal settings for the fake.
pub fn settings(base: &str) -> PaypalSettings {
    PaypalSettings {
        base_url: Some(base.to_owned()),
        http: http(),
    }
}

pub fn money(amount: i64, currency: &str) -> Money {
    Money {
        amount: MinorUnits::parse(amount, i64::MAX).unwrap(),
        currency: Currency::parse(currency).unwrap(),
    }
}

/// Authorizes (or, `at_once`, captures) `amount` EUR cents on `number` for
/// a new payment.
pub async fn pay(
    paypal: &Paypal,
    number: &str,
    amount: Money,
    at_once: bool,
) -> (PaymentId, Result<AuthorizeOutcome, ConnectorError>) {
    let payment = PaymentId::generate().unwrap();
    let card = card(number);
    let outcome = paypal
        .authorize(AuthorizeRequest {
            payment: &payment,
            mode: Mode::Test,
            money: amount,
            card: &card,
            authentication: None,
            customer_ip: None,
            capture_at_once: at_once,
        })
        .await;
    (payment, outcome)
}

pub async fn authorize(
    paypal: &Paypal,
    number: &str,
    amount: i64,
) -> (PaymentId, Result<AuthorizeOutcome, ConnectorError>) {
    pay(paypal, number, money(amount, "eur"), false).await
}

/// The order id of an approval.
pub fn approved(outcome: Result<AuthorizeOutcome, ConnectorError>) -> String {
    match outcome {
        Ok(AuthorizeOutcome::Approved { reference }) => reference,
        other => panic!("expected an approval, got {other:?}"),
    }
}
