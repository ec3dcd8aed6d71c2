//! The `step_up` response: a key suddenly used from a new country, with the
//! policy `new_country = step_up`, keeps working, but from then on every
//! payment made with it, on either replica and from any address, must pass
//! a 3-D Secure challenge (the SCA decision says why), until the step-up
//! ends; the merchant's other keys and other merchants are not affected.

use paywarden::domain::anomaly::{Detector, Response, Severity};
use paywarden::domain::api_key::KeyKind;
use paywarden::services::anomaly::AnomalyPolicy;
use serde_json::{json, Value};

use super::{behind_proxy, get_from};
use crate::support::{AppOptions, Replica};

fn options() -> AppOptions {
    let mut policy = AnomalyPolicy::default();
    policy
        .responses
        .insert((Detector::NewCountry, Severity::Warning), Response::StepUp);
    behind_proxy(policy)
}

/// A confirmed 20.00 EUR payment with `sk` from the client `ip`.
async fn pay_from(replica: &Replica, ip: &str, sk: &str) -> Value {
    let post = |path: &str, body: Value| {
        replica
            .client
            .post(replica.url(path))
            .bearer_auth(sk)
            .header("x-forwarded-for", ip)
            .json(&body)
            .send()
    };
    let card = json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}});
    let token: Value = post("/v1/tokens", card).await.unwrap().json().await.unwrap();
    let body = json!({"amount": 2000, "currency": "eur", "payment_method": token["id"], "confirm": true,
                      "return_url": "https://shop.example/done"});
    let r = post("/v1/payments", body).await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn challenged(p: &Value) -> bool {
    p["status"] == "requires_action" && p["sca"]["decision"] == "challenge"
}

/// Waits (at most 5 s) until `replica` challenges payments of `sk`: it
/// reads the other replicas' step-ups every second.
async fn challenged_on(replica: &Replica, ip: &str, sk: &str) -> Value {
    for _ in 0..10 {
        let p = pay_from(replica, ip, sk).await;
        if challenged(&p) {
            return p;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    panic!("no step-up on this replica");
}

with_options! {
    async fn a_key_used_from_a_new_country_must_step_up_its_payments_on_every_replica(app) {
        let m = app.merchant("Stepping Up").await;
        let key = app.key(&m, KeyKind::Secret, &[]).await;
        let other = app.key(&m, KeyKind::Secret, &[]).await;
        let (sk, other) = (key.secret.expose().to_owned(), other.secret.expose().to_owned());
        let (_, stranger) = app.merchant_with_secret("Elsewhere").await;
        let mut a = app.spawn_replica().await;
        let mut b = app.spawn_replica().await;
        // The key's usual country (8.8.8.8: United States): no challenge.
        let before = pay_from(&a, "8.8.8.8", &sk).await;
        assert!(!challenged(&before), "{before}");
        assert_eq!(get_from(&b, "8.8.8.8", "/v1/merchant", &sk).await.status(), 200);

        // Suddenly from Germany: the request itself goes through…
        assert_eq!(get_from(&a, "2003::1", "/v1/merchant", &sk).await.status(), 200);
        // …and its payments must be authenticated, from any address, on
        // this replica at once and on the other after it reads the step-up.
        let p = pay_from(&a, "8.8.8.8", &sk).await;
        assert!(challenged(&p), "{p}");
        assert!(p["sca"]["reason"].as_str().unwrap().contains("step-up"), "{p}");
        assert!(p["next_action"]["url"].as_str().is_some(), "{p}");
        let p = challenged_on(&b, "198.51.100.7", &sk).await;
        assert!(p["sca"]["reason"].as_str().unwrap().contains("step-up"), "{p}");

        // The merchant's other key and another merchant are not stepped up.
        for key in [&other, &stranger] {
            let p = pay_from(&b, "8.8.8.8", key).await;
            assert!(!challenged(&p), "{p}");
        }

        // The alert says so, with the step-up's end.
        let alerts: Value = b.get("/v1/anomalies", &other).await.json().await.unwrap();
        let alert = &alerts["data"][0];
        assert_eq!(alert["detector"], "new_country", "{alerts}");
        assert_eq!(alert["response"], "step_up");
        let until = alert["step_up_until"].as_i64().unwrap();
        assert!(until > alert["created"].as_i64().unwrap() + 3000, "an hour by default: {alert}");
        assert_eq!(alert["throttled_until"], Value::Null);
        a.stop().await;
        b.stop().await;
    }
}
