//! Fraud and 3-D Secure outcomes in the operator's metrics: each confirm
//! counts its SCA decision (and its fraud decision when the merchant has
//! rules), each final 3-D Secure result counts once, whether it came
//! frictionless or when a challenge ended, and a challenge still waiting
//! counts no result.

use paywarden::domain::sca::OnUnavailable;
use serde_json::json;

use super::{approving_form, Shop, DE_C, DE_N, DE_Y};
use crate::both_backends;
use crate::metrics::value;

async fn scrape(shop: &Shop) -> String {
    let url = format!("{}/metrics", shop.gateway.operator);
    let r = shop.gateway.client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

both_backends! {
    async fn sca_decisions_three_ds_results_and_fraud_decisions_are_counted(app) {
        let shop = Shop::open(app, None, OnUnavailable::Fail).await;
        let before = scrape(&shop).await;
        assert_eq!(value(&before, "paywarden_sca_decisions_total{sca=\"frictionless\"}"), 0.0);

        assert_eq!(shop.pay_eur(DE_Y, 5_000).await["status"], "succeeded");
        assert_eq!(shop.pay_eur(DE_N, 5_000).await["status"], "failed");
        let waiting = shop.pay_eur(DE_C, 5_000).await;
        assert_eq!(waiting["status"], "requires_action");
        let text = scrape(&shop).await;
        assert_eq!(value(&text, "paywarden_sca_decisions_total{sca=\"frictionless\"}"), 3.0, "{text}");
        assert_eq!(value(&text, "paywarden_three_ds_results_total{trans_status=\"Y\"}"), 1.0);
        assert_eq!(value(&text, "paywarden_three_ds_results_total{trans_status=\"N\"}"), 1.0);
        assert!(!text.contains("trans_status=\"C\""), "a waiting challenge is no result: {text}");
        assert_eq!(value(&text, "paywarden_payment_declines_total{code=\"authentication_failed\"}"), 1.0);
        assert!(!text.contains("paywarden_fraud_decisions_total{"), "no rules, no fraud decision: {text}");

        // The challenge ends: its result counts then, its decision not again.
        let page = waiting["next_action"]["url"].as_str().unwrap();
        let form = approving_form(&shop.gateway.client, page).await;
        let no_redirects = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .add_root_certificate(reqwest::Certificate::from_pem(&app.cert_pem).unwrap())
            .build()
            .unwrap();
        let r = no_redirects
            .post(shop.gateway.url(&format!("/sandbox/3ds/{}", waiting["id"].as_str().unwrap())))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "back to the shop's return_url");
        let text = scrape(&shop).await;
        assert_eq!(value(&text, "paywarden_three_ds_results_total{trans_status=\"Y\"}"), 2.0, "{text}");
        assert_eq!(value(&text, "paywarden_sca_decisions_total{sca=\"frictionless\"}"), 3.0);

        // With rules, each confirm counts its fraud decision.
        let rules = json!({"rules": "rule big : block when amount > 4000"});
        let r = shop.gateway.post("/v1/fraud/rules", &shop.sk, &rules).await;
        assert_eq!(r.status(), 200);
        let blocked = shop.pay_eur(DE_Y, 5_000).await;
        assert_eq!(blocked["decline_code"], "fraudulent", "{blocked}");
        assert_eq!(shop.pay_eur(DE_Y, 3_500).await["status"], "succeeded");
        let text = scrape(&shop).await;
        assert_eq!(value(&text, "paywarden_fraud_decisions_total{decision=\"block\"}"), 1.0, "{text}");
        assert_eq!(value(&text, "paywarden_fraud_decisions_total{decision=\"allow\"}"), 1.0);
        shop.stop().await;
    }
}
