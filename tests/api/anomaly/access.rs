//! `GET /v1/anomalies` as an attacker would probe it: only the caller's own
//! merchant and mode, only private keys allowed to read alerts, and every bad
//! input a 400 naming the field.

use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::permission::Permission;
use serde_json::Value;

use crate::both_backends;
use crate::payments::error_of;
use crate::support::new_key;

both_backends! {
    async fn anomalies_are_listed_only_to_their_merchant_in_its_mode_with_permission(app) {
        let m = app.merchant("Alerted Shop").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let sk = sk.secret.expose().to_owned();
        // An alert of the merchant's: a revoked key of its presented again.
        let revoked = app.key(&m, KeyKind::Secret, &[]).await;
        app.cli_json(&["keys", "revoke", revoked.key.id.as_str()]);
        assert_eq!(app.get("/v1/merchant", revoked.secret.expose()).await.status(), 401);

        let r = app.get("/v1/anomalies", &sk).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["object"], "list");
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{body}");
        assert_eq!(data[0]["object"], "anomaly");
        assert!(data[0]["id"].as_str().unwrap().starts_with("anom_"));
        assert_eq!(data[0]["detector"], "retired_key_use");
        assert!(!body.to_string().contains(revoked.secret.expose()));

        // A restricted key with `anomalies:read` sees them; without, 403.
        let reader = app.key(&m, KeyKind::Restricted, &[Permission::AnomaliesRead]).await;
        let listed: Value = app.get("/v1/anomalies", reader.secret.expose()).await.json().await.unwrap();
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        let other_perm = app.key(&m, KeyKind::Restricted, &[Permission::EventsRead]).await;
        let (status, error) = error_of(app.get("/v1/anomalies", other_perm.secret.expose()).await).await;
        assert_eq!(status, 403, "{error}");
        let pk = app.key(&m, KeyKind::Publishable, &[]).await;
        assert_eq!(app.get("/v1/anomalies", pk.secret.expose()).await.status(), 403);
        let anonymous = app.client().get(app.url("/v1/anomalies")).send().await.unwrap();
        assert_eq!(anonymous.status(), 401);

        // Another merchant, and the merchant's own live mode, see none of them.
        let (_, other_sk) = app.merchant_with_secret("Someone Else").await;
        let theirs: Value = app.get("/v1/anomalies", &other_sk).await.json().await.unwrap();
        assert_eq!(theirs["data"], serde_json::json!([]));
        let live = app.issue(paywarden::services::api_keys::NewKey { mode: Mode::Live, ..new_key(&m, KeyKind::Secret, &[]) }).await;
        let live_list: Value = app.get("/v1/anomalies", live.secret.expose()).await.json().await.unwrap();
        assert_eq!(live_list["data"], serde_json::json!([]));

        // Bad input: 400 naming the field.
        for (query, param) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("starting_after=evt_nope", "starting_after"),
        ] {
            let (status, error) = error_of(app.get(&format!("/v1/anomalies?{query}"), &sk).await).await;
            assert_eq!((status, error["param"].as_str()), (400, Some(param)), "{query}: {error}");
        }
        let (status, _) = error_of(app.get("/v1/anomalies?subject=all", &sk).await).await;
        assert_eq!(status, 400, "unknown parameters are refused");
        // Paging: nothing older than the only alert.
        let id = data[0]["id"].as_str().unwrap();
        let older: Value = app.get(&format!("/v1/anomalies?starting_after={id}"), &sk).await.json().await.unwrap();
        assert_eq!(older["data"], serde_json::json!([]));
    }
}
