//! Inbound processor webhooks (`POST /v1/connectors/{id}/webhooks`) through
//! the whole gateway: Stripe events signed as Stripe signs them
//! (`Stripe-Signature`, HMAC-SHA-256 with the connection's `whsec_`) are
//! applied once per event id and mapped onto payments and refunds, and
//! re-emitted as the gateway's events; every unverifiable delivery gets the
//! same refusal, is audited without its payload, and changes nothing.

use std::time::Duration;

use paywarden::webhooks::signature::header_value;
use serde_json::{json, Value};

use super::fake_stripe::{Damage, FakeStripe, Fault};
use super::{pay_with_card, stripe_connectors, TEST_KEY, VISA};
use crate::both_backends;
use crate::support::{Replica, TestApp};

const WHSEC: &str = "whsec_InboundSigningSecret01";

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// A Stripe event as Stripe serializes it.
fn event(id: &str, kind: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id, "object": "event", "api_version": "2023-08-16", "created": now(),
        "livemode": false, "pending_webhooks": 1, "type": kind, "data": {"object": object}
    }))
    .unwrap()
}

struct Shop {
    gateway: Replica,
    sk: String,
    conn: String,
}

impl Shop {
    /// A merchant routed to its Stripe connection (with `whsec` when given).
    async fn open(app: &TestApp, fake: &FakeStripe, whsec: Option<&str>) -> Shop {
        let gateway = app
            .spawn_replica_routing(app.vault(), stripe_connectors(&fake.base))
            .await;
        let (_, sk) = app.merchant_with_secret("Inbound shop").await;
        let mut body = json!({"type": "stripe", "secret_key": TEST_KEY, "default": true});
        if let Some(whsec) = whsec {
            body["webhook_secret"] = json!(whsec);
        }
        let r = gateway.post("/v1/connectors", &sk, &body).await;
        assert_eq!(r.status(), 200);
        let conn: Value = r.json().await.unwrap();
        let conn = conn["id"].as_str().unwrap().to_owned();
        Shop { gateway, sk, conn }
    }

    async fn deliver_to(&self, conn: &str, body: &[u8], signature: Option<String>) -> (u16, Value) {
        let mut request = self
            .gateway
            .client
            .post(self.gateway.url(&format!("/v1/connectors/{conn}/webhooks")))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("Stripe-Signature", signature);
        }
        let r = request.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Delivers `body` signed now with the shop's secret.
    async fn deliver(&self, body: &[u8]) -> (u16, Value) {
        self.deliver_to(&self.conn, body, Some(header_value([WHSEC], now(), body)))
            .await
    }

    async fn pay(&self, amount: i64, confirm: bool) -> Value {
        pay_with_card(&self.gateway, &self.sk, VISA, amount, confirm).await
    }

    /// A payment captured through Stripe, and its PaymentIntent id.
    async fn captured(&self, app: &TestApp, amount: i64) -> (String, String) {
        let payment = self.pay(amount, true).await;
        let id = payment["id"].as_str().unwrap().to_owned();
        let r = self
            .gateway
            .post(&format!("/v1/payments/{id}/capture"), &self.sk, &json!({}))
            .await;
        assert_eq!(r.status(), 200);
        let intent: String = sqlx::query_scalar("SELECT processor_reference FROM payments WHERE id = $1")
            .bind(&id)
            .fetch_one(app.store.reader())
            .await
            .unwrap();
        (id, intent)
    }

    /// A payment of this shop's connection left `processing` (as a crash
    /// between recording it and Stripe's answer leaves one).
    async fn processing(&self, app: &TestApp, amount: i64) -> String {
        let payment = self.pay(amount, false).await;
        let id = payment["id"].as_str().unwrap().to_owned();
        sqlx::query("UPDATE payments SET status = 'processing', connector = $1 WHERE id = $2")
            .bind(&self.conn)
            .bind(&id)
            .execute(app.store.reader())
            .await
            .unwrap();
        id
    }

    async fn payment(&self, id: &str) -> Value {
        self.gateway
            .get(&format!("/v1/payments/{id}"), &self.sk)
            .await
            .json()
            .await
            .unwrap()
    }

    async fn refunds(&self, payment: &str) -> Vec<Value> {
        let list: Value = self
            .gateway
            .get(&format!("/v1/refunds?payment={payment}"), &self.sk)
            .await
            .json()
            .await
            .unwrap();
        list["data"].as_array().unwrap().clone()
    }

    async fn event_types(&self, object: &str) -> Vec<String> {
        let list: Value = self
            .gateway
            .get("/v1/events?limit=100", &self.sk)
            .await
            .json()
            .await
            .unwrap();
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["data"]["object"]["id"] == object || e["data"]["object"]["payment"] == object)
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn charge(intent: &str, refunded: i64) -> Value {
    json!({"id": "ch_1", "object": "charge", "amount": 2000, "amount_refunded": refunded,
           "payment_intent": intent, "refunded": refunded == 2000, "status": "succeeded"})
}

fn intent(id: &str, payment: &str, status: &str, received: i64) -> Value {
    json!({"id": id, "object": "payment_intent", "amount": 2000, "amount_received": received,
           "status": status, "capture_method": "manual", "metadata": {"paywarden_payment": payment},
           "last_payment_error": if status == "requires_payment_method" {
               json!({"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"})
           } else { Value::Null }})
}

async fn audit_text(app: &TestApp) -> String {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT action || ' ' || COALESCE(resource, '') || ' ' || COALESCE(reason, '') FROM audit_log ORDER BY seq",
    )
    .fetch_all(app.store.reader())
    .await
    .unwrap();
    rows.join("\n")
}

both_backends! {
    async fn a_refund_made_in_stripes_dashboard_becomes_one_refund_here_and_is_announced(app) {
        let fake = FakeStripe::start().await;
        let mut shop = Shop::open(app, &fake, Some(WHSEC)).await;
        let (payment, pi) = shop.captured(app, 2000).await;

        let body = event("evt_dashboard1", "charge.refunded", charge(&pi, 700));
        let (status, receipt) = shop.deliver(&body).await;
        assert_eq!((status, &receipt["outcome"]), (200, &json!("applied")), "{receipt}");
        let refunds = shop.refunds(&payment).await;
        assert_eq!(refunds.len(), 1, "{refunds:?}");
        assert_eq!((refunds[0]["amount"].as_i64(), refunds[0]["status"].as_str()), (Some(700), Some("succeeded")));
        assert_eq!(shop.payment(&payment).await["amount_refunded"], 700);
        let refund_id = refunds[0]["id"].as_str().unwrap();
        assert!(shop.event_types(refund_id).await.contains(&"refund.succeeded".to_owned()));

        // Stripe delivers again (and again, later, re-signed): nothing more.
        let (status, receipt) = shop.deliver(&body).await;
        assert_eq!((status, &receipt["outcome"]), (200, &json!("duplicate")), "{receipt}");
        assert_eq!(shop.refunds(&payment).await.len(), 1);
        // Another event saying the same total adds nothing; a larger total
        // adds the difference.
        let (_, receipt) = shop.deliver(&event("evt_dashboard2", "charge.refunded", charge(&pi, 700))).await;
        assert_eq!(receipt["outcome"], "ignored");
        let (_, receipt) = shop.deliver(&event("evt_dashboard3", "charge.refunded", charge(&pi, 1000))).await;
        assert_eq!(receipt["outcome"], "applied");
        let mut amounts: Vec<i64> = shop.refunds(&payment).await.iter().map(|r| r["amount"].as_i64().unwrap()).collect();
        amounts.sort_unstable();
        assert_eq!(amounts, vec![300, 700]);
        assert_eq!(shop.payment(&payment).await["amount_refunded"], 1000);
        // The gateway called Stripe for none of it.
        assert_eq!(fake.applied().refunds, 0);
        let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM processor_events WHERE connection_id = $1")
            .bind(&shop.conn)
            .fetch_one(app.store.reader())
            .await
            .unwrap();
        assert_eq!(recorded, 3);
        shop.gateway.stop().await;
    }

    async fn unverifiable_deliveries_get_one_refusal_are_audited_without_payload_and_change_nothing(app) {
        let fake = FakeStripe::start().await;
        let mut shop = Shop::open(app, &fake, Some(WHSEC)).await;
        let (payment, pi) = shop.captured(app, 2000).await;
        let unsigned_shop = {
            let (_, sk) = app.merchant_with_secret("No secret").await;
            let r = shop.gateway.post("/v1/connectors", &sk, &json!({"type": "stripe", "secret_key": TEST_KEY})).await;
            let conn: Value = r.json().await.unwrap();
            conn["id"].as_str().unwrap().to_owned()
        };
        let body = event("evt_forged", "charge.refunded", charge(&pi, 2000));
        let signed_now = header_value([WHSEC], now(), &body);
        let mut tampered = body.clone();
        let at = tampered.windows(4).position(|w| w == b"2000").unwrap();
        tampered[at] = b'1';
        let cases: Vec<(String, Vec<u8>, Option<String>)> = vec![
            ("conn_000000000000000000000000".into(), body.clone(), Some(signed_now.clone())),
            ("not-a-connection".into(), body.clone(), Some(signed_now.clone())),
            (unsigned_shop, body.clone(), Some(signed_now.clone())),
            (shop.conn.clone(), body.clone(), None),
            (shop.conn.clone(), body.clone(), Some(header_value(["whsec_SomebodyElsesSecret"], now(), &body))),
            (shop.conn.clone(), body.clone(), Some(header_value([WHSEC], now() - 301, &body))),
            (shop.conn.clone(), body.clone(), Some(header_value([WHSEC], now() + 301, &body))),
            (shop.conn.clone(), tampered, Some(signed_now.clone())),
            (shop.conn.clone(), body.clone(), Some("garbage".into())),
        ];
        let mut answers = Vec::new();
        for (conn, body, signature) in cases {
            let (status, mut answer) = shop.deliver_to(&conn, &body, signature).await;
            assert_eq!(status, 400, "{conn}: {answer}");
            answer["error"]["request_id"] = Value::Null;
            answers.push(answer);
        }
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "one refusal for all: {answers:?}");
        assert_eq!(answers[0]["error"]["code"], "webhook_unverified");
        assert_eq!(answers[0]["error"]["param"], "signature");
        assert!(shop.refunds(&payment).await.is_empty());
        assert_eq!(shop.payment(&payment).await["amount_refunded"], 0);
        let audit = audit_text(app).await;
        assert_eq!(audit.matches("connector.webhook_refused").count(), 9, "{audit}");
        for leaked in ["evt_forged", "ch_1", pi.as_str(), WHSEC, "InboundSigningSecret"] {
            assert!(!audit.contains(leaked), "{leaked} in the audit trail");
        }
        // An older signature within the tolerance, and one among several
        // (a secret being rolled), still verify.
        let rolled = header_value(["whsec_TheOldSecret0001", WHSEC], now() - 200, &body);
        let (status, receipt) = shop.deliver_to(&shop.conn, &body, Some(rolled)).await;
        assert_eq!((status, &receipt["outcome"]), (200, &json!("applied")), "{receipt}");
        shop.gateway.stop().await;
    }

    async fn payments_left_processing_settle_from_payment_intent_events_of_their_own_connection_only(app) {
        let fake = FakeStripe::start().await;
        let mut shop = Shop::open(app, &fake, Some(WHSEC)).await;
        let succeeded = shop.processing(app, 2000).await;
        let failed = shop.processing(app, 2000).await;
        let canceled = shop.processing(app, 2000).await;

        let (_, receipt) = shop.deliver(&event("evt_pi1", "payment_intent.succeeded",
            intent("pi_A", &succeeded, "succeeded", 1500))).await;
        assert_eq!(receipt["outcome"], "applied", "{receipt}");
        let p = shop.payment(&succeeded).await;
        assert_eq!((p["status"].as_str(), p["amount_received"].as_i64()), (Some("succeeded"), Some(1500)), "{p}");
        let types = shop.event_types(&succeeded).await;
        assert!(types.contains(&"payment.succeeded".to_owned()), "{types:?}");

        let (_, receipt) = shop.deliver(&event("evt_pi2", "payment_intent.payment_failed",
            intent("pi_B", &failed, "requires_payment_method", 0))).await;
        assert_eq!(receipt["outcome"], "applied");
        let p = shop.payment(&failed).await;
        assert_eq!((p["status"].as_str(), p["decline_code"].as_str()), (Some("failed"), Some("insufficient_funds")), "{p}");

        let (_, receipt) = shop.deliver(&event("evt_pi3", "payment_intent.canceled",
            intent("pi_C", &canceled, "canceled", 0))).await;
        assert_eq!(receipt["outcome"], "applied");
        assert_eq!(shop.payment(&canceled).await["status"], "failed");

        // A settled payment does not move again (Stripe's late or repeated news).
        let (_, receipt) = shop.deliver(&event("evt_pi4", "payment_intent.canceled",
            intent("pi_A", &succeeded, "canceled", 0))).await;
        assert_eq!(receipt["outcome"], "ignored");
        assert_eq!(shop.payment(&succeeded).await["status"], "succeeded");

        // Another merchant's payment, named in an event of this connection,
        // is not touched.
        let mut other = Shop::open(app, &fake, Some("whsec_OtherShopSecret001")).await;
        let theirs = other.processing(app, 2000).await;
        let (_, receipt) = shop.deliver(&event("evt_pi5", "payment_intent.succeeded",
            intent("pi_D", &theirs, "succeeded", 2000))).await;
        assert_eq!(receipt["outcome"], "ignored");
        assert_eq!(other.payment(&theirs).await["status"], "processing");

        // Types the gateway does not act on are acknowledged.
        let (status, receipt) = shop.deliver(&event("evt_other", "customer.created", json!({"id": "cus_1"}))).await;
        assert_eq!((status, &receipt["outcome"]), (200, &json!("ignored")));
        other.gateway.stop().await;
        shop.gateway.stop().await;
    }

    async fn a_dispute_is_recorded_on_its_payment_and_a_pending_refund_settles_from_stripes_event(app) {
        let fake = FakeStripe::start().await;
        let mut shop = Shop::open(app, &fake, Some(WHSEC)).await;
        let (payment, pi) = shop.captured(app, 2000).await;
        let dispute = json!({"id": "dp_1", "object": "dispute", "amount": 2000, "charge": "ch_1",
                             "payment_intent": pi, "reason": "fraudulent", "status": "needs_response"});
        let (_, receipt) = shop.deliver(&event("evt_dp", "charge.dispute.created", dispute)).await;
        assert_eq!(receipt["outcome"], "applied", "{receipt}");
        let p = shop.payment(&payment).await;
        let history = p["history"].as_array().unwrap();
        assert!(history.iter().any(|h| h["action"] == "dispute" && h["outcome"] == "opened"), "{p}");
        assert!(shop.event_types(&payment).await.contains(&"payment.disputed".to_owned()));

        // A refund whose answer Stripe never gave stays pending, until
        // Stripe's event says how it ended.
        for _ in 0..3 {
            fake.inject("/v1/refunds", Fault::Processed(Damage::Delay(Duration::from_secs(4))));
        }
        let r = shop.gateway.post("/v1/refunds", &shop.sk, &json!({"payment": payment, "amount": 500})).await;
        assert!(r.status().is_server_error(), "{}", r.status());
        let refunds = shop.refunds(&payment).await;
        assert_eq!(refunds[0]["status"], "pending", "{refunds:?}");
        let ours = refunds[0]["id"].as_str().unwrap().to_owned();
        let stripe_refund = json!({"id": "re_1", "object": "refund", "amount": 500, "status": "succeeded",
                                   "payment_intent": pi, "metadata": {"paywarden_refund": ours}});
        let (_, receipt) = shop.deliver(&event("evt_re", "refund.updated", stripe_refund)).await;
        assert_eq!(receipt["outcome"], "applied", "{receipt}");
        let refunds = shop.refunds(&payment).await;
        assert_eq!((refunds.len(), refunds[0]["status"].as_str()), (1, Some("succeeded")), "{refunds:?}");
        assert_eq!(shop.payment(&payment).await["amount_refunded"], 500);
        // Its charge.refunded (total 500) then adds nothing.
        let (_, receipt) = shop.deliver(&event("evt_ch", "charge.refunded", charge(&pi, 500))).await;
        assert_eq!(receipt["outcome"], "ignored");
        assert_eq!(fake.applied().refunds, 1);
        shop.gateway.stop().await;
    }
}
