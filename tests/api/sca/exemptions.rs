//! The SCA decision of every confirm and each exemption at its boundaries:
//! low value (5 consecutive, EUR 100 cumulative, the 6th needing SCA, reset
//! by an authentication), currency conversion, transaction risk analysis by
//! the merchant's fraud rate, merchant-initiated payments after an
//! authenticated first, one-leg-out, the merchant's per-payment request,
//! and the fraud rules' `challenge`.

use paywarden::domain::sca::OnUnavailable;
use serde_json::{json, Value};

use super::{decision, Shop, DE_A, DE_Y, US_Y};
use crate::both_backends;

fn d(p: &Value) -> (String, String) {
    decision(p)
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

both_backends! {
    async fn five_low_value_payments_are_exempt_and_the_sixth_needs_sca(app) {
        let shop = Shop::open(app, None, OnUnavailable::Fail).await;
        for n in 1..=5 {
            let p = shop.pay_eur(DE_Y, 1_000).await;
            assert_eq!(p["status"], "succeeded", "{p}");
            assert_eq!(d(&p), pair("exempt", "low_value"), "payment {n}: {p}");
            assert_eq!(p["three_d_secure"], Value::Null, "no 3-D Secure for an exemption");
            assert_eq!(p["sca"]["amount_eur"], 1_000);
            let reason = p["sca"]["reason"].as_str().unwrap();
            assert!(reason.contains(&format!("payment {n} since the card's last SCA")), "{reason}");
        }
        let sixth = shop.pay_eur(DE_Y, 1_000).await;
        assert_eq!(d(&sixth), pair("frictionless", "none"), "{sixth}");
        assert!(sixth["sca"]["reason"].as_str().unwrap().contains("low-value counters"), "{sixth}");
        assert_eq!(sixth["status"], "succeeded");
        assert_eq!(sixth["three_d_secure"]["trans_status"], "Y");
        assert_eq!(sixth["three_d_secure"]["liability_shift"], true);
        // The decision is in the payment's history and its audit entry.
        let history = sixth["history"].as_array().unwrap();
        let entry = history.iter().find(|e| e["action"] == "sca").expect("an sca entry");
        assert_eq!(entry["outcome"], "frictionless");
        let id = sixth["id"].as_str().unwrap().to_owned();
        let trail = app.wait_for_audit(|t| t.iter().any(|r| r.event.resource.as_deref() == Some(id.as_str()))).await;
        let reason = trail.iter().find(|r| r.event.resource.as_deref() == Some(id.as_str())).unwrap()
            .event.reason.clone().unwrap();
        assert!(reason.contains("sca frictionless 3ds 2.2.0 Y eci 05 liability_shift true"), "{reason}");
        // Authenticated: the counters start again, the 7th is exempt.
        let seventh = shop.pay_eur(DE_Y, 1_000).await;
        assert_eq!(d(&seventh), pair("exempt", "low_value"), "{seventh}");
        assert!(seventh["sca"]["reason"].as_str().unwrap().contains("payment 1 since"), "{seventh}");
        shop.stop().await;
    }

    async fn the_low_value_run_stops_at_eur_100_cumulative_and_eur_30_each(app) {
        let shop = Shop::open(app, None, OnUnavailable::Fail).await;
        // A (attempts) is no SCA: it leaves the counters as they are.
        for _ in 0..3 {
            assert_eq!(d(&shop.pay_eur(DE_A, 3_000).await), pair("exempt", "low_value"));
        }
        let over = shop.pay_eur(DE_A, 3_000).await;
        assert_eq!(d(&over), pair("frictionless", "none"), "EUR 120 would pass EUR 100: {over}");
        assert_eq!(over["three_d_secure"]["trans_status"], "A");
        assert_eq!(over["status"], "succeeded");
        let to_100 = shop.pay_eur(DE_A, 1_000).await;
        assert_eq!(d(&to_100), pair("exempt", "low_value"), "exactly EUR 100: {to_100}");
        assert_eq!(d(&shop.pay_eur(DE_A, 1).await), pair("frictionless", "none"), "EUR 100.01");
        // Above EUR 30 a payment is never low value, whatever the counters.
        let big = shop.pay_eur("4000000000003055", 3_001).await;
        assert_eq!(d(&big), pair("frictionless", "none"), "{big}");
        assert_eq!(d(&shop.pay_eur("4000000000003055", 3_000).await), pair("exempt", "low_value"));
        shop.stop().await;
    }

    async fn other_currencies_convert_at_the_rate_table_rounded_up(app) {
        let shop = Shop::open(app, None, OnUnavailable::Fail).await;
        // USD 32.60 × 0.92 = EUR 29.992, rounded up to EUR 30.00: low value.
        let usd = shop.pay("4000000000003055", 3_260, "usd", json!({})).await;
        assert_eq!(d(&usd), pair("exempt", "low_value"), "{usd}");
        assert_eq!(usd["sca"]["amount_eur"], 3_000);
        // USD 32.61 is EUR 30.0012, rounded up to EUR 30.01: not.
        let over = shop.pay("4000000000003063", 3_261, "usd", json!({})).await;
        assert_eq!(d(&over), pair("frictionless", "none"), "{over}");
        assert_eq!(over["sca"]["amount_eur"], 3_001);
        // JPY (no decimals): 4,838 × 0.0062 = EUR 29.9956 → EUR 30.00.
        let jpy = shop.pay("4000000000003220", 4_838, "jpy", json!({})).await;
        assert_eq!(d(&jpy), pair("exempt", "low_value"), "{jpy}");
        assert_eq!(jpy["sca"]["amount_eur"], 3_000);
        // No rate for GBP: no threshold can be compared, no exemption.
        let gbp = shop.pay("4111111111111111", 100, "gbp", json!({})).await;
        assert_eq!(d(&gbp), pair("frictionless", "none"), "{gbp}");
        assert!(gbp["sca"]["reason"].as_str().unwrap().contains("no EUR rate"), "{gbp}");
        shop.stop().await;
    }

    async fn transaction_risk_analysis_follows_the_merchants_fraud_rate(app) {
        for (rate, threshold) in [("0.13%", 10_000), ("0.06%", 25_000), ("0.01%", 50_000)] {
            let shop = Shop::open(app, Some(rate), OnUnavailable::Fail).await;
            let at = shop.pay_eur(DE_Y, threshold).await;
            assert_eq!(d(&at), pair("exempt", "transaction_risk_analysis"), "{rate}: {at}");
            assert_eq!(at["three_d_secure"], Value::Null);
            let above = shop.pay_eur(DE_Y, threshold + 1).await;
            assert_eq!(d(&above), pair("frictionless", "none"), "{rate}: {above}");
            assert!(above["sca"]["reason"].as_str().unwrap().contains("above the"), "{above}");
            shop.stop().await;
        }
        // Above 0.13 %: no TRA at all.
        let risky = Shop::open(app, Some("0.14%"), OnUnavailable::Fail).await;
        let p = risky.pay_eur(DE_Y, 5_000).await;
        assert_eq!(d(&p), pair("frictionless", "none"), "{p}");
        assert!(p["sca"]["reason"].as_str().unwrap().contains("allows no transaction risk analysis"), "{p}");
        risky.stop().await;
        // The real-time risk analysis: a payment the fraud rules hold for
        // review is abnormal, so no TRA for it.
        let shop = Shop::open(app, Some("0.01%"), OnUnavailable::Fail).await;
        let r = shop.gateway.post("/v1/fraud/rules", &shop.sk, &json!({"rules": "rule mid : review when amount > 5_000"})).await;
        assert_eq!(r.status(), 200);
        assert_eq!(d(&shop.pay_eur(DE_Y, 5_000).await), pair("exempt", "transaction_risk_analysis"));
        let reviewed = shop.pay_eur(DE_Y, 5_001).await;
        assert_eq!(reviewed["risk"]["decision"], "review");
        assert_eq!(d(&reviewed), pair("frictionless", "none"), "{reviewed}");
        assert!(reviewed["sca"]["reason"].as_str().unwrap().contains("abnormal"), "{reviewed}");
        shop.stop().await;
    }

    async fn a_merchant_initiated_payment_is_out_of_scope_only_after_an_authenticated_first(app) {
        let shop = Shop::open(app, None, OnUnavailable::Fail).await;
        let off = json!({"off_session": true});
        // No authenticated payment of this card yet: decided like any other.
        let first = shop.pay(DE_A, 5_000, "eur", off.clone()).await;
        assert_eq!(d(&first), pair("frictionless", "none"), "{first}");
        assert_eq!(first["three_d_secure"]["trans_status"], "A");
        // An attempt is not an authentication: still not out of scope.
        assert_eq!(d(&shop.pay(DE_A, 5_000, "eur", off.clone()).await), pair("frictionless", "none"));
        // The customer authenticates (Y) once; the merchant's later payments
        // of the card are out of scope.
        let cit = shop.pay_eur(DE_Y, 5_000).await;
        assert_eq!(cit["three_d_secure"]["trans_status"], "Y");
        let mit = shop.pay(DE_Y, 5_000, "eur", off.clone()).await;
        assert_eq!(d(&mit), pair("out_of_scope", "merchant_initiated"), "{mit}");
        assert_eq!(mit["three_d_secure"], Value::Null);
        assert_eq!(mit["status"], "succeeded");
        // Even under `any` (no cardholder to authenticate).
        let any = shop.pay(DE_Y, 5_000, "eur", json!({"off_session": true,
            "payment_method_options": {"card": {"request_three_d_secure": "any"}}})).await;
        assert_eq!(d(&any), pair("out_of_scope", "merchant_initiated"), "{any}");
        shop.stop().await;
    }

    async fn one_leg_out_and_the_merchants_request_decide_too(app) {
        let shop = Shop::open(app, Some("0.01%"), OnUnavailable::Fail).await;
        // A US issuer with a German acquirer: one leg out.
        let us = shop.pay_eur(US_Y, 5_000).await;
        assert_eq!(d(&us), pair("out_of_scope", "one_leg_out"), "{us}");
        assert_eq!(us["three_d_secure"], Value::Null);
        let any = |value: &str| json!({"payment_method_options": {"card": {"request_three_d_secure": value}}});
        // `any`: 3-D Secure anyway, and no exemption requested.
        let us_any = shop.pay(US_Y, 5_000, "eur", any("any")).await;
        assert_eq!(d(&us_any), pair("frictionless", "none"), "{us_any}");
        assert_eq!(us_any["three_d_secure"]["trans_status"], "Y");
        let small_any = shop.pay("4000000000003055", 500, "eur", any("any")).await;
        assert_eq!(d(&small_any), pair("frictionless", "none"), "{small_any}");
        // `challenge`: the challenge page, even for EUR 5.
        let challenged = shop.pay("4000000000003063", 500, "eur", any("challenge")).await;
        assert_eq!(d(&challenged), pair("challenge", "none"), "{challenged}");
        assert_eq!(challenged["status"], "requires_action");
        assert_eq!(challenged["three_d_secure"]["trans_status"], "C");
        assert_eq!(challenged["next_action"]["type"], "redirect_to_url");
        // `automatic` is the default.
        assert_eq!(d(&shop.pay("4000000000003220", 500, "eur", any("automatic")).await), pair("exempt", "low_value"));
        // Anything else is refused at the edge, naming the field.
        let r = shop.try_pay(DE_Y, 500, "eur", json!({"payment_method_options": {"card": {"request_three_d_secure": 1}}})).await;
        assert_eq!(r.status(), 400, "not a string");
        for bad in [json!("always"), json!(null), json!("ANY")] {
            let r = shop.try_pay(DE_Y, 500, "eur", json!({"payment_method_options": {"card": {"request_three_d_secure": bad}}})).await;
            if bad.is_null() {
                assert_eq!(r.status(), 200, "null is the default");
                continue;
            }
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            assert_eq!(status, 400, "{bad}: {body}");
            assert_eq!(body["error"]["param"], "payment_method_options[card][request_three_d_secure]", "{body}");
        }
        let r = shop.try_pay(DE_Y, 500, "eur", json!({"payment_method_options": {"card": {"three_d": "any"}}})).await;
        assert_eq!(r.status(), 400);
        let r = shop.try_pay(DE_Y, 500, "eur", json!({"off_session": "yes"})).await;
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["param"], "off_session", "{body}");
        // The same options on a separate confirm.
        let token = shop.token(US_Y).await;
        let r = shop.gateway.post("/v1/payments", &shop.sk, &json!({"amount": 5_000, "currency": "eur", "payment_method": token})).await;
        let created: Value = r.json().await.unwrap();
        assert_eq!(created["sca"], Value::Null, "decided on confirm");
        let id = created["id"].as_str().unwrap();
        let r = shop.gateway.post(&format!("/v1/payments/{id}/confirm"), &shop.sk, &any("any")).await;
        let confirmed: Value = r.json().await.unwrap();
        assert_eq!(d(&confirmed), pair("frictionless", "none"), "{confirmed}");
        assert_eq!(confirmed["status"], "succeeded");
        shop.stop().await;
    }

    async fn a_challenge_from_the_fraud_rules_forces_the_challenge(app) {
        let shop = Shop::open(app, None, OnUnavailable::Fail).await;
        let r = shop.gateway.post("/v1/fraud/rules", &shop.sk, &json!({"rules": "rule c : challenge when amount > 100"})).await;
        assert_eq!(r.status(), 200);
        let p = shop.pay_eur(DE_Y, 1_000).await;
        assert_eq!(p["status"], "requires_action", "low value, but the rules ask for a challenge: {p}");
        assert_eq!(d(&p), pair("challenge", "none"));
        assert!(p["sca"]["reason"].as_str().unwrap().contains("fraud rules"), "{p}");
        assert_eq!(p["three_d_secure"]["trans_status"], "C");
        shop.stop().await;
    }
}
