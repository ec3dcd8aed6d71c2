//! The dry run: a candidate rule set replayed over the recent confirmed
//! payments of the key's mode, counting each decision and naming the
//! payments it would change; nothing stored; refused to keys that may not
//! both write rules and read payments.

use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::permission::Permission;
use serde_json::{json, Value};

use super::screening::shop;
use super::secret_key;
use crate::both_backends;

both_backends! {
    async fn a_candidate_is_replayed_over_recent_payments_and_nothing_changes(app) {
        let shop = shop(app, Mode::Test).await;
        let small = shop.pay(1_000, "a@example.com").await;
        let big = shop.pay(60_000, "b@example.com").await;
        shop.rules("rule mid : review when amount > 10_000").await;
        let mid = shop.pay(20_000, "c@example.com").await;
        assert_eq!(mid["risk"]["decision"], "review");
        let candidate = json!({ "rules": "rule big : block when amount >= 50_000\nrule mid : review when amount > 10_000" });
        let r = shop.gateway.post("/v1/fraud/rules/dry_run", &shop.sk, &candidate).await;
        assert_eq!(r.status(), 200);
        let run: Value = r.json().await.unwrap();
        assert_eq!(run["object"], "fraud_dry_run");
        assert_eq!(run["payments"], 3, "{run}");
        assert_eq!(run["decisions"], json!({"allow": 1, "review": 1, "challenge": 0, "block": 1}));
        assert_eq!(run["changed"], 1);
        assert_eq!(run["changes"], json!([{"payment": big["id"], "from": "allow", "to": "block"}]));
        assert_eq!(small["status"], "succeeded");
        // Nothing was stored or changed.
        let rules: Value = shop.gateway.get("/v1/fraud/rules", &shop.sk).await.json().await.unwrap();
        assert_eq!(rules["versions"].as_array().unwrap().len(), 1);
        let after: Value = shop.gateway.get(&format!("/v1/payments/{}", big["id"].as_str().unwrap()), &shop.sk)
            .await.json().await.unwrap();
        assert_eq!(after["status"], "succeeded");
        // Refused like a save when it does not parse.
        let r = shop.gateway.post("/v1/fraud/rules/dry_run", &shop.sk, &json!({ "rules": "rule x : block when" })).await;
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invalid_rules");
        // The other mode replays its own payments: none.
        let live = secret_key(app, &shop.merchant, Mode::Live).await;
        let r = shop.gateway.post("/v1/fraud/rules/dry_run", &live, &candidate).await;
        assert_eq!(r.status(), 200);
        let run: Value = r.json().await.unwrap();
        assert_eq!((run["payments"].clone(), run["changed"].clone()), (json!(0), json!(0)));
        // A key that may write rules but not read payments could learn from
        // the matches which customers paid: refused, as are keys without
        // fraud:write and publishable keys.
        let writer = app.key(&shop.merchant, KeyKind::Restricted, &[Permission::FraudWrite]).await;
        let reader = app.key(&shop.merchant, KeyKind::Restricted, &[Permission::PaymentsRead, Permission::FraudRead]).await;
        let both = app.key(&shop.merchant, KeyKind::Restricted, &[Permission::FraudWrite, Permission::PaymentsRead]).await;
        let pk = app.key(&shop.merchant, KeyKind::Publishable, &[]).await;
        for key in [&writer, &reader, &pk] {
            let r = shop.gateway.post("/v1/fraud/rules/dry_run", key.secret.expose(), &candidate).await;
            assert_eq!(r.status(), 403);
        }
        let r = shop.gateway.post("/v1/fraud/rules/dry_run", both.secret.expose(), &candidate).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["changed"], 1);
        shop.stop().await;
    }
}
