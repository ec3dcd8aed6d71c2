//! Refunds through the processor double: concurrent full refunds refund
//! once, and a refund whose outcome is unknown stays pending with its amount
//! reserved.

use paywarden::connectors::ConnectorError;
use paywarden::domain::api_key::Mode;
use serde_json::{json, Value};

use super::super::{assert_intact, Rows};
use super::{losers_refused, post, race, shop, statuses, winner};
use crate::both_backends;
use crate::payments::error_of;
use crate::processor_double::Call;

both_backends! {
    async fn concurrent_full_refunds_refund_once(app) {
        let shop = shop(app, Mode::Test).await;
        let id = shop.payment("4242424242424242", 5000, "usd", Some("automatic")).await;
        let before = Rows::snapshot(app).await;
        let race = race(&shop.processor, (0..8).map(|_| post(&shop.gateway, "/v1/refunds", &shop.sk, json!({"payment": id}))).collect()).await;
        let calls = shop.processor.calls();
        assert_eq!(calls.refund, 1, "one refund reaches the processor: {calls:?}; {:?}", race.answers);
        assert_eq!(shop.processor.refunded(), [5000]);
        assert_eq!(race.answered_while_held, 7);
        assert_eq!(statuses(&race), [200, 409, 409, 409, 409, 409, 409, 409]);
        losers_refused(&race, &["amount_exceeds_refundable"]);
        let refund = winner(&race);
        assert_eq!((&refund["status"], &refund["amount"]), (&json!("succeeded"), &json!(5000)), "{refund}");
        let p = shop.get(&id).await;
        assert_eq!((&p["amount_received"], &p["amount_refunded"]), (&json!(5000), &json!(5000)), "{p}");
        let listed: Value = shop.gateway.get(&format!("/v1/refunds?payment={id}"), &shop.sk).await.json().await.unwrap();
        let refunds = listed["data"].as_array().unwrap();
        assert_eq!(refunds.len(), 1, "{listed}");
        assert_eq!(refunds[0]["status"], "succeeded");
        assert_intact(app, before, |r| {
            r.refunds += 1;
            r.events += 1;
        })
        .await;
        shop.stop().await;
    }

    async fn a_timed_out_refund_stays_pending_with_its_amount_reserved(app) {
        let shop = shop(app, Mode::Test).await;
        let id = shop.payment("4242424242424242", 5000, "usd", Some("automatic")).await;
        shop.processor.fail_next(Call::Refund, ConnectorError::Timeout);
        let r = shop.gateway.post("/v1/refunds", &shop.sk, &json!({"payment": id})).await;
        assert_eq!(r.status(), 503);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "processor_outcome_unknown", "{e}");
        // Not failed and given back: a retry cannot refund a second time.
        let p = shop.get(&id).await;
        assert_eq!(p["amount_refunded"], 5000, "{p}");
        let listed: Value = shop.gateway.get(&format!("/v1/refunds?payment={id}"), &shop.sk).await.json().await.unwrap();
        assert_eq!(listed["data"][0]["status"], "pending", "{listed}");
        let (status, e) = error_of(shop.gateway.post("/v1/refunds", &shop.sk, &json!({"payment": id})).await).await;
        assert_eq!((status, e["code"].as_str()), (409, Some("amount_exceeds_refundable")), "{e}");
        assert_eq!(shop.processor.calls().refund, 1);
        shop.stop().await;
    }
}
