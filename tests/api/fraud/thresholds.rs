//! Score thresholds per merchant through the rules API, on both backends:
//! validated (a score from 1 to 100, review below block, both together,
//! each refusal naming its field), saved with each version and in force
//! from the next confirm, kept when a version is saved without them,
//! brought back with an older version, audited; a key of the other mode or
//! merchant, a reader, a publishable key and no key change nothing.

use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::permission::Permission;
use serde_json::{json, Value};

use super::secret_key;
use crate::both_backends;
use crate::support::{new_key, TestApp};

async fn save(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.post("/v1/fraud/rules", key, body).await
}

async fn pay(app: &TestApp, sk: &str, amount: i64) -> Value {
    let r = app
        .post(
            "/v1/tokens",
            sk,
            &json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}),
        )
        .await;
    let token: Value = r.json().await.unwrap();
    let r = app
        .post(
            "/v1/payments",
            sk,
            &json!({"amount": amount, "currency": "usd", "payment_method": token["id"], "confirm": true}),
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

const RULE: &str = "rule mid : score 50 when amount > 100";

both_backends! {
    async fn bad_thresholds_are_refused_naming_the_field(app) {
        let (_, sk) = app.merchant_with_secret("Thresholds checked").await;
        for (body, param, code) in [
            (json!({"rules": RULE, "review_at": 0, "block_at": 50}), "review_at", "parameter_invalid"),
            (json!({"rules": RULE, "review_at": 50, "block_at": 101}), "block_at", "parameter_invalid"),
            (json!({"rules": RULE, "review_at": 70, "block_at": 70}), "review_at", "parameter_invalid"),
            (json!({"rules": RULE, "review_at": 80, "block_at": 60}), "review_at", "parameter_invalid"),
            (json!({"rules": RULE, "review_at": 40}), "block_at", "parameter_missing"),
            (json!({"rules": RULE, "block_at": 40}), "review_at", "parameter_missing"),
        ] {
            for path in ["/v1/fraud/rules", "/v1/fraud/rules/dry_run"] {
                let r = app.post(path, &sk, &body).await;
                assert_eq!(r.status(), 400, "{path} {body}");
                let e: Value = r.json().await.unwrap();
                assert_eq!(e["error"]["param"], param, "{path} {body}: {e}");
                assert_eq!(e["error"]["code"], code, "{e}");
            }
        }
        let r = save(app, &sk, &json!({"rules": RULE, "review_at": "40", "block_at": 60})).await;
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["param"], "review_at");
        let shown: Value = app.get("/v1/fraud/rules", &sk).await.json().await.unwrap();
        assert_eq!(shown["active"], Value::Null, "nothing refused was stored");
    }

    async fn thresholds_decide_from_the_next_confirm_and_stay_with_their_version(app) {
        let (merchant, sk) = app.merchant_with_secret("Thresholds").await;
        let r = save(app, &sk, &json!({"rules": RULE, "review_at": 40, "block_at": 60})).await;
        assert_eq!(r.status(), 200);
        let saved: Value = r.json().await.unwrap();
        assert_eq!((saved["active"]["review_at"].clone(), saved["active"]["block_at"].clone()), (json!(40), json!(60)));
        let p = pay(app, &sk, 1_000).await;
        assert_eq!(p["risk"]["decision"], "review", "{p}");
        assert_eq!(p["status"], "requires_capture");
        // A new text without thresholds keeps them.
        let r = save(app, &sk, &json!({"rules": "rule mid : score 60 when amount > 100"})).await;
        let saved: Value = r.json().await.unwrap();
        assert_eq!((saved["active"]["version"].clone(), saved["active"]["review_at"].clone()), (json!(2), json!(40)));
        let p = pay(app, &sk, 1_000).await;
        assert_eq!(p["risk"]["decision"], "block", "{p}");
        assert_eq!(p["decline_code"], "fraudulent");
        // The defaults again, then version 1 back with its own.
        let r = save(app, &sk, &json!({"rules": RULE, "review_at": 65, "block_at": 85})).await;
        assert_eq!(r.status(), 200);
        assert_eq!(pay(app, &sk, 1_000).await["risk"]["decision"], "allow");
        let r = app.post("/v1/fraud/rules/1/activate", &sk, &json!({})).await;
        let shown: Value = r.json().await.unwrap();
        assert_eq!((shown["active"]["review_at"].clone(), shown["active"]["block_at"].clone()), (json!(40), json!(60)));
        assert_eq!(pay(app, &sk, 1_000).await["risk"]["decision"], "review");
        // A dry run with candidate thresholds.
        let r = app.post("/v1/fraud/rules/dry_run", &sk, &json!({"rules": RULE, "review_at": 10, "block_at": 20})).await;
        let run: Value = r.json().await.unwrap();
        assert_eq!(run["decisions"]["block"], run["payments"], "{run}");
        // Audited with the thresholds.
        let trail = app.wait_for_audit(|t| t.iter().any(|r| r.event.action == "fraud.rules_activated")).await;
        let reasons: Vec<String> = trail.iter()
            .filter(|r| r.event.merchant_id.as_deref() == Some(merchant.as_str()) && r.event.action.starts_with("fraud.rules_"))
            .filter_map(|r| r.event.reason.clone()).collect();
        assert!(reasons.iter().any(|r| r.contains("saved and activated") && r.contains("review at 40, block at 60")), "{reasons:?}");
        assert!(reasons.iter().any(|r| r.contains("activated (review at 40, block at 60)")), "{reasons:?}");
    }

    async fn only_a_writer_of_the_mode_changes_thresholds(app) {
        let (merchant, sk) = app.merchant_with_secret("Guarded thresholds").await;
        let live = secret_key(app, &merchant, Mode::Live).await;
        let reader = app.key(&merchant, KeyKind::Restricted, &[Permission::FraudRead]).await.secret.expose().to_owned();
        let pk = app.issue(new_key(&merchant, KeyKind::Publishable, &[])).await.secret.expose().to_owned();
        let (_, other) = app.merchant_with_secret("Other thresholds").await;
        let r = save(app, &sk, &json!({"rules": RULE, "review_at": 40, "block_at": 60})).await;
        assert_eq!(r.status(), 200);
        let change = json!({"rules": RULE, "review_at": 1, "block_at": 2});
        for key in [&reader, &pk] {
            assert_eq!(save(app, key, &change).await.status(), 403);
        }
        assert_eq!(save(app, "sk_test_not_a_key", &change).await.status(), 401);
        // The other mode's and another merchant's sets are their own.
        assert_eq!(save(app, &live, &change).await.status(), 200);
        assert_eq!(save(app, &other, &change).await.status(), 200);
        assert_eq!(app.post("/v1/fraud/rules/1/activate", &other, &json!({})).await.status(), 200);
        let shown: Value = app.get("/v1/fraud/rules", &sk).await.json().await.unwrap();
        assert_eq!((shown["active"]["review_at"].clone(), shown["active"]["block_at"].clone()), (json!(40), json!(60)));
        assert_eq!(shown["versions"].as_array().unwrap().len(), 1);
    }
}
