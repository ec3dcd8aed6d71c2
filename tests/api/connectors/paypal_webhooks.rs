//! PayPal's inbound webhooks through the whole gateway (both backends): a
//! delivery signed as PayPal documents (RSA over ids, time, our webhook id
//! and the body's CRC32, with the certificate fetched from the fake PayPal
//! once and verified against the test CA) settles a payment left
//! `processing` and is applied once however often it comes; a tampered or
//! stale delivery, another subscription's, one whose certificate URL points
//! elsewhere (never fetched), another algorithm, or any delivery to a
//! connection without a webhook id, is refused and audited.

use paywarden::connectors::Connectors;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::fake_paypal::ledger::{CLIENT_ID, CLIENT_SECRET};
use super::fake_paypal::signing::{Signer, CERT_PATH};
use super::fake_paypal::FakePaypal;
use super::paypal_support::settings;
use crate::both_backends;
use crate::support::{Replica, TestApp};

const WEBHOOK_ID: &str = "9XL90610J3647323C";

fn at(offset: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::seconds(offset))
        .format(&Rfc3339)
        .unwrap()
}

struct Shop {
    gateway: Replica,
    sk: String,
    conn: String,
    cert_url: String,
}

impl Shop {
    async fn open(app: &TestApp, fake: &FakePaypal, webhook_id: Option<&str>) -> Shop {
        let gateway = app
            .spawn_replica_routing(app.vault(), Connectors::builtin().with_paypal(settings(&fake.base)))
            .await;
        let (_, sk) = app.merchant_with_secret("PayPal hooks").await;
        let mut body =
            json!({"type": "paypal", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "default": true});
        if let Some(id) = webhook_id {
            body["webhook_id"] = json!(id);
        }
        let conn: Value = gateway.post("/v1/connectors", &sk, &body).await.json().await.unwrap();
        let conn = conn["id"].as_str().unwrap().to_owned();
        Shop {
            gateway,
            sk,
            conn,
            cert_url: format!("{}{CERT_PATH}", fake.base),
        }
    }

    /// A payment of this shop left `processing` at its PayPal connection.
    async fn processing(&self, app: &TestApp) -> String {
        let token: Value = self
            .gateway
            .post(
                "/v1/tokens",
                &self.sk,
                &json!({"card": {"number": "4111111111111111", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}),
            )
            .await
            .json()
            .await
            .unwrap();
        let payment: Value = self
            .gateway
            .post(
                "/v1/payments",
                &self.sk,
                &json!({"amount": 2000, "currency": "eur", "payment_method": token["id"]}),
            )
            .await
            .json()
            .await
            .unwrap();
        let id = payment["id"].as_str().unwrap().to_owned();
        sqlx::query("UPDATE payments SET status = 'processing', connector = $1 WHERE id = $2")
            .bind(&self.conn)
            .bind(&id)
            .execute(app.store.reader())
            .await
            .unwrap();
        id
    }

    async fn deliver(&self, body: &[u8], headers: Vec<(String, String)>) -> (u16, Value) {
        let mut request = self
            .gateway
            .client
            .post(self.gateway.url(&format!("/v1/connectors/{}/webhooks", self.conn)))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let r = request.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    fn signed(&self, webhook_id: &str, time: &str, body: &[u8]) -> Vec<(String, String)> {
        Signer::get().headers(webhook_id, time, &self.cert_url, body)
    }
}

/// A `PAYMENT.CAPTURE.COMPLETED` event as PayPal sends it.
fn captured(event: &str, payment: &str, value: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": event, "event_version": "1.0", "create_time": at(0), "resource_type": "capture",
        "resource_version": "2.0", "event_type": "PAYMENT.CAPTURE.COMPLETED", "summary": "Payment completed",
        "resource": {"id": "2GG279541U471931P", "status": "COMPLETED", "custom_id": payment, "final_capture": true,
            "amount": {"currency_code": "EUR", "value": value},
            "supplementary_data": {"related_ids": {"order_id": "7FAKE000000000001"}}},
    }))
    .unwrap()
}

async fn audit_text(app: &TestApp) -> String {
    let rows: Vec<String> = sqlx::query_scalar("SELECT action || ' ' || COALESCE(reason, '') FROM audit_log")
        .fetch_all(app.store.reader())
        .await
        .unwrap();
    rows.join("\n")
}

both_backends! {
    async fn a_signed_capture_settles_a_processing_payment_once_and_forgeries_are_refused(app) {
        let fake = FakePaypal::start().await;
        let mut shop = Shop::open(app, &fake, Some(WEBHOOK_ID)).await;
        let payment = shop.processing(app).await;
        let body = captured("WH-58D329510W468432D-8HN650336L201105X", &payment, "15.00");

        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        let signed = shop.signed(WEBHOOK_ID, &at(0), &body);
        let mut sha1 = signed.clone();
        sha1[4].1 = "SHA1withRSA".into();
        let mut elsewhere = shop.signed(WEBHOOK_ID, &at(0), &body);
        elsewhere[3].1 = format!("https://evil.example{CERT_PATH}");
        let refusals = [
            (tampered, signed.clone()),
            (body.clone(), shop.signed("8PT597110X687430LKGECATA", &at(0), &body)),
            (body.clone(), shop.signed(WEBHOOK_ID, &at(-600), &body)),
            (body.clone(), sha1),
            (body.clone(), elsewhere),
            (body.clone(), Vec::new()),
        ];
        for (delivery, headers) in refusals {
            let (status, answer) = shop.deliver(&delivery, headers).await;
            assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("webhook_unverified")), "{answer}");
        }
        let p: Value = shop.gateway.get(&format!("/v1/payments/{payment}"), &shop.sk).await.json().await.unwrap();
        assert_eq!(p["status"], "processing", "nothing was applied: {p}");

        let (status, receipt) = shop.deliver(&body, signed.clone()).await;
        assert_eq!((status, receipt["outcome"].as_str()), (200, Some("applied")), "{receipt}");
        let p: Value = shop.gateway.get(&format!("/v1/payments/{payment}"), &shop.sk).await.json().await.unwrap();
        assert_eq!((p["status"].as_str(), p["amount_received"].as_i64()), (Some("succeeded"), Some(1500)), "{p}");
        let (status, receipt) = shop.deliver(&body, signed).await;
        assert_eq!((status, receipt["outcome"].as_str()), (200, Some("duplicate")), "{receipt}");
        assert_eq!(fake.applied().cert_fetches, 1, "fetched once, from the allowed host only");

        let audit = audit_text(app).await;
        assert_eq!(audit.matches("connector.webhook_refused").count(), 6, "{audit}");
        assert!(!audit.contains("2GG279541U471931P"), "{audit}");
        shop.gateway.stop().await;
    }

    async fn a_connection_without_a_webhook_id_verifies_no_delivery(app) {
        let fake = FakePaypal::start().await;
        let mut shop = Shop::open(app, &fake, None).await;
        let payment = shop.processing(app).await;
        let body = captured("WH-1", &payment, "20.00");
        let headers = shop.signed(WEBHOOK_ID, &at(0), &body);
        let (status, answer) = shop.deliver(&body, headers).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("webhook_unverified")), "{answer}");
        assert!(audit_text(app).await.contains("connector.webhook_refused"));
        shop.gateway.stop().await;
    }
}
