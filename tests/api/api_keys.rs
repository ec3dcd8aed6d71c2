//! `/v1/api_keys`: listing (never the secret), pagination, showing, revoking.

use paywarden::domain::api_key::KeyKind;
use paywarden::domain::permission::Permission;
use serde_json::{json, Value};

use crate::both_backends;

both_backends! {
    async fn keys_are_listed_with_prefix_and_last4_only(app) {
        let m = app.merchant("Lister").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let rk = app.key(&m, KeyKind::Restricted, &[Permission::PaymentsRead, Permission::RefundsWrite]).await;
        let r = app.get("/v1/api_keys", sk.secret.expose()).await;
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(!text.contains(sk.secret.expose()) && !text.contains(rk.secret.expose()));
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["object"], "list");
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        let listed = data.iter().find(|k| k["id"] == rk.key.id.as_str()).unwrap();
        assert_eq!(listed["kind"], "restricted");
        assert_eq!(listed["prefix"], "rk_test_");
        assert_eq!(listed["last4"].as_str().unwrap().len(), 4);
        assert_eq!(listed["permissions"], json!(["payments:read", "refunds:write"]));
        assert!(listed["created"].is_i64());
    }

    async fn lists_paginate_with_limit_and_starting_after(app) {
        let m = app.merchant("Pages").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        for _ in 0..4 {
            app.key(&m, KeyKind::Publishable, &[]).await;
        }
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("/v1/api_keys?limit=2&starting_after={a}"),
                None => "/v1/api_keys?limit=2".to_owned(),
            };
            let body: Value = app.get(&path, sk.secret.expose()).await.json().await.unwrap();
            let page = body["data"].as_array().unwrap();
            assert!(page.len() <= 2);
            seen.extend(page.iter().map(|k| k["id"].as_str().unwrap().to_owned()));
            if body["has_more"] == false {
                break;
            }
            after = seen.last().cloned();
        }
        assert_eq!(seen.len(), 5);
        let mut dedup = seen.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 5, "no key listed twice");
    }

    async fn a_key_can_be_shown_and_revoked_once(app) {
        let m = app.merchant("Revoker").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let victim = app.key(&m, KeyKind::Secret, &[]).await;
        let shown: Value = app.get(&format!("/v1/api_keys/{}", victim.key.id), sk.secret.expose()).await.json().await.unwrap();
        assert_eq!(shown["id"], victim.key.id.as_str());
        assert!(shown["revoked_at"].is_null());
        assert_eq!(app.get("/v1/merchant", victim.secret.expose()).await.status(), 200, "verified, so cached");
        let r = app.post(&format!("/v1/api_keys/{}/revoke", victim.key.id), sk.secret.expose(), &json!({})).await;
        assert_eq!(r.status(), 200);
        assert!(r.json::<Value>().await.unwrap()["revoked_at"].is_i64());
        assert_eq!(app.get("/v1/merchant", victim.secret.expose()).await.status(), 401);
        let again = app.post(&format!("/v1/api_keys/{}/revoke", victim.key.id), sk.secret.expose(), &json!({})).await;
        assert_eq!(again.status(), 409);
        assert_eq!(again.json::<Value>().await.unwrap()["error"]["code"], "api_key_already_revoked");
        let audit = app.audit().await;
        let entry = audit.iter().find(|r| r.event.action == "api_key.revoked").unwrap();
        assert_eq!(entry.event.resource.as_deref(), Some(victim.key.id.as_str()));
        assert_eq!(entry.event.key_id.as_deref(), Some(sk.key.id.as_str()));
    }

    async fn last_used_is_recorded(app) {
        let m = app.merchant("Used").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        assert_eq!(app.get("/v1/merchant", sk.secret.expose()).await.status(), 200);
        for _ in 0..100 {
            let body: Value = app.get(&format!("/v1/api_keys/{}", sk.key.id), sk.secret.expose()).await.json().await.unwrap();
            if body["last_used"].is_i64() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("last_used never set");
    }
}
