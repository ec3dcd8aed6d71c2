//! Rule sets and lists through the API: validation, versions, activation,
//! the audit trail, and every way a key that must not read or change them is
//! refused.

use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::permission::Permission;
use serde_json::{json, Value};

use super::{save_rules, secret_key};
use crate::both_backends;
use crate::support::new_key;

fn sha256(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

both_backends! {
    async fn rules_are_validated_with_line_and_column(app) {
        let (_, sk) = app.merchant_with_secret("Validated").await;
        let text = "rule ok : block when amount > 100\nrule bad : block when amount > \"many\"\n";
        let r = app.post("/v1/fraud/rules", &sk, &json!({ "rules": text })).await;
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_rules", "{body}");
        assert_eq!(body["error"]["param"], "rules");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("line 2, column"), "{message}");
        assert!(!message.contains("many"), "no literal of the merchant's echoed: {message}");
        // A list that does not exist is refused too.
        let r = app.post("/v1/fraud/rules", &sk, &json!({ "rules": "rule v : allow when customer.email in @vips" })).await;
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invalid_rules");
        // Nothing was stored.
        let r = app.get("/v1/fraud/rules", &sk).await;
        assert_eq!(r.status(), 200);
        let rules: Value = r.json().await.unwrap();
        assert_eq!(rules["active"], Value::Null);
        assert_eq!(rules["versions"], json!([]));
        // Unknown fields are refused naming them.
        let r = app.post("/v1/fraud/rules", &sk, &json!({ "rules": "", "version": 3 })).await;
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["param"], "version");
    }

    async fn versions_are_kept_activated_and_audited_with_their_hash(app) {
        let (merchant, sk) = app.merchant_with_secret("Versions").await;
        let one = "rule big : block when amount > 100_000";
        let two = "rule big : review when amount > 100_000\nrule prepaid : score 30 when card.funding == \"prepaid\"";
        let first = save_rules(app, &sk, one).await;
        assert_eq!(first["object"], "fraud_rules");
        assert_eq!(first["livemode"], false);
        assert_eq!(first["active"]["version"], 1);
        assert_eq!(first["active"]["rules"], one);
        assert_eq!(first["active"]["sha256"], sha256(one));
        assert!(first["active"]["created_by"].as_str().unwrap().starts_with("key_"), "{first}");
        let second = save_rules(app, &sk, two).await;
        assert_eq!(second["active"]["version"], 2);
        let versions: Vec<(i64, bool)> = second["versions"].as_array().unwrap().iter()
            .map(|v| (v["version"].as_i64().unwrap(), v["active"].as_bool().unwrap())).collect();
        assert_eq!(versions, [(2, true), (1, false)]);
        let r = app.post("/v1/fraud/rules/1/activate", &sk, &json!({})).await;
        assert_eq!(r.status(), 200);
        let activated: Value = r.json().await.unwrap();
        assert_eq!(activated["active"]["version"], 1);
        assert_eq!(activated["active"]["rules"], one);
        let shown: Value = app.get("/v1/fraud/rules", &sk).await.json().await.unwrap();
        assert_eq!(shown["active"]["version"], 1);
        for missing in ["3", "0", "-1", "abc", "01x"] {
            let r = app.post(&format!("/v1/fraud/rules/{missing}/activate"), &sk, &json!({})).await;
            assert_eq!(r.status(), 404, "{missing}");
        }
        let trail = app.wait_for_audit(|t| t.iter().any(|r| r.event.action == "fraud.rules_activated")).await;
        let ours: Vec<_> = trail.iter()
            .filter(|r| r.event.action.starts_with("fraud.") && r.event.merchant_id.as_deref() == Some(merchant.as_str()))
            .map(|r| (r.event.action.as_str(), r.event.reason.clone().unwrap_or_default()))
            .collect();
        assert_eq!(ours.len(), 3, "{ours:?}");
        assert_eq!(ours[0].0, "fraud.rules_saved");
        assert!(ours[0].1.contains(&sha256(one)), "{ours:?}");
        assert!(ours[1].1.contains(&sha256(two)), "{ours:?}");
        assert_eq!(
            ours[2],
            ("fraud.rules_activated", format!("version 1 sha256 {} activated (review at 65, block at 85)", sha256(one)))
        );
    }

    async fn lists_are_replaced_whole_and_audited_by_name_and_size(app) {
        let (merchant, sk) = app.merchant_with_secret("Lists").await;
        let r = app.post("/v1/fraud/lists/trusted_customers", &sk,
            &json!({ "values": ["Jenny@Example.com", "bob@example.com", "jenny@example.com"] })).await;
        assert_eq!(r.status(), 200);
        let list: Value = r.json().await.unwrap();
        assert_eq!(list["object"], "fraud_list");
        assert_eq!(list["values"], json!(["bob@example.com", "jenny@example.com"]));
        let r = app.post("/v1/fraud/lists/trusted_customers", &sk, &json!({ "values": ["carol@example.com"] })).await;
        assert_eq!(r.status(), 200);
        let shown: Value = app.get("/v1/fraud/lists/trusted_customers", &sk).await.json().await.unwrap();
        assert_eq!(shown["values"], json!(["carol@example.com"]));
        assert_eq!(app.get("/v1/fraud/lists/nobody", &sk).await.status(), 404);
        assert_eq!(app.get("/v1/fraud/lists/Bad-Name", &sk).await.status(), 404);
        let r = app.post("/v1/fraud/lists/bad", &sk, &json!({ "values": ["ok", ""] })).await;
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["param"], "values[1]");
        let trail = app.wait_for_audit(|t| t.iter().filter(|r| r.event.action == "fraud.list_replaced").count() >= 2).await;
        let reasons: Vec<_> = trail.iter()
            .filter(|r| r.event.action == "fraud.list_replaced" && r.event.merchant_id.as_deref() == Some(merchant.as_str()))
            .map(|r| (r.event.resource.clone().unwrap_or_default(), r.event.reason.clone().unwrap_or_default()))
            .collect();
        assert_eq!(reasons, [
            ("fraud_list/trusted_customers".to_owned(), "2 values".to_owned()),
            ("fraud_list/trusted_customers".to_owned(), "1 values".to_owned()),
        ]);
        assert!(trail.iter().all(|r| !serde_json::to_string(&r.event).unwrap().contains("example.com")),
            "no list value in the audit trail");
    }

    async fn a_key_of_one_mode_never_sees_or_changes_the_other_modes_rules(app) {
        let merchant = app.merchant("Two worlds").await;
        let test = secret_key(app, &merchant, Mode::Test).await;
        let live = secret_key(app, &merchant, Mode::Live).await;
        // Test mode gets one version, live mode two, each with a list of its own.
        for (writer, reader, list, versions) in [(&test, &live, "only_test", 1), (&live, &test, "only_live", 2)] {
            let before: Value = app.get("/v1/fraud/rules", reader).await.json().await.unwrap();
            let r = app.post(&format!("/v1/fraud/lists/{list}"), writer, &json!({ "values": ["x@example.com"] })).await;
            assert_eq!(r.status(), 200);
            let rules = format!("rule here : allow when customer.email in @{list}");
            let mut version = 0;
            for _ in 0..versions {
                let saved = save_rules(app, writer, &rules).await;
                version = saved["active"]["version"].as_i64().unwrap();
            }
            assert_eq!(version, versions);
            let after: Value = app.get("/v1/fraud/rules", reader).await.json().await.unwrap();
            assert_eq!(after, before, "the other mode's rules are unchanged and unseen");
            assert_eq!(app.get(&format!("/v1/fraud/lists/{list}"), reader).await.status(), 404);
            let r = app.post(&format!("/v1/fraud/rules/{versions}/activate"), reader, &json!({})).await;
            assert_eq!(r.status(), 404, "a version of the other mode is like a missing one");
            // Rules of the reader's mode cannot name the writer's list.
            let r = app.post("/v1/fraud/rules", reader, &json!({ "rules": rules })).await;
            assert_eq!(r.status(), 400);
        }
        let shown_live: Value = app.get("/v1/fraud/rules", &live).await.json().await.unwrap();
        assert_eq!(shown_live["livemode"], true);
        assert_eq!(shown_live["versions"].as_array().unwrap().len(), 2);
        let shown_test: Value = app.get("/v1/fraud/rules", &test).await.json().await.unwrap();
        assert_eq!(shown_test["livemode"], false);
        assert_eq!(shown_test["versions"].as_array().unwrap().len(), 1);
        // Another merchant sees nothing either.
        let (_, other) = app.merchant_with_secret("Elsewhere").await;
        let theirs: Value = app.get("/v1/fraud/rules", &other).await.json().await.unwrap();
        assert_eq!(theirs["active"], Value::Null);
        assert_eq!(app.post("/v1/fraud/rules/1/activate", &other, &json!({})).await.status(), 404);
    }

    async fn keys_without_fraud_permissions_and_publishable_keys_are_refused(app) {
        let (merchant, sk) = app.merchant_with_secret("Guarded").await;
        save_rules(app, &sk, "rule big : block when amount > 100_000").await;
        let reader = app.key(&merchant, KeyKind::Restricted, &[Permission::FraudRead]).await;
        let reader = reader.secret.expose().to_owned();
        let payments_only = app.key(&merchant, KeyKind::Restricted, &[Permission::PaymentsWrite]).await;
        let payments_only = payments_only.secret.expose().to_owned();
        let writer = app.key(&merchant, KeyKind::Restricted, &[Permission::FraudWrite]).await;
        let writer = writer.secret.expose().to_owned();
        let pk = app.issue(new_key(&merchant, KeyKind::Publishable, &[])).await;
        let pk = pk.secret.expose().to_owned();
        let change = json!({ "rules": "rule all : allow when amount > 0" });
        let list = json!({ "values": ["x"] });
        // A reader reads, and changes nothing.
        assert_eq!(app.get("/v1/fraud/rules", &reader).await.status(), 200);
        for (path, body) in [("/v1/fraud/rules", &change), ("/v1/fraud/rules/1/activate", &json!({})), ("/v1/fraud/lists/x", &list)] {
            for key in [&reader, &payments_only, &pk] {
                let r = app.post(path, key, body).await;
                assert_eq!(r.status(), 403, "{path}");
                let e: Value = r.json().await.unwrap();
                assert_eq!(e["error"]["type"], "permission_error", "{e}");
            }
        }
        for key in [&payments_only, &pk] {
            assert_eq!(app.get("/v1/fraud/rules", key).await.status(), 403);
            assert_eq!(app.get("/v1/fraud/lists/x", key).await.status(), 403);
        }
        // fraud:write implies fraud:read.
        assert_eq!(app.post("/v1/fraud/lists/x", &writer, &list).await.status(), 200);
        assert_eq!(app.get("/v1/fraud/lists/x", &writer).await.status(), 200);
        // A key that is not one: 401 before anything is read (three
        // failures, below the lockout's threshold).
        let not_a_key = "sk_test_not_a_key";
        assert_eq!(app.get("/v1/fraud/rules", not_a_key).await.status(), 401);
        assert_eq!(app.post("/v1/fraud/rules", not_a_key, &change).await.status(), 401);
        assert_eq!(app.post("/v1/fraud/lists/x", not_a_key, &list).await.status(), 401);
        let shown: Value = app.get("/v1/fraud/rules", &sk).await.json().await.unwrap();
        assert_eq!(shown["versions"].as_array().unwrap().len(), 1, "nothing refused was stored");
        assert_eq!(shown["active"]["rules"], "rule big : block when amount > 100_000");
    }
}
