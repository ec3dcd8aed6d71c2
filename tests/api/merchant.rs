//! `GET /v1/merchant` and `POST /v1/merchant`.

use paywarden::domain::api_key::KeyKind;
use paywarden::domain::permission::Permission;
use serde_json::{json, Value};

use crate::both_backends;

both_backends! {
    async fn merchant_shows_itself_and_the_calling_key(app) {
        let m = app.merchant("Acme Ltd").await;
        let k = app.key(&m, KeyKind::Secret, &[]).await;
        let r = app.get("/v1/merchant", k.secret.expose()).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["id"], m.as_str());
        assert_eq!(body["name"], "Acme Ltd");
        assert_eq!(body["livemode"], false);
        assert_eq!(body["key"]["id"], k.key.id.as_str());
        assert_eq!(body["key"]["last4"], &k.secret.expose()[k.secret.expose().len() - 4..]);
        assert!(!body.to_string().contains(k.secret.expose()), "the key itself is never returned");
    }

    async fn restricted_keys_see_the_merchant_publishable_keys_do_not(app) {
        let m = app.merchant("Keys").await;
        let rk = app.key(&m, KeyKind::Restricted, &[Permission::PaymentsRead]).await;
        assert_eq!(app.get("/v1/merchant", rk.secret.expose()).await.status(), 200);
        let pk = app.key(&m, KeyKind::Publishable, &[]).await;
        let r = app.get("/v1/merchant", pk.secret.expose()).await;
        assert_eq!(r.status(), 403);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "publishable_key_not_allowed");
    }

    async fn renaming_needs_a_secret_key_and_a_valid_name(app) {
        let m = app.merchant("Old").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let r = app.post("/v1/merchant", sk.secret.expose(), &json!({"name": "  New Name  "})).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["name"], "New Name");
        for bad in [json!({"name": ""}), json!({"name": "a\u{0000}b"}), json!({"name": "x".repeat(201)})] {
            let r = app.post("/v1/merchant", sk.secret.expose(), &bad).await;
            assert_eq!(r.status(), 400);
            assert_eq!(r.json::<Value>().await.unwrap()["error"]["param"], "name");
        }
        let rk = app.key(&m, KeyKind::Restricted, &[Permission::PaymentsWrite]).await;
        let r = app.post("/v1/merchant", rk.secret.expose(), &json!({"name": "Hijack"})).await;
        assert_eq!(r.status(), 403);
        let r = app.get("/v1/merchant", sk.secret.expose()).await;
        assert_eq!(r.json::<Value>().await.unwrap()["name"], "New Name");
        // The change and its audit entry committed together.
        let audit = app.audit().await;
        let e = audit.iter().find(|r| r.event.action == "merchant.updated").unwrap();
        assert_eq!(e.event.key_id.as_deref(), Some(sk.key.id.as_str()));
        assert!(e.event.request_id.as_deref().unwrap().starts_with("req_"));
    }

    async fn mass_assignment_of_server_fields_is_refused(app) {
        let (m, sk) = app.merchant_with_secret("Mass").await;
        for field in ["id", "livemode", "created", "object", "key"] {
            let mut body = json!({"name": "Renamed"});
            body[field] = json!("mer_attacker");
            let r = app.post("/v1/merchant", &sk, &body).await;
            assert_eq!(r.status(), 400, "{field}");
            assert_eq!(r.json::<Value>().await.unwrap()["error"]["param"], field);
        }
        let body: Value = app.get("/v1/merchant", &sk).await.json().await.unwrap();
        assert_eq!(body["id"], m.as_str());
        assert_eq!(body["name"], "Mass");
    }
}
