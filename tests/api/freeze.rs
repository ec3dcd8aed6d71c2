//! Incident containment from the operator CLI: freezing a merchant refuses
//! every one of its keys (and its pending 3-D Secure approvals) at once,
//! without locking out the client address; unfreezing restores them; revoking
//! all of a merchant's keys leaves other merchants alone; `audit verify`
//! reports the head hash to record outside the database.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use paywarden::domain::api_key::KeyKind;
use paywarden::domain::permission::Permission;

use crate::both_backends;
use crate::payments::{error_of, pay};
use crate::support::TestApp;

/// Posts the sandbox challenge page's form without following the redirect.
async fn answer_challenge(app: &TestApp, payment: &Value, decision: &str) -> reqwest::Response {
    let url = payment["next_action"]["url"].as_str().unwrap();
    let challenge = url.split("challenge=").nth(1).unwrap();
    let id = payment["id"].as_str().unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&app.cert_pem).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let body = if decision == "approve" {
        crate::sca::approving_form(app.client(), url).await
    } else {
        format!("challenge={challenge}&decision={decision}")
    };
    client
        .post(app.url(&format!("/sandbox/3ds/{id}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

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
    async fn a_frozen_merchant_is_refused_everywhere_until_unfrozen(app) {
        let m = app.merchant("Frozen Shop").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let pk = app.key(&m, KeyKind::Publishable, &[]).await;
        let rk = app.key(&m, KeyKind::Restricted, &[Permission::PaymentsRead]).await;
        let (_, other_sk) = app.merchant_with_secret("Bystander").await;
        let sk = sk.secret.expose().to_owned();
        let r = app.post("/v1/merchant", &sk, &json!({ "element_origins": ["https://shop.example"] })).await;
        assert_eq!(r.status(), 200);
        let page = |key: String| {
            app.client()
                .get(app.url(&format!("/elements/card?key={key}&origin=https://shop.example")))
                .send()
        };
        assert_eq!(page(pk.secret.expose().to_owned()).await.unwrap().status(), 200);
        assert_eq!(app.get("/v1/payments", rk.secret.expose()).await.status(), 200);
        // A payment waiting for its customer's 3-D Secure answer when the freeze comes.
        let waiting = pay(app, &sk, "4000002760003184", 2500, "automatic").await;
        assert_eq!(waiting["status"], "requires_action");

        let frozen = app.cli_json(&["merchant", "freeze", m.as_str(), "--reason", "  card testing burst  "]);
        assert_eq!(frozen["frozen"]["reason"], "card testing burst");
        assert!(frozen["frozen"]["at"].is_i64());

        // Every kind of key of the merchant, from the next request on; more
        // requests than the lockout threshold, none counted as a failure.
        for _ in 0..6 {
            for key in [&sk, rk.secret.expose()] {
                let (status, error) = error_of(app.get("/v1/payments", key).await).await;
                assert_eq!((status, error["code"].as_str()), (403, Some("merchant_frozen")));
            }
        }
        let (status, error) = error_of(
            app.post("/v1/tokens", pk.secret.expose(), &json!({"card": {"number": "4242424242424242",
                "exp_month": 12, "exp_year": 2035, "cvc": "123"}})).await,
        ).await;
        assert_eq!((status, error["code"].as_str()), (403, Some("merchant_frozen")));
        assert_eq!(page(pk.secret.expose().to_owned()).await.unwrap().status(), 403);
        assert_eq!(app.get("/v1/merchant", &other_sk).await.status(), 200, "the address is not locked out");

        // The customer's late approval authorizes nothing while frozen.
        let answer = answer_challenge(app, &waiting, "approve").await;
        assert_eq!(answer.status(), 409);
        let status: (String,) = sqlx::query_as("SELECT status FROM payments WHERE id = $1")
            .bind(waiting["id"].as_str().unwrap())
            .fetch_one(app.store.reader())
            .await
            .unwrap();
        assert_eq!(status.0, "requires_action");

        let shown = app.cli_json(&["merchant", "show", m.as_str()]);
        assert_eq!(shown["frozen"]["reason"], "card testing burst");
        let listed = app.cli_json(&["merchant", "list"]);
        let row = listed["data"].as_array().unwrap().iter().find(|x| x["id"] == m.as_str()).unwrap().clone();
        assert_eq!(row["frozen"]["reason"], "card testing burst");
        cli_fails_with(app, &["merchant", "freeze", m.as_str(), "--reason", "again"], "already frozen");
        cli_fails_with(app, &["merchant", "freeze", m.as_str(), "--reason", "bad\u{202E}text"], "reason");
        cli_fails_with(app, &["merchant", "freeze", "mer_doesnotexistdoesnotexist", "--reason", "x"], "");

        let thawed = app.cli_json(&["merchant", "unfreeze", m.as_str(), "--reason", "false alarm"]);
        assert_eq!(thawed["frozen"], Value::Null);
        assert_eq!(app.get("/v1/payments", &sk).await.status(), 200);
        assert_eq!(app.get("/v1/payments", rk.secret.expose()).await.status(), 200);
        assert_eq!(page(pk.secret.expose().to_owned()).await.unwrap().status(), 200);
        assert_eq!(answer_challenge(app, &waiting, "approve").await.status(), 303, "the payment waited");
        cli_fails_with(app, &["merchant", "unfreeze", m.as_str(), "--reason", "twice"], "not frozen");

        // Refusals reach the trail through the audit writer's queue.
        let audit = app
            .wait_for_audit(|a| a.iter().filter(|r| r.event.action == "auth.merchant_frozen").count() >= 14)
            .await;
        let of = |action: &str| audit.iter().filter(|r| r.event.action == action).collect::<Vec<_>>();
        let froze = of("merchant.frozen");
        assert_eq!(froze.len(), 1);
        assert_eq!(froze[0].event.reason.as_deref(), Some("card testing burst"));
        assert_eq!(of("merchant.unfrozen")[0].event.reason.as_deref(), Some("false alarm"));
        let refused = of("auth.merchant_frozen");
        assert_eq!(refused.len(), 14, "every refused request is audited");
        assert!(refused.iter().all(|r| r.event.merchant_id.as_deref() == Some(m.as_str())));
        assert!(refused.iter().any(|r| r.event.key_id.as_deref() == Some(rk.key.id.as_str())));
        assert!(of("auth.failed").is_empty() && of("auth.lockout").is_empty());
    }

    async fn freezing_works_while_the_gateway_is_writing(app) {
        // The operator's commands read, then write, in their own process while
        // the gateway commits audit entries for its traffic: the command
        // waits for the gateway's writer, it never fails with "database is
        // locked".
        let m = app.merchant("Busy Shop").await;
        let (_, busy) = app.merchant_with_secret("Traffic").await;
        let stop = Arc::new(AtomicBool::new(false));
        let load: Vec<_> = (0..4)
            .map(|_| {
                let (client, url, key, stop) = (app.client().clone(), app.url("/v1/merchant"), busy.clone(), Arc::clone(&stop));
                tokio::spawn(async move {
                    let mut served = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        let r = client.get(&url).bearer_auth(&key).send().await.unwrap();
                        assert_eq!(r.status(), 200);
                        served += 1;
                    }
                    served
                })
            })
            .collect();
        for round in 0..8 {
            let frozen = app.cli_json(&["merchant", "freeze", m.as_str(), "--reason", &format!("round {round}")]);
            assert_eq!(frozen["frozen"]["reason"], format!("round {round}"));
            let thawed = app.cli_json(&["merchant", "unfreeze", m.as_str(), "--reason", "over"]);
            assert_eq!(thawed["frozen"], Value::Null);
        }
        stop.store(true, Ordering::Relaxed);
        for task in load {
            assert!(task.await.unwrap() > 0, "the gateway was writing meanwhile");
        }
    }

    async fn revoke_all_revokes_every_key_of_one_merchant_only(app) {
        let m = app.merchant("Breached").await;
        let keys = [
            app.key(&m, KeyKind::Secret, &[]).await,
            app.key(&m, KeyKind::Publishable, &[]).await,
            app.key(&m, KeyKind::Restricted, &[Permission::PaymentsRead]).await,
        ];
        app.cli_json(&["key", "revoke", keys[1].key.id.as_str()]);
        let (_, other_sk) = app.merchant_with_secret("Neighbour").await;

        let out = app.cli_json(&["key", "revoke-all", "--merchant", m.as_str()]);
        let mut revoked: Vec<&str> = out["revoked"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap()).collect();
        revoked.sort_unstable();
        let mut expected = vec![keys[0].key.id.as_str(), keys[2].key.id.as_str()];
        expected.sort_unstable();
        assert_eq!(revoked, expected, "the already revoked key is not revoked twice");
        assert_eq!(app.get("/v1/payments", keys[0].secret.expose()).await.status(), 401);
        assert_eq!(app.get("/v1/payments", keys[2].secret.expose()).await.status(), 401);
        assert_eq!(app.get("/v1/merchant", &other_sk).await.status(), 200);

        let again = app.cli_json(&["key", "revoke-all", "--merchant", m.as_str()]);
        assert_eq!(again["revoked"], json!([]));
        cli_fails_with(app, &["key", "revoke-all", "--merchant", "mer_doesnotexistdoesnotexist"], "");
        let audit = app.audit().await;
        let revocations: Vec<_> = audit
            .iter()
            .filter(|r| r.event.action == "api_key.revoked" && r.event.merchant_id.as_deref() == Some(m.as_str()))
            .collect();
        assert_eq!(revocations.len(), 3, "one entry per revoked key");
    }

    async fn audit_verify_reports_the_head_hash(app) {
        app.merchant_with_secret("Chain").await;
        let report = app.cli_json(&["audit", "verify"]);
        assert_eq!(report["intact"], true);
        let seq = report["report"]["head_seq"].as_i64().unwrap();
        let hash = report["report"]["head_hash"].as_str().unwrap();
        let stored: (String,) = sqlx::query_as("SELECT hash FROM audit_log WHERE seq = $1")
            .bind(seq)
            .fetch_one(app.store.reader())
            .await
            .unwrap();
        assert_eq!(hash, stored.0);
        assert_eq!(hash.len(), 64);
        let text = app.cli(&["audit", "verify"]);
        let text = String::from_utf8(text.stdout).unwrap();
        assert!(text.contains("hash "), "{text}");
    }
}
