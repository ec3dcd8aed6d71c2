//! Payments through the whole gateway routed to the Stripe connector and
//! the fake Stripe (real TLS both ways, real database): authorize, capture
//! and refund reach Stripe once each, and an authorization whose answer was
//! lost ends authorized through `sync`, not failed; Stripe's refusal of raw
//! card data fails the payment without a word of Stripe's answer reaching
//! the merchant.

use std::sync::Arc;
use std::time::Duration;

use paywarden::domain::api_key::KeyKind;
use paywarden::domain::ids::MerchantId;
use serde_json::{json, Value};

use super::fake_stripe::{Damage, FakeStripe, Fault};
use super::{pay_with_card, stripe_at, VISA};
use crate::both_backends;
use crate::support::{new_key, Replica, TestApp};

/// A test-mode merchant routed to Stripe, its secret key, and a gateway
/// whose Stripe connector talks to `fake`.
async fn shop(app: &TestApp, fake: &FakeStripe) -> (Replica, String) {
    let merchant: MerchantId = app.merchant("Stripe shop").await;
    sqlx::query("UPDATE merchants SET connector = $1 WHERE id = $2")
        .bind("stripe")
        .bind(merchant.as_str())
        .execute(app.store.reader())
        .await
        .unwrap();
    let sk = app
        .issue(new_key(&merchant, KeyKind::Secret, &[]))
        .await
        .secret
        .expose()
        .to_owned();
    let gateway = app.spawn_replica_with_processor(Arc::new(stripe_at(&fake.base))).await;
    (gateway, sk)
}

both_backends! {
    async fn a_payment_is_authorized_captured_and_refunded_at_stripe_once_each(app) {
        let fake = FakeStripe::start().await;
        let (mut gateway, sk) = shop(app, &fake).await;
        let payment = pay_with_card(&gateway, &sk, VISA, 2500, true).await;
        assert_eq!(payment["status"], "requires_capture", "{payment}");
        let id = payment["id"].as_str().unwrap();
        let r = gateway.post(&format!("/v1/payments/{id}/capture"), &sk, &json!({"amount_to_capture": 2000})).await;
        assert_eq!(r.status(), 200);
        let captured: Value = r.json().await.unwrap();
        assert_eq!(captured["status"], "succeeded", "{captured}");
        assert_eq!(fake.calls_to("/capture")[0].param("amount_to_capture"), Some("2000"));
        let r = gateway.post("/v1/refunds", &sk, &json!({"payment": id, "amount": 500})).await;
        assert_eq!(r.status(), 200);
        let refund: Value = r.json().await.unwrap();
        assert_eq!(refund["status"], "succeeded", "{refund}");
        let applied = fake.applied();
        assert_eq!((applied.confirms, applied.captures, applied.refunds), (1, 1, 1));
        // The metadata ties Stripe's intent to the gateway's payment.
        assert_eq!(fake.calls_to("/v1/payment_intents")[0].param("metadata[paywarden_payment]"), Some(id));
        gateway.stop().await;
    }

    async fn an_authorization_whose_answer_is_lost_ends_authorized_through_sync(app) {
        let fake = FakeStripe::start().await;
        let (mut gateway, sk) = shop(app, &fake).await;
        fake.inject("/confirm", Fault::Processed(Damage::Delay(Duration::from_secs(4))));
        let payment = pay_with_card(&gateway, &sk, VISA, 1200, true).await;
        assert_eq!(payment["status"], "requires_capture", "{payment}");
        assert_eq!(fake.applied().confirms, 1);
        assert!(
            fake.calls().iter().any(|c| c.method == "GET" && c.path.starts_with("/v1/payment_intents/pi_")),
            "the gateway asked Stripe after the timeout"
        );
        gateway.stop().await;
    }

    async fn stripes_refusal_of_raw_card_data_fails_the_payment_and_nothing_of_it_reaches_the_merchant(app) {
        let fake = FakeStripe::start().await;
        fake.refuse_raw_card_data();
        let (mut gateway, sk) = shop(app, &fake).await;
        let payment = pay_with_card(&gateway, &sk, VISA, 1000, true).await;
        assert_eq!(payment["status"], "failed", "{payment}");
        // The merchant learns it is its connector's configuration, not the card.
        assert_eq!(payment["decline_code"], "connector_configuration", "{payment}");
        let text = payment.to_string();
        for leaked in ["unsafe", "raw card", "Stripe", "4242424242424242", "sk_test_"] {
            assert!(!text.contains(leaked), "{leaked} in {text}");
        }
        assert_eq!(fake.applied().intents, 0);
        gateway.stop().await;
    }
}
