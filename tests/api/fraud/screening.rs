//! Every confirm is screened by the merchant's active rules before the
//! processor: `block` fails the payment with `fraudulent` and the processor
//! (the double, which counts the calls reaching it) is never called;
//! `review` authorizes and holds it uncaptured; `challenge` sends the
//! customer to the 3-D Secure page first; `allow` and lists short-circuit
//! the score. The decision and its reasons are on the payment and, without
//! customer data, in its audit entry.

use std::sync::Arc;

use paywarden::domain::api_key::Mode;
use paywarden::domain::ids::MerchantId;
use serde_json::{json, Value};

use super::secret_key;
use crate::both_backends;
use crate::processor_double::ProcessorDouble;
use crate::support::{Replica, TestApp};

/// A merchant whose payments go to the processor double, on a gateway of
/// its own.
pub(super) struct Shop {
    pub processor: Arc<ProcessorDouble>,
    pub gateway: Replica,
    pub merchant: MerchantId,
    pub sk: String,
}

pub(super) async fn shop(app: &TestApp, mode: Mode) -> Shop {
    let merchant = app.merchant(&format!("Screened {mode:?}")).await;
    ProcessorDouble::route(app, &merchant).await;
    let sk = secret_key(app, &merchant, mode).await;
    let processor = ProcessorDouble::new();
    let gateway = app.spawn_replica_with_processor(processor.clone()).await;
    Shop {
        processor,
        gateway,
        merchant,
        sk,
    }
}

impl Shop {
    pub async fn rules(&self, rules: &str) {
        let r = self
            .gateway
            .post("/v1/fraud/rules", &self.sk, &json!({ "rules": rules }))
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }

    /// A payment confirmed at once (automatic capture) by `email`.
    pub async fn pay(&self, amount: i64, email: &str) -> Value {
        let r = self
            .gateway
            .post(
                "/v1/tokens",
                &self.sk,
                &json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let token = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        let body = json!({"amount": amount, "currency": "usd", "payment_method": token, "confirm": true,
                          "customer_email": email, "return_url": "https://shop.example/done"});
        let r = self.gateway.post("/v1/payments", &self.sk, &body).await;
        let status = r.status();
        let p: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{p}");
        p
    }

    pub async fn stop(mut self) {
        self.processor.release();
        self.gateway.stop().await;
    }
}

both_backends! {
    async fn a_blocked_payment_fails_fraudulent_and_never_reaches_the_processor(app) {
        let shop = shop(app, Mode::Live).await;
        shop.rules("rule big : block when amount >= 50_000\nrule usd : score 10 when currency == \"usd\"").await;
        let p = shop.pay(60_000, "mallory@example.com").await;
        assert_eq!(p["status"], "failed", "{p}");
        assert_eq!(p["decline_code"], "fraudulent");
        assert_eq!(p["last_error"]["code"], "fraudulent");
        assert_eq!(p["risk"]["decision"], "block");
        assert_eq!(p["risk"]["score"], 10);
        assert_eq!(p["risk"]["rules"], json!(["big", "usd"]));
        assert_eq!(p["risk"]["rules_version"], 1);
        assert_eq!(p["risk"]["signals"], json!({"amount": 60_000, "currency": "usd"}));
        assert_eq!(p["review"], Value::Null);
        assert_eq!(shop.processor.calls().total(), 0, "the processor was never called");
        // The audit entry carries decision, score and rule names, no customer data.
        let id = p["id"].as_str().unwrap().to_owned();
        let trail = app.wait_for_audit(|t| t.iter().any(|r| r.event.resource.as_deref() == Some(id.as_str()))).await;
        let entry = trail.iter().find(|r| r.event.resource.as_deref() == Some(id.as_str())).unwrap();
        let reason = entry.event.reason.clone().unwrap();
        assert!(reason.contains("risk block score 10 rules v1 [big,usd]"), "{reason}");
        assert!(!reason.contains("mallory"), "{reason}");
        // Below the amount the same rules let it through to the processor.
        let ok = shop.pay(1_000, "mallory@example.com").await;
        assert_eq!(ok["status"], "succeeded", "{ok}");
        assert_eq!(ok["risk"]["decision"], "allow");
        assert_eq!(shop.processor.calls().authorize, 1);
        shop.stop().await;
    }

    async fn a_review_authorizes_and_holds_the_payment_until_captured(app) {
        let shop = shop(app, Mode::Test).await;
        shop.rules("rule mid : review when amount > 10_000").await;
        let p = shop.pay(20_000, "jenny@example.com").await;
        assert_eq!(p["status"], "requires_capture", "{p}");
        assert_eq!(p["capture_method"], "automatic");
        assert_eq!(p["review"], "open");
        assert_eq!(p["risk"]["decision"], "review");
        let calls = shop.processor.calls();
        assert_eq!((calls.authorize, calls.capture), (1, 0), "authorized, not captured");
        let id = p["id"].as_str().unwrap();
        let r = shop.gateway.post(&format!("/v1/payments/{id}/capture"), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 200);
        let captured: Value = r.json().await.unwrap();
        assert_eq!(captured["status"], "succeeded");
        assert_eq!(captured["review"], "closed");
        assert_eq!(shop.processor.calls().capture, 1);
        shop.stop().await;
    }

    async fn a_challenge_rule_sends_the_customer_to_3ds_before_the_processor(app) {
        let shop = shop(app, Mode::Test).await;
        shop.rules("rule mid : challenge when amount > 10_000").await;
        let p = shop.pay(20_000, "jenny@example.com").await;
        assert_eq!(p["status"], "requires_action", "{p}");
        assert_eq!(p["risk"]["decision"], "challenge");
        assert_eq!(shop.processor.calls().total(), 0, "nothing sent before the customer authenticates");
        let url = p["next_action"]["url"].as_str().unwrap();
        let challenge = url.split("challenge=").nth(1).unwrap();
        let id = p["id"].as_str().unwrap();
        let browser = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&app.cert_pem).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let form = crate::sca::approving_form(&shop.gateway.client, url).await;
        assert!(form.starts_with(&format!("challenge={challenge}&")));
        let r = browser
            .post(shop.gateway.url(&format!("/sandbox/3ds/{id}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_redirection() || r.status().is_success(), "{}", r.status());
        let after: Value = shop.gateway.get(&format!("/v1/payments/{id}"), &shop.sk).await.json().await.unwrap();
        assert_eq!(after["status"], "succeeded", "{after}");
        assert_eq!(shop.processor.calls().authorize, 1);
        shop.stop().await;
    }

    async fn a_list_of_trusted_customers_overrides_a_blocking_score(app) {
        let shop = shop(app, Mode::Test).await;
        let r = shop.gateway.post("/v1/fraud/lists/trusted", &shop.sk, &json!({ "values": ["Jenny@Example.com"] })).await;
        assert_eq!(r.status(), 200);
        shop.rules("rule high : score 90 when amount > 5_000\nrule regulars : allow when customer.email in @trusted").await;
        let stranger = shop.pay(6_000, "mallory@example.com").await;
        assert_eq!(stranger["status"], "failed", "{stranger}");
        assert_eq!(stranger["risk"]["score"], 90);
        assert_eq!(stranger["risk"]["decision"], "block");
        let regular = shop.pay(6_000, "jenny@example.com").await;
        assert_eq!(regular["status"], "succeeded", "{regular}");
        assert_eq!(regular["risk"]["decision"], "allow");
        assert_eq!(regular["risk"]["rules"], json!(["high", "regulars"]));
        assert_eq!(regular["risk"]["signals"]["customer.email"], "jenny@example.com");
        assert_eq!(shop.processor.calls().authorize, 1, "only the allowed payment reached the processor");
        // The list replaced: Jenny is no longer trusted, from the next confirm on.
        let r = shop.gateway.post("/v1/fraud/lists/trusted", &shop.sk, &json!({ "values": ["bob@example.com"] })).await;
        assert_eq!(r.status(), 200);
        let again = shop.pay(6_000, "jenny@example.com").await;
        assert_eq!(again["status"], "failed", "{again}");
        shop.stop().await;
    }

    async fn a_rule_change_through_another_replica_is_in_force_within_a_second(app) {
        let shop = shop(app, Mode::Test).await;
        // The shop's gateway has read (and cached) that there are no rules.
        assert_eq!(shop.pay(60_000, "jenny@example.com").await["status"], "succeeded");
        let r = app.post("/v1/fraud/rules", &shop.sk, &json!({ "rules": "rule big : block when amount >= 50_000" })).await;
        assert_eq!(r.status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        let p = shop.pay(60_000, "jenny@example.com").await;
        assert_eq!(p["status"], "failed", "{p}");
        assert_eq!(p["decline_code"], "fraudulent");
        // Rules and a list changed through the first gateway: an allow-list
        // overrides a blocking score (never a blocking rule).
        let r = app.post("/v1/fraud/lists/trusted", &shop.sk, &json!({ "values": ["jenny@example.com"] })).await;
        assert_eq!(r.status(), 200);
        let r = app.post("/v1/fraud/rules", &shop.sk,
            &json!({ "rules": "rule big : score 90 when amount >= 50_000\nrule regulars : allow when customer.email in @trusted" })).await;
        assert_eq!(r.status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        assert_eq!(shop.pay(60_000, "jenny@example.com").await["status"], "succeeded");
        assert_eq!(shop.processor.calls().authorize, 2);
        shop.stop().await;
    }

    async fn rules_of_one_mode_never_screen_the_others_payments(app) {
        let shop = shop(app, Mode::Test).await;
        let live = secret_key(app, &shop.merchant, Mode::Live).await;
        let r = shop.gateway.post("/v1/fraud/rules", &live, &json!({ "rules": "rule all : block when amount > 0" })).await;
        assert_eq!(r.status(), 200);
        let p = shop.pay(1_000, "jenny@example.com").await;
        assert_eq!(p["status"], "succeeded", "{p}");
        assert_eq!(p["risk"], Value::Null, "no rules in test mode, no risk");
        shop.stop().await;
    }
}
