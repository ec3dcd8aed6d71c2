//! Tenant isolation: a key of merchant A can never read or change merchant
//! B's resources, and the answer is exactly the one for a missing id.

use paywarden::domain::api_key::KeyKind;
use paywarden::domain::ids::ApiKeyId;
use serde_json::{json, Value};

use crate::both_backends;

/// Status and body (without request id) of a response.
async fn outcome(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let mut body: Value = r.json().await.unwrap();
    if body.get("error").is_some() {
        body["error"]["request_id"] = Value::Null;
    }
    (status, body)
}

both_backends! {
    async fn other_merchants_keys_are_indistinguishable_from_missing_ones(app) {
        let a = app.merchant("Alpha").await;
        let b = app.merchant("Beta").await;
        let a_sk = app.key(&a, KeyKind::Secret, &[]).await;
        let b_sk = app.key(&b, KeyKind::Secret, &[]).await;
        let a_other = app.key(&a, KeyKind::Publishable, &[]).await;
        let missing = ApiKeyId::generate().unwrap();

        let theirs = outcome(app.get(&format!("/v1/api_keys/{}", a_other.key.id), b_sk.secret.expose()).await).await;
        let nobody = outcome(app.get(&format!("/v1/api_keys/{missing}"), b_sk.secret.expose()).await).await;
        assert_eq!(theirs.0, 404);
        assert_eq!(theirs, nobody);
        let malformed = outcome(app.get("/v1/api_keys/key_'%20OR%201=1--", b_sk.secret.expose()).await).await;
        assert_eq!(malformed, nobody);

        let theirs = outcome(app.post(&format!("/v1/api_keys/{}/revoke", a_other.key.id), b_sk.secret.expose(), &json!({})).await).await;
        let nobody = outcome(app.post(&format!("/v1/api_keys/{missing}/revoke"), b_sk.secret.expose(), &json!({})).await).await;
        assert_eq!(theirs.0, 404);
        assert_eq!(theirs, nobody);
        assert_eq!(app.get("/v1/merchant", a_sk.secret.expose()).await.status(), 200);
        let shown: Value = app.get(&format!("/v1/api_keys/{}", a_other.key.id), a_sk.secret.expose()).await.json().await.unwrap();
        assert!(shown["revoked_at"].is_null(), "B's attempt changed nothing");

        let listed: Value = app.get("/v1/api_keys?limit=100", b_sk.secret.expose()).await.json().await.unwrap();
        let ids: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec![b_sk.key.id.as_str()]);
        let paged: Value = app.get(&format!("/v1/api_keys?starting_after={}", a_sk.key.id), b_sk.secret.expose()).await.json().await.unwrap();
        assert!(paged["data"].as_array().unwrap().iter().all(|k| k["id"] != a_other.key.id.as_str()));

        let me: Value = app.get("/v1/merchant", b_sk.secret.expose()).await.json().await.unwrap();
        assert_eq!(me["id"], b.as_str());
        let renamed = app.post("/v1/merchant", b_sk.secret.expose(), &json!({"name": "Beta 2"})).await;
        assert_eq!(renamed.status(), 200);
        let a_view: Value = app.get("/v1/merchant", a_sk.secret.expose()).await.json().await.unwrap();
        assert_eq!(a_view["name"], "Alpha");
    }
}
