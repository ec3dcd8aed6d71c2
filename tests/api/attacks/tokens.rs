//! Attacks on the vault's endpoints: injection in every field of a card and
//! in the `{id}` of show, delete and reveal; privileged fields smuggled into a
//! tokenization. A cardholder name is free text: stored and revealed
//! verbatim. Everything else is a clean 4xx, and the existing token is
//! untouched.

use paywarden::domain::api_key::KeyKind;
use paywarden::domain::permission::Permission;
use serde_json::{json, Value};

use super::{assert_api_error, assert_intact, assert_not_echoed, enc, Rows, SQLI, XSS};
use crate::both_backends;
use crate::payments::token;
use crate::support::TestApp;

fn card() -> Value {
    json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123", "name": "Ada Lovelace"}})
}

async fn post(app: &TestApp, path: &str, key: &str, body: &Value) -> (u16, String) {
    let r = app.post(path, key, body).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn send(app: &TestApp, method: reqwest::Method, path: &str, key: &str) -> (u16, String) {
    let r = app
        .client()
        .request(method, app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// A clean 400 with `code`, naming `param`.
fn refused(status: u16, text: &str, code: &str, param: &str, case: &str) {
    let e = assert_api_error(status, text, case);
    assert_eq!(status, 400, "{case}: {text}");
    assert_eq!(
        (e["error"]["code"].as_str(), e["error"]["param"].as_str()),
        (Some(code), Some(param)),
        "{case}: {text}"
    );
}

/// The target's token as the API shows it, and its revealed number.
async fn token_state(app: &TestApp, sk: &str, revealer: &str, id: &str) -> (Value, Value) {
    let shown: Value = app.get(&format!("/v1/tokens/{id}"), sk).await.json().await.unwrap();
    let r = app.post(&format!("/v1/tokens/{id}/reveal"), revealer, &json!({})).await;
    assert_eq!(r.status(), 200);
    let revealed: Value = r.json().await.unwrap();
    (shown, revealed["card"].clone())
}

both_backends! {
    async fn sql_injection_in_card_fields_and_token_ids_is_refused_or_stored_as_text(app) {
        let (merchant, sk) = app.merchant_with_secret("Vault").await;
        let revealer = app.key(&merchant, KeyKind::Restricted, &[Permission::TokensReveal]).await;
        let revealer = revealer.secret.expose().to_owned();
        let existing = token(app, &sk, "4242424242424242").await;
        let state_before = token_state(app, &sk, &revealer, &existing).await;
        let before = Rows::snapshot(app).await;
        let mut created = 0;
        for payload in SQLI {
            // Fields with a grammar refuse it, naming the field, never echoing it.
            for (field, code) in [
                ("number", "incorrect_number"),
                ("cvc", "invalid_cvc"),
                ("exp_month", "parameter_invalid"),
                ("exp_year", "parameter_invalid"),
            ] {
                let mut body = card();
                body["card"][field] = json!(payload);
                let (status, text) = post(app, "/v1/tokens", &sk, &body).await;
                let case = format!("card[{field}]: {payload}");
                refused(status, &text, code, &format!("card[{field}]"), &case);
                assert_not_echoed(&serde_json::from_str(&text).unwrap(), payload, &case);
            }
            // As a field name: an unknown parameter, not named back.
            let mut body = card();
            body[*payload] = json!("x");
            let (status, text) = post(app, "/v1/tokens", &sk, &body).await;
            refused(status, &text, "parameter_unknown", "body", payload);
            let mut body = card();
            body["card"][*payload] = json!("x");
            let (status, text) = post(app, "/v1/tokens", &sk, &body).await;
            refused(status, &text, "parameter_unknown", "body", payload);
            // A cardholder name is free text: stored as it came, revealed verbatim.
            let mut body = card();
            body["card"]["name"] = json!(payload);
            let (status, text) = post(app, "/v1/tokens", &sk, &body).await;
            assert_eq!(status, 200, "name {payload}: {text}");
            created += 1;
            let id = serde_json::from_str::<Value>(&text).unwrap()["id"].as_str().unwrap().to_owned();
            let r = app.post(&format!("/v1/tokens/{id}/reveal"), &revealer, &json!({})).await;
            assert_eq!(r.status(), 200);
            let revealed: Value = r.json().await.unwrap();
            assert_eq!(revealed["card"]["name"].as_str(), Some(*payload));
            assert_eq!(revealed["card"]["number"], "4242424242424242");
        }
        // In the `{id}` (alone, or after a real id): no such token. The
        // reveal key gets past the permission check to the id.
        for payload in SQLI.iter().chain(XSS) {
            for id in [enc(payload), format!("{existing}{}", enc(payload))] {
                for (method, path, key) in [
                    (reqwest::Method::GET, format!("/v1/tokens/{id}"), &sk),
                    (reqwest::Method::DELETE, format!("/v1/tokens/{id}"), &sk),
                    (reqwest::Method::POST, format!("/v1/tokens/{id}/reveal"), &revealer),
                ] {
                    let case = format!("{method} {path}");
                    let (status, text) = send(app, method, &path, key).await;
                    let e = assert_api_error(status, &text, &case);
                    assert_eq!((status, e["error"]["code"].as_str()), (404, Some("resource_missing")), "{case}: {text}");
                    assert!(!text.contains(existing.as_str()), "{case}: {text}");
                }
            }
        }
        assert_eq!(token_state(app, &sk, &revealer, &existing).await, state_before, "the existing token is untouched");
        assert_intact(app, before, |r| r.card_tokens += created).await;
    }

    async fn mass_assignment_on_tokens_is_an_unknown_field(app) {
        let (merchant, sk) = app.merchant_with_secret("Vault").await;
        let revealer = app.key(&merchant, KeyKind::Restricted, &[Permission::TokensReveal]).await;
        let revealer = revealer.secret.expose().to_owned();
        let (other_merchant, _) = app.merchant_with_secret("Other").await;
        let existing = token(app, &sk, "4242424242424242").await;
        let state_before = token_state(app, &sk, &revealer, &existing).await;
        let fingerprint = state_before.0["card"]["fingerprint"].clone();
        let before = Rows::snapshot(app).await;
        let forged = [
            ("id", json!(existing)),
            ("object", json!("token")),
            ("merchant", json!(other_merchant.to_string())),
            ("merchant_id", json!(other_merchant.to_string())),
            ("livemode", json!(true)),
            ("created", json!(0)),
            ("fingerprint", fingerprint.clone()),
            ("status", json!("active")),
            ("deleted", json!(false)),
            ("kek_version", json!(1)),
        ];
        for (field, value) in &forged {
            let mut body = card();
            body[*field] = value.clone();
            let (status, text) = post(app, "/v1/tokens", &sk, &body).await;
            refused(status, &text, "parameter_unknown", field, &format!("top-level {field}"));
        }
        let card_forged = [
            ("fingerprint", fingerprint.clone()),
            ("brand", json!("amex")),
            ("bin", json!("378282")),
            ("last4", json!("0005")),
            ("id", json!(existing)),
            ("merchant_id", json!(other_merchant.to_string())),
            ("created", json!(0)),
            ("secret", json!("x")),
            ("ciphertext", json!("AAAA")),
        ];
        for (field, value) in &card_forged {
            let mut body = card();
            body["card"][*field] = value.clone();
            let (status, text) = post(app, "/v1/tokens", &sk, &body).await;
            refused(status, &text, "parameter_unknown", &format!("card[{field}]"), &format!("card[{field}]"));
        }
        assert_eq!(token_state(app, &sk, &revealer, &existing).await, state_before, "the existing token is untouched");
        assert_intact(app, before, |_| {}).await;
    }
}
