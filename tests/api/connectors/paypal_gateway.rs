//! Payments through the whole gateway to a merchant's PayPal connection and
//! the fake PayPal (real TLS both ways, real database): the connection is
//! made with `POST /v1/connectors` (its client secret in no answer, audit
//! entry or column in clear; refusals named by field), a payment is
//! authorized, partly captured and refunded at PayPal once each, automatic
//! capture captures once, an authorization whose answer was lost ends
//! authorized through `sync`, and an account not enabled for cards fails the
//! payment as `connector_configuration` with nothing of PayPal's answer.

use std::time::Duration;

use paywarden::connectors::Connectors;
use paywarden::domain::ids::MerchantId;
use serde_json::{json, Value};

use super::fake_paypal::ledger::{CLIENT_ID, CLIENT_SECRET};
use super::fake_paypal::{json_of as body_of, Damage, FakePaypal, Fault};
use super::paypal_support::settings;
use crate::both_backends;
use crate::support::{Replica, TestApp};

/// The characters of the client secret that must appear nowhere.
const SECRET_BODY: &str = "fakePaypalClientSecret";

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// A gateway reaching `fake` for PayPal, and a test-mode merchant's secret
/// key whose default connector is its new PayPal connection.
async fn shop(app: &TestApp, fake: &FakePaypal) -> (Replica, String, Value, MerchantId) {
    let gateway = app
        .spawn_replica_routing(app.vault(), Connectors::builtin().with_paypal(settings(&fake.base)))
        .await;
    let (merchant, sk) = app.merchant_with_secret("PayPal shop").await;
    let (status, conn) = json_of(
        gateway
            .post(
                "/v1/connectors",
                &sk,
                &json!({"type": "paypal", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "default": true}),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{conn}");
    (gateway, sk, conn, merchant)
}

async fn pay(gateway: &Replica, sk: &str, amount: i64, capture_method: &str) -> Value {
    let token: Value = gateway
        .post(
            "/v1/tokens",
            sk,
            &json!({"card": {"number": "4111111111111111", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let body = json!({"amount": amount, "currency": "eur", "payment_method": token["id"], "confirm": true,
                      "capture_method": capture_method});
    let r = gateway.post("/v1/payments", sk, &body).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

both_backends! {
    async fn a_paypal_connection_takes_a_payment_captured_in_part_and_refunded_once_each(app) {
        let fake = FakePaypal::start().await;
        let (mut gateway, sk, conn, merchant) = shop(app, &fake).await;
        assert_eq!((conn["type"].as_str(), conn["default"].as_bool()), (Some("paypal"), Some(true)), "{conn}");
        assert_eq!(conn["secret_key_last4"], &CLIENT_SECRET[CLIENT_SECRET.len() - 4..]);
        assert_eq!(conn["webhook_secret_configured"], false);
        let payment = pay(&gateway, &sk, 2500, "manual").await;
        assert_eq!(payment["status"], "requires_capture", "{payment}");
        let id = payment["id"].as_str().unwrap().to_owned();
        let r = gateway.post(&format!("/v1/payments/{id}/capture"), &sk, &json!({"amount_to_capture": 2000})).await;
        let (status, captured) = json_of(r).await;
        assert_eq!((status, captured["status"].as_str()), (200, Some("succeeded")), "{captured}");
        let r = gateway.post("/v1/refunds", &sk, &json!({"payment": id, "amount": 500})).await;
        let (status, refund) = json_of(r).await;
        assert_eq!((status, refund["status"].as_str()), (200, Some("succeeded")), "{refund}");
        let applied = fake.applied();
        assert_eq!((applied.tokens, applied.authorizations, applied.captures, applied.refunds), (1, 1, 1, 1));
        assert_eq!(
            body_of(&fake.calls_to("/capture")[0])["amount"],
            json!({"currency_code": "EUR", "value": "20.00"})
        );

        // The secret is in no answer, audit entry or column in clear.
        let conn_id = conn["id"].as_str().unwrap();
        let (_, shown) = json_of(gateway.get(&format!("/v1/connectors/{conn_id}"), &sk).await).await;
        let listed = app.cli_json(&["connectors", "list", "--merchant", merchant.as_str()]);
        assert_eq!((listed["data"][0]["id"].as_str(), listed["data"][0]["type"].as_str()), (Some(conn_id), Some("paypal")), "{listed}");
        let text = String::from_utf8(app.cli(&["connectors", "list", "--merchant", merchant.as_str()]).stdout).unwrap();
        assert!(text.contains(conn_id) && text.contains("paypal"), "{text}");
        for text in [conn.to_string(), shown.to_string(), listed.to_string(), text, payment.to_string(), captured.to_string()] {
            assert!(!text.contains(SECRET_BODY) && !text.contains(CLIENT_ID), "{text}");
        }
        let trail: Vec<String> = sqlx::query_scalar("SELECT action || ' ' || COALESCE(reason, '') FROM audit_log")
            .fetch_all(app.store.reader()).await.unwrap();
        let trail = trail.join("\n");
        assert!(trail.contains("connector.created") && trail.contains("type paypal"), "{trail}");
        assert!(!trail.contains(SECRET_BODY) && !trail.contains(CLIENT_ID), "{trail}");
        let row: String = sqlx::query_scalar(
            "SELECT kind || ' ' || secret_key_last4 || ' ' || wrapped_dek || ' ' || ciphertext FROM processor_connections WHERE id = $1",
        ).bind(conn_id).fetch_one(app.store.reader()).await.unwrap();
        assert!(row.starts_with("paypal ") && !row.contains(SECRET_BODY) && !row.contains(CLIENT_ID), "{row}");
        gateway.stop().await;
    }

    async fn automatic_capture_captures_once_in_the_authorizing_call(app) {
        let fake = FakePaypal::start().await;
        let (mut gateway, sk, _, _) = shop(app, &fake).await;
        let payment = pay(&gateway, &sk, 1200, "automatic").await;
        assert_eq!(payment["status"], "succeeded", "{payment}");
        assert_eq!(payment["amount_received"], 1200, "{payment}");
        assert_eq!(body_of(&fake.calls_to("/v2/checkout/orders")[0])["intent"], "CAPTURE");
        assert_eq!(fake.applied().captures, 1);
        assert!(fake.calls().iter().all(|c| !c.path.starts_with("/v2/payments/")), "no second capture");
        gateway.stop().await;
    }

    async fn an_authorization_whose_answer_is_lost_ends_authorized_through_sync_and_is_captured_once(app) {
        let fake = FakePaypal::start().await;
        let (mut gateway, sk, _, _) = shop(app, &fake).await;
        fake.inject("/authorize", Fault::Processed(Damage::Delay(Duration::from_secs(4))));
        let payment = pay(&gateway, &sk, 1500, "manual").await;
        assert_eq!(payment["status"], "requires_capture", "{payment}");
        assert!(
            fake.calls().iter().any(|c| c.method == "GET" && c.path.starts_with("/v2/checkout/orders/")),
            "the gateway asked PayPal after the timeout"
        );
        let id = payment["id"].as_str().unwrap();
        let (status, captured) = json_of(gateway.post(&format!("/v1/payments/{id}/capture"), &sk, &json!({})).await).await;
        assert_eq!((status, captured["status"].as_str()), (200, Some("succeeded")), "{captured}");
        // A second capture is refused by the gateway and never reaches PayPal.
        let r = gateway.post(&format!("/v1/payments/{id}/capture"), &sk, &json!({})).await;
        assert_eq!(r.status(), 409);
        assert_eq!((fake.applied().authorizations, fake.applied().captures), (1, 1));
        gateway.stop().await;
    }

    async fn an_account_not_enabled_for_cards_fails_the_payment_as_configuration_and_says_nothing_of_paypal(app) {
        let fake = FakePaypal::start().await;
        fake.disable_cards();
        let (mut gateway, sk, _, _) = shop(app, &fake).await;
        let payment = pay(&gateway, &sk, 1000, "manual").await;
        assert_eq!(payment["status"], "failed", "{payment}");
        assert_eq!(payment["decline_code"], "connector_configuration", "{payment}");
        let text = payment.to_string();
        for leaked in ["PAYEE_NOT_ENABLED", "PayPal writes", "4111111111111111", SECRET_BODY] {
            assert!(!text.contains(leaked), "{leaked} in {text}");
        }
        gateway.stop().await;
    }

    async fn paypal_credentials_are_refused_by_field_and_weaker_keys_connect_nothing(app) {
        let (_, sk) = app.merchant_with_secret("PayPal refusals").await;
        let cases = [
            (json!({"type": "paypal", "client_id": CLIENT_ID}), "client_secret", "parameter_missing"),
            (json!({"type": "paypal", "client_secret": CLIENT_SECRET}), "client_id", "parameter_missing"),
            (json!({"type": "paypal", "client_id": CLIENT_ID, "client_secret": "EfakePaypal\nClientSecret0123"}), "client_secret", "parameter_invalid"),
            (json!({"type": "paypal", "client_id": "short", "client_secret": CLIENT_SECRET}), "client_id", "parameter_invalid"),
            (json!({"type": "paypal", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "webhook_id": "lower-case"}), "webhook_id", "parameter_invalid"),
            (json!({"type": "paypal", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "webhook_secret": "whsec_abcdefghijkl"}), "webhook_secret", "parameter_unknown"),
            (json!({"type": "stripe", "secret_key": "sk_test_51Abcdefghijkl", "client_secret": CLIENT_SECRET}), "client_secret", "parameter_unknown"),
        ];
        for (body, param, code) in cases {
            let (status, e) = json_of(app.post("/v1/connectors", &sk, &body).await).await;
            assert_eq!(status, 400, "{body}: {e}");
            assert_eq!((e["error"]["param"].as_str(), e["error"]["code"].as_str()), (Some(param), Some(code)), "{body}: {e}");
            assert!(!e.to_string().contains(SECRET_BODY), "{e}");
        }
        let (status, conn) = json_of(app.post("/v1/connectors", &sk, &json!({
            "type": "paypal", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "webhook_id": "9XL90610J3647323C"
        })).await).await;
        assert_eq!(status, 200, "{conn}");
        assert_eq!((conn["webhook_secret_configured"].as_bool(), conn["default"].as_bool()), (Some(true), Some(false)));
    }
}
