//! Strong Customer Authentication through the API, on both backends: the
//! decision on every confirm and its exemptions with the card's counters in
//! the database (`exemptions`, `counters`), every 3-D Secure status of the
//! sandbox's simulated ACS (`outcomes`), and its challenge page: one-time
//! code, attempts, fail, abandon, and who may answer (`challenge`).
//!
//! Each test runs a gateway whose SCA settings are those of [`policy`]: the
//! acquirer in Germany, USD at 0.92 and JPY at 0.0062 EUR, and the fraud
//! rate the test gives its merchant.

mod browser;
mod challenge;
mod counters;
mod exemptions;
mod metrics;
mod outcomes;

use std::collections::HashMap;

use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::country::CountryCode;
use paywarden::domain::ids::MerchantId;
use paywarden::domain::money::Currency;
use paywarden::domain::sca::{EurRate, FraudRate, OnUnavailable, RateTable};
use paywarden::services::payments::{PaymentPolicy, ScaPolicy};
use serde_json::{json, Value};

use crate::support::{new_key, test_payment_policy, Replica, TestApp};

/// Issuer DE, 3-D Secure `Y` frictionless (Visa).
pub const DE_Y: &str = "4000002760000016";
/// Issuer DE, `Y` (Mastercard).
pub const DE_Y_MC: &str = "5555002760000004";
/// Issuer DE, `A` attempts.
pub const DE_A: &str = "4000002760000107";
/// Issuer DE, `N`.
pub const DE_N: &str = "4000002760000206";
/// Issuer DE, `U`.
pub const DE_U: &str = "4000002760000305";
/// Issuer DE, `R`.
pub const DE_R: &str = "4000002760000404";
/// Issuer DE, `D` (decoupled: the challenge page).
pub const DE_D: &str = "4000002760000503";
/// Issuer DE, `C` challenge.
pub const DE_C: &str = "4000002760003184";
/// Issuer US, `Y`.
pub const US_Y: &str = "4000008400000001";

/// The SCA settings of the tests' gateways.
pub fn policy(fraud_rates: &[(&MerchantId, &str)], on_unavailable: OnUnavailable) -> PaymentPolicy {
    let rates = RateTable::new()
        .with(Currency::parse("usd").unwrap(), EurRate::parse("0.92").unwrap())
        .with(Currency::parse("jpy").unwrap(), EurRate::parse("0.0062").unwrap());
    let merchant_fraud_rates: HashMap<String, FraudRate> = fraud_rates
        .iter()
        .map(|(m, r)| (m.as_str().to_owned(), FraudRate::parse_percent(r).unwrap()))
        .collect();
    PaymentPolicy {
        sca: ScaPolicy {
            rates,
            acquirer_country: Some(CountryCode::parse("DE").unwrap()),
            fraud_rate: None,
            merchant_fraud_rates,
            on_unavailable,
        },
        ..test_payment_policy()
    }
}

/// A merchant with a test secret key, on a gateway with [`policy`].
pub struct Shop {
    pub gateway: Replica,
    pub merchant: MerchantId,
    pub sk: String,
}

impl Shop {
    /// A shop whose merchant's fraud rate is `fraud_rate` (`None`: no TRA).
    pub async fn open(app: &TestApp, fraud_rate: Option<&str>, on_unavailable: OnUnavailable) -> Shop {
        let merchant = app.merchant("SCA shop").await;
        let sk = secret_key(app, &merchant, Mode::Test).await;
        let rates: Vec<(&MerchantId, &str)> = fraud_rate.iter().map(|r| (&merchant, *r)).collect();
        let gateway = app.spawn_replica_with_payments(policy(&rates, on_unavailable)).await;
        Shop { gateway, merchant, sk }
    }

    pub async fn token(&self, number: &str) -> String {
        let r = self
            .gateway
            .post(
                "/v1/tokens",
                &self.sk,
                &json!({"card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}),
            )
            .await;
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    /// `POST /v1/payments` confirming at once, with `extra` fields merged in.
    pub async fn try_pay(&self, number: &str, amount: i64, currency: &str, extra: Value) -> reqwest::Response {
        let token = self.token(number).await;
        let mut body = json!({"amount": amount, "currency": currency, "payment_method": token, "confirm": true,
                              "return_url": "https://shop.example/done"});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                body.insert(k.clone(), v.clone());
            }
        }
        self.gateway.post("/v1/payments", &self.sk, &body).await
    }

    /// A payment confirmed at once; asserts 200.
    pub async fn pay(&self, number: &str, amount: i64, currency: &str, extra: Value) -> Value {
        let r = self.try_pay(number, amount, currency, extra).await;
        let status = r.status();
        let p: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{p}");
        p
    }

    /// A EUR payment on `number`, automatic.
    pub async fn pay_eur(&self, number: &str, cents: i64) -> Value {
        self.pay(number, cents, "eur", json!({})).await
    }

    pub async fn get(&self, id: &str) -> Value {
        let r = self.gateway.get(&format!("/v1/payments/{id}"), &self.sk).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn stop(mut self) {
        self.gateway.stop().await;
    }
}

/// A secret key of `merchant` in `mode`.
pub async fn secret_key(app: &TestApp, merchant: &MerchantId, mode: Mode) -> String {
    let mut new = new_key(merchant, KeyKind::Secret, &[]);
    new.mode = mode;
    app.issue(new).await.secret.expose().to_owned()
}

/// The payment's SCA decision and exemption, e.g. `("exempt", "low_value")`.
pub fn decision(p: &Value) -> (String, String) {
    (
        p["sca"]["decision"].as_str().unwrap_or("none").to_owned(),
        p["sca"]["exemption"].as_str().unwrap_or("none").to_owned(),
    )
}

/// The challenge secret of a payment waiting in `requires_action`.
pub fn challenge_secret(p: &Value) -> String {
    let url = p["next_action"]["url"].as_str().unwrap();
    url.split("challenge=").nth(1).unwrap().to_owned()
}

/// The form body that answers the challenge page at `page_url` as the
/// customer would: its secret and the one-time code the page shows.
pub async fn approving_form(client: &reqwest::Client, page_url: &str) -> String {
    let html = client.get(page_url).send().await.unwrap().text().await.unwrap();
    let marker = "<strong id=\"otp\">";
    let start = html.find(marker).expect("the page shows the code in test mode") + marker.len();
    let code = &html[start..start + 6];
    let secret = page_url.split("challenge=").nth(1).unwrap();
    format!("challenge={secret}&decision=submit&code={code}")
}
