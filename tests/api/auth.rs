//! Authentication: one uniform 401 for every failure (audited with the true
//! reason), expiry, revocation and rotation across replicas, IP restrictions,
//! permissions, and lockout after repeated failures.

use std::time::Duration;

use paywarden::domain::api_key::KeyKind;
use paywarden::domain::audit::Outcome;
use paywarden::domain::permission::Permission;
use paywarden::domain::restrictions::KeyRestrictions;
use paywarden::services::api_keys;
use serde_json::Value;

use crate::both_backends;
use crate::support::{new_key, operator, spawn_app_with, Db};

/// The body of a 401 without its request id, to compare failures.
async fn unauthorized_body(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), 401);
    let mut body: Value = r.json().await.unwrap();
    body["error"]["request_id"] = Value::Null;
    body
}

async fn lockout_is_shared_between_replicas(kind: Db) {
    let Some(app) = spawn_app_with(kind, Default::default()).await else {
        return;
    };
    let (_, sk) = app.merchant_with_secret("Locked").await;
    let mut replica = app.spawn_replica().await;
    // The valid key was just verified on both, so both hold it in their cache.
    assert_eq!(app.get("/v1/merchant", &sk).await.status(), 200);
    let on_replica = replica
        .client
        .get(format!("{}/v1/merchant", replica.base))
        .bearer_auth(&sk)
        .send()
        .await
        .unwrap();
    assert_eq!(on_replica.status(), 200);
    for i in 0..10 {
        let r = app
            .client()
            .get(app.url("/v1/merchant"))
            .bearer_auth(format!("sk_test_guess{i}"))
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 401 || (i == 9 && r.status() == 429),
            "attempt {i}: {}",
            r.status()
        );
    }
    // Locked out now, on both replicas, even with a valid key.
    for base in [&app.main.base, &replica.base] {
        let client = if base == &app.main.base {
            app.client()
        } else {
            &replica.client
        };
        let r = client
            .get(format!("{base}/v1/merchant"))
            .bearer_auth(&sk)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry >= 29 * 60, "retry-after {retry}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "too_many_failed_authentications");
    }
    let audit = app
        .wait_for_audit(|a| a.iter().filter(|r| r.event.action == "auth.locked_out_request").count() >= 2)
        .await;
    let lockout = audit
        .iter()
        .find(|r| r.event.action == "auth.lockout")
        .expect("lockout audited");
    assert_eq!(lockout.event.resource.as_deref(), Some("127.0.0.1"));
    assert_eq!(audit.iter().filter(|r| r.event.action == "auth.failed").count(), 10);
    // An operator can lift it.
    let out = app.cli_json(&["lockout", "clear", "127.0.0.1"]);
    assert_eq!(out["was_locked"], true);
    assert_eq!(app.get("/v1/merchant", &sk).await.status(), 200);
    replica.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_after_ten_failures_sqlite() {
    lockout_is_shared_between_replicas(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_after_ten_failures_postgres() {
    lockout_is_shared_between_replicas(Db::Postgres).await;
}

both_backends! {
    async fn every_authentication_failure_looks_the_same(app) {
        let m = app.merchant("Uniform").await;
        let good = app.key(&m, KeyKind::Secret, &[]).await;
        let revoked = app.key(&m, KeyKind::Secret, &[]).await;
        api_keys::revoke(&app.store, &operator(), api_keys::KeyScope::Operator, &revoked.key.id).await.unwrap();
        let mut short = new_key(&m, KeyKind::Secret, &[]);
        short.expires_in = Some(Duration::from_millis(1));
        let expired = app.issue(short).await;
        let mut fenced = new_key(&m, KeyKind::Secret, &[]);
        fenced.restrictions = KeyRestrictions { allowed_ips: vec!["10.0.0.0/8".parse().unwrap()], ..Default::default() };
        let fenced = app.issue(fenced).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut typo = good.secret.expose().to_owned().into_bytes();
        typo[10] = if typo[10] == b'A' { b'B' } else { b'A' };
        let typo = String::from_utf8(typo).unwrap();
        let unknown = paywarden::domain::api_key::ApiKeySecret::generate(KeyKind::Secret, paywarden::domain::api_key::Mode::Test).unwrap();

        let reference = unauthorized_body(app.client().get(app.url("/v1/merchant")).send().await.unwrap()).await;
        for presented in [typo.as_str(), unknown.expose(), revoked.secret.expose(), expired.secret.expose(), fenced.secret.expose(), "garbage"] {
            let body = unauthorized_body(app.get("/v1/merchant", presented).await).await;
            assert_eq!(body, reference);
        }
        let r = app.client().get(app.url("/v1/merchant")).header("authorization", format!("Basic {}", good.secret.expose())).send().await.unwrap();
        assert_eq!(unauthorized_body(r).await, reference);
        assert_eq!(app.get("/v1/merchant", good.secret.expose()).await.status(), 200);

        let audit = app.wait_for_audit(|a| a.iter().filter(|r| r.event.action == "auth.failed").count() >= 8).await;
        let reasons: Vec<String> = audit.iter().filter(|r| r.event.action == "auth.failed").filter_map(|r| r.event.reason.clone()).collect();
        for expected in ["no API key presented", "checksum", "unknown API key", "revoked", "expired", "allowed ranges"] {
            assert!(reasons.iter().any(|r| r.contains(expected)), "no audit reason containing {expected:?}: {reasons:?}");
        }
        let after_revocation = audit.iter().find(|r| r.event.reason.as_deref().is_some_and(|s| s.contains("revocation"))).unwrap();
        assert_eq!(after_revocation.event.key_id.as_deref(), Some(revoked.key.id.as_str()));
        assert_eq!(after_revocation.event.outcome, Outcome::Failure);
    }

    async fn ip_allow_list_admits_matching_clients(app) {
        let m = app.merchant("Fenced").await;
        let mut new = new_key(&m, KeyKind::Secret, &[]);
        new.restrictions = KeyRestrictions { allowed_ips: vec!["127.0.0.0/8".parse().unwrap()], ..Default::default() };
        let k = app.issue(new).await;
        assert_eq!(app.get("/v1/merchant", k.secret.expose()).await.status(), 200);
    }

    async fn revocation_takes_effect_on_the_next_request_on_every_replica(app) {
        let m = app.merchant("Revoke").await;
        let k = app.key(&m, KeyKind::Secret, &[]).await;
        let by_api = app.key(&m, KeyKind::Secret, &[]).await;
        let mut replica = app.spawn_replica().await;
        let on_replica = |key: String| {
            let c = replica.client.clone();
            let url = format!("{}/v1/merchant", replica.base);
            async move { c.get(url).bearer_auth(key).send().await.unwrap().status() }
        };
        // Both keys were just verified on both gateways (and are cached there).
        for key in [&k, &by_api] {
            assert_eq!(on_replica(key.secret.expose().to_owned()).await, 200);
            assert_eq!(app.get("/v1/merchant", key.secret.expose()).await.status(), 200);
        }
        // By the operator CLI, another process.
        let out = app.cli_json(&["key", "revoke", k.key.id.as_str()]);
        assert!(out["revoked_at"].is_i64());
        assert_eq!(on_replica(k.secret.expose().to_owned()).await, 401);
        assert_eq!(app.get("/v1/merchant", k.secret.expose()).await.status(), 401);
        // Through the API of the replica: the main gateway refuses it next.
        let revoke = replica
            .client
            .post(format!("{}/v1/api_keys/{}/revoke", replica.base, by_api.key.id))
            .bearer_auth(by_api.secret.expose())
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(revoke.status(), 200);
        assert_eq!(app.get("/v1/merchant", by_api.secret.expose()).await.status(), 401);
        assert_eq!(on_replica(by_api.secret.expose().to_owned()).await, 401);
        replica.stop().await;
    }

    async fn merchant_changes_apply_on_the_next_request_on_every_replica(app) {
        let (_, sk) = app.merchant_with_secret("Before").await;
        let mut replica = app.spawn_replica().await;
        let name_on_replica = || {
            let c = replica.client.clone();
            let (url, sk) = (format!("{}/v1/merchant", replica.base), sk.clone());
            async move { c.get(url).bearer_auth(sk).send().await.unwrap().json::<Value>().await.unwrap()["name"].clone() }
        };
        assert_eq!(name_on_replica().await, "Before");
        let r = app.post("/v1/merchant", &sk, &serde_json::json!({"name": "After"})).await;
        assert_eq!(r.status(), 200);
        assert_eq!(name_on_replica().await, "After", "the replica's cached copy is gone by the time the change is answered");
        replica.stop().await;
    }

    async fn rotation_keeps_the_old_key_for_the_grace_period_only(app) {
        let m = app.merchant("Rotate").await;
        let old = app.key(&m, KeyKind::Secret, &[]).await;
        let out = app.cli_json(&["key", "rotate", old.key.id.as_str(), "--grace", "2s"]);
        let new = out["secret"].as_str().unwrap().to_owned();
        assert_ne!(new, old.secret.expose());
        assert_eq!(app.get("/v1/merchant", &new).await.status(), 200);
        assert_eq!(app.get("/v1/merchant", old.secret.expose()).await.status(), 200, "old key works during the grace period");
        tokio::time::sleep(Duration::from_millis(2300)).await;
        assert_eq!(app.get("/v1/merchant", old.secret.expose()).await.status(), 401, "old key refused after the grace period");
        assert_eq!(app.get("/v1/merchant", &new).await.status(), 200);
        let again = app.cli(&["key", "rotate", old.key.id.as_str(), "--grace", "1h"]);
        assert!(!again.status.success(), "a rotated key cannot be rotated twice");
        let audit = app.audit().await;
        assert!(audit.iter().any(|r| r.event.action == "api_key.rotated" && r.event.resource.as_deref() == Some(old.key.id.as_str())));
    }

    async fn permissions_are_enforced_and_denials_audited(app) {
        let m = app.merchant("Perms").await;
        let reader = app.key(&m, KeyKind::Restricted, &[Permission::ApiKeysRead]).await;
        let writer = app.key(&m, KeyKind::Restricted, &[Permission::ApiKeysWrite]).await;
        let unrelated = app.key(&m, KeyKind::Restricted, &[Permission::PaymentsRead]).await;
        let target = app.key(&m, KeyKind::Secret, &[]).await;
        let revoke = format!("/v1/api_keys/{}/revoke", target.key.id);

        assert_eq!(app.get("/v1/api_keys", reader.secret.expose()).await.status(), 200);
        let r = app.post(&revoke, reader.secret.expose(), &serde_json::json!({})).await;
        assert_eq!(r.status(), 403);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "permission_denied");
        assert_eq!(body["error"]["type"], "permission_error");
        assert_eq!(app.get("/v1/api_keys", unrelated.secret.expose()).await.status(), 403);
        assert_eq!(app.get("/v1/merchant", target.secret.expose()).await.status(), 200, "denied revoke changed nothing");
        // write implies read
        assert_eq!(app.get("/v1/api_keys", writer.secret.expose()).await.status(), 200);
        let pk = app.key(&m, KeyKind::Publishable, &[]).await;
        assert_eq!(app.get("/v1/api_keys", pk.secret.expose()).await.status(), 403);

        let audit = app.wait_for_audit(|a| a.iter().filter(|r| r.event.action == "auth.permission_denied").count() >= 3).await;
        let denial = audit.iter().find(|r| r.event.action == "auth.permission_denied" && r.event.key_id.as_deref() == Some(reader.key.id.as_str())).unwrap();
        assert_eq!(denial.event.outcome, Outcome::Denied);
        assert!(denial.event.reason.as_deref().unwrap().contains("api_keys:write"));
        assert!(denial.event.resource.as_deref().unwrap().contains("/v1/api_keys/{id}/revoke"));
    }
}
