//! A PayPal connection's life beyond its payments: KEK rotation re-wraps its
//! sealed client id and secret (the walk covers every kind) and a replica
//! holding only the new KEK still pays through it.

use paywarden::connectors::Connectors;
use paywarden::vault::{KekVersion, StaticKeyring};
use serde_json::{json, Value};

use super::fake_paypal::ledger::{CLIENT_ID, CLIENT_SECRET};
use super::fake_paypal::FakePaypal;
use super::paypal_support::settings;
use crate::both_backends;
use crate::support::{kek, test_pepper, write_secret_file, Replica};

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn pay(gateway: &Replica, sk: &str) -> Value {
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
    let body = json!({"amount": 1500, "currency": "eur", "payment_method": token["id"], "confirm": true,
                      "capture_method": "manual"});
    gateway.post("/v1/payments", sk, &body).await.json().await.unwrap()
}

both_backends! {
    async fn kek_rotation_rewraps_a_paypal_connections_credentials_and_payments_go_on(app) {
        let fake = FakePaypal::start().await;
        let connectors = || Connectors::builtin().with_paypal(settings(&fake.base));
        let mut before = app.spawn_replica_routing(app.vault(), connectors()).await;
        let (_, sk) = app.merchant_with_secret("Rotating PayPal").await;
        let (status, conn) = json_of(before.post("/v1/connectors", &sk, &json!({
            "type": "paypal", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "default": true
        })).await).await;
        assert_eq!(status, 200, "{conn}");
        let payment = pay(&before, &sk).await;
        assert_eq!(payment["status"], "requires_capture", "{payment}");
        before.stop().await;

        let (new_b64, _) = test_pepper();
        let file = app.data_path().join("kek-v2");
        write_secret_file(&file, &new_b64);
        let file = file.to_str().unwrap().to_owned();
        let readable = [("PAYWARDEN_VAULT__PREVIOUS_KEK_FILES", format!("[{{version = 2, file = {file:?}}}]"))];
        let done = app.cli_json_env(&["vault", "rotate-kek", "--new-key-file", &file, "--new-version", "2"], &readable);
        assert_eq!(done["report"]["connection_credentials"], json!({"rewrapped": 1, "skipped": 0, "remaining": 0}), "{done}");

        // A replica holding only the new KEK opens the credentials: the
        // capture of the payment made before, and a new payment, reach PayPal.
        let only_new = StaticKeyring::single(KekVersion::new(2), kek(&new_b64));
        let mut after = app.spawn_replica_routing(app.vault_with(only_new), connectors()).await;
        let id = payment["id"].as_str().unwrap();
        let (status, captured) = json_of(after.post(&format!("/v1/payments/{id}/capture"), &sk, &json!({})).await).await;
        // The new replica never saw the order created by the old one: the
        // capture reads it by the payment's reference (the order id).
        assert_eq!((status, captured["status"].as_str()), (200, Some("succeeded")), "{captured}");
        let next = pay(&after, &sk).await;
        assert_eq!(next["status"], "requires_capture", "{next}");
        assert_eq!((fake.applied().authorizations, fake.applied().captures), (2, 1));
        after.stop().await;
    }
}
