//! A PayPal connection's life beyond its payments: KEK rotation re-wraps its
//! sealed client id and secret (the walk covers every kind) and a replica
//! holding only the new KEK still pays through it; and a delivery to its
//! inbound webhook endpoint, which the connector cannot verify yet, is
//! refused and audited, never applied.

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

    async fn a_paypal_webhook_delivery_is_refused_as_unverifiable_and_audited(app) {
        let fake = FakePaypal::start().await;
        let mut gateway = app.spawn_replica_routing(app.vault(), Connectors::builtin().with_paypal(settings(&fake.base))).await;
        let (_, sk) = app.merchant_with_secret("PayPal hooks").await;
        let (_, conn) = json_of(gateway.post("/v1/connectors", &sk, &json!({
            "type": "paypal", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "webhook_id": "9XL90610J3647323C"
        })).await).await;
        let conn = conn["id"].as_str().unwrap();
        let body = json!({"id": "WH-2WR32451HC0233532-67976317FL4543714", "event_type": "PAYMENT.CAPTURE.REFUNDED",
                          "resource": {"id": "1JU08902781691411", "status": "COMPLETED"}});
        let r = gateway.client
            .post(gateway.url(&format!("/v1/connectors/{conn}/webhooks")))
            .header("content-type", "application/json")
            .header("PAYPAL-TRANSMISSION-ID", "69cd13f0-d67a-11e5-baa3-778b53f4ae55")
            .header("PAYPAL-TRANSMISSION-TIME", "2026-12-07T20:00:00Z")
            .header("PAYPAL-TRANSMISSION-SIG", "bm90IGEgc2lnbmF0dXJl")
            .header("PAYPAL-CERT-URL", "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-fake")
            .header("PAYPAL-AUTH-ALGO", "SHA256withRSA")
            .body(body.to_string())
            .send().await.unwrap();
        let (status, answer) = json_of(r).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("webhook_unverified")), "{answer}");
        let audit: Vec<String> = sqlx::query_scalar("SELECT action || ' ' || COALESCE(reason, '') FROM audit_log")
            .fetch_all(app.store.reader()).await.unwrap();
        let audit = audit.join("\n");
        assert!(audit.contains("connector.webhook_refused"), "{audit}");
        assert!(!audit.contains("1JU08902781691411"), "{audit}");
        assert!(fake.calls().is_empty(), "nothing was asked of PayPal");
        gateway.stop().await;
    }
}
