//! Freezing one API key from the operator CLI: refused (403 `key_frozen`)
//! from the next request on, on another replica too, without locking out
//! the address or touching the merchant's other keys; a payment waiting for
//! its confirmation is left exactly as it was; unfreezing is the operator's.

use serde_json::{json, Value};

use paywarden::domain::api_key::KeyKind;
use paywarden::domain::permission::Permission;

use crate::both_backends;
use crate::payments::error_of;
use crate::support::TestApp;

fn cli_fails_with(app: &TestApp, args: &[&str], needle: &str) {
    let mut args = args.to_vec();
    args.push("--json");
    let out = app.cli(&args);
    assert!(!out.status.success(), "{args:?} should fail");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = v["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains(needle), "{args:?}: {message}");
}

both_backends! {
    async fn a_frozen_key_is_refused_on_every_replica_until_the_operator_unfreezes_it(app) {
        let m = app.merchant("Key Freeze Shop").await;
        let frozen_key = app.key(&m, KeyKind::Secret, &[]).await;
        let sibling = app.key(&m, KeyKind::Restricted, &[Permission::PaymentsRead]).await;
        let sk = frozen_key.secret.expose().to_owned();
        let mut other = app.spawn_replica().await;
        for replica in [&app.main, &other] {
            assert_eq!(replica.get("/v1/merchant", &sk).await.status(), 200);
        }
        // A payment created, waiting for its confirmation when the freeze comes.
        let token: Value = app
            .post("/v1/tokens", &sk, &json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}}))
            .await
            .json()
            .await
            .unwrap();
        let created: Value = app
            .post("/v1/payments", &sk, &json!({"amount": 1200, "currency": "usd", "payment_method": token["id"], "return_url": "https://shop.example/done"}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(created["status"], "requires_confirmation");
        let payment = created["id"].as_str().unwrap().to_owned();

        let frozen = app.cli_json(&["keys", "freeze", frozen_key.key.id.as_str(), "--reason", "leaked in a log"]);
        assert_eq!(frozen["id"], frozen_key.key.id.as_str());
        assert_eq!(frozen["frozen"]["reason"], "leaked in a log");
        assert!(frozen["frozen"]["at"].is_i64());
        assert!(!frozen.to_string().contains(&sk), "the key itself is never printed");

        // From the very next request, on both replicas; more refusals than
        // the lockout threshold, none counted as a failure.
        for _ in 0..6 {
            for replica in [&other, &app.main] {
                let (status, error) = error_of(replica.get("/v1/merchant", &sk).await).await;
                assert_eq!((status, error["code"].as_str()), (403, Some("key_frozen")));
                assert!(!error["message"].as_str().unwrap().contains(&sk));
            }
        }
        let (status, error) = error_of(app.post(&format!("/v1/payments/{payment}/confirm"), &sk, &json!({})).await).await;
        assert_eq!((status, error["code"].as_str()), (403, Some("key_frozen")));
        // The merchant's other keys, from the same address, are untouched.
        assert_eq!(other.get("/v1/payments", sibling.secret.expose()).await.status(), 200);
        let shown: Value = other.get(&format!("/v1/payments/{payment}"), sibling.secret.expose()).await.json().await.unwrap();
        assert_eq!(shown["status"], "requires_confirmation", "the payment waited, untouched");

        cli_fails_with(app, &["keys", "freeze", frozen_key.key.id.as_str()], "already frozen");
        cli_fails_with(app, &["keys", "freeze", frozen_key.key.id.as_str(), "--reason", "bad\u{202E}text"], "reason");
        cli_fails_with(app, &["keys", "freeze", "key_doesnotexistdoesnotexist"], "");
        cli_fails_with(app, &["keys", "unfreeze", sibling.key.id.as_str()], "not frozen");

        let thawed = app.cli_json(&["key", "unfreeze", frozen_key.key.id.as_str(), "--reason", "rotated the log"]);
        assert_eq!(thawed["frozen"], Value::Null);
        for replica in [&app.main, &other] {
            assert_eq!(replica.get("/v1/merchant", &sk).await.status(), 200);
        }
        let confirmed: Value = other.post(&format!("/v1/payments/{payment}/confirm"), &sk, &json!({})).await.json().await.unwrap();
        assert!(["succeeded", "requires_capture"].contains(&confirmed["status"].as_str().unwrap()), "{confirmed}");

        let audit = app
            .wait_for_audit(|a| a.iter().filter(|r| r.event.action == "auth.key_frozen").count() >= 13)
            .await;
        let of = |action: &str| audit.iter().filter(|r| r.event.action == action).collect::<Vec<_>>();
        let froze = of("api_key.frozen");
        assert_eq!(froze.len(), 1);
        assert_eq!(froze[0].event.reason.as_deref(), Some("leaked in a log"));
        assert_eq!(froze[0].event.key_id.as_deref(), Some(frozen_key.key.id.as_str()));
        assert_eq!(of("api_key.unfrozen")[0].event.reason.as_deref(), Some("rotated the log"));
        let refused = of("auth.key_frozen");
        assert_eq!(refused.len(), 13, "every refused request is audited");
        assert!(refused.iter().all(|r| r.event.key_id.as_deref() == Some(frozen_key.key.id.as_str())));
        assert!(of("auth.failed").is_empty() && of("auth.lockout").is_empty());
        // The metrics count the refusals by their reason.
        let metrics = app.main.client.get(format!("{}/metrics", app.main.operator)).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains(r#"reason="key_frozen""#), "{metrics}");
        other.stop().await;
    }
}
