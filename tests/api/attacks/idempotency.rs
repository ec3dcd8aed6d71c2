//! Attacks on the Idempotency-Key layer: a holder of the public publishable
//! key (or of a weaker restricted key) tries to squat the merchant's keys
//! before the merchant uses them, and to learn which keys the merchant used.
//! Authorization is decided before the idempotency layer and its refusals
//! are never stored; records belong to the key lineage that made them, so a
//! rotated key's successor still gets its predecessor's answers.

use paywarden::domain::api_key::KeyKind;
use paywarden::domain::permission::Permission;
use paywarden::domain::restrictions::KeyRestrictions;
use serde_json::{json, Value};

use crate::both_backends;
use crate::payments::token;
use crate::support::{new_key, TestApp};

struct Answer {
    status: u16,
    code: Option<String>,
    replayed: bool,
    json: Value,
}

async fn post_with_key(app: &TestApp, key: &str, idempotency_key: &str, body: &Value) -> Answer {
    let r = app
        .client()
        .post(app.url("/v1/payments"))
        .bearer_auth(key)
        .header("Idempotency-Key", idempotency_key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let replayed = r.headers().get("idempotent-replayed").is_some();
    let json: Value = r.json().await.unwrap();
    Answer {
        status,
        code: json["error"]["code"].as_str().map(str::to_owned),
        replayed,
        json,
    }
}

async fn records(app: &TestApp, key: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM idempotency_keys WHERE key = $1")
        .bind(key)
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    n
}

both_backends! {
    async fn a_weaker_key_can_neither_squat_nor_probe_the_merchants_idempotency_keys(app) {
        let m = app.merchant("Squatted").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let sk = sk.secret.expose();
        let pk = app.key(&m, KeyKind::Publishable, &[]).await;
        let pk = pk.secret.expose();
        let reader = app.key(&m, KeyKind::Restricted, &[Permission::PaymentsRead]).await;
        let reader = reader.secret.expose();
        let card = token(app, sk, "4242424242424242").await;
        let body = json!({"amount": 1000, "currency": "usd", "payment_method": card, "confirm": true});

        // The attacker claims the merchant's next order numbers first.
        for n in 1..=3 {
            let key = format!("order-{n}");
            let a = post_with_key(app, pk, &key, &body).await;
            assert_eq!((a.status, a.code.as_deref()), (403, Some("publishable_key_not_allowed")), "{}", a.json);
            let a = post_with_key(app, reader, &key, &body).await;
            assert_eq!((a.status, a.code.as_deref()), (403, Some("permission_denied")), "{}", a.json);
            assert_eq!(records(app, &key).await, 0, "a refusal reserved {key}");
        }
        // The merchant's own requests with those keys run, once each.
        let mut paid = Vec::new();
        for n in 1..=3 {
            let a = post_with_key(app, sk, &format!("order-{n}"), &body).await;
            assert_eq!((a.status, a.replayed), (200, false), "{}", a.json);
            assert_eq!(a.json["status"], "succeeded");
            paid.push(a.json["id"].clone());
        }
        // Probing: a key the merchant used and one it never used answer alike.
        for attacker in [pk, reader] {
            let used = post_with_key(app, attacker, "order-1", &body).await;
            let unused = post_with_key(app, attacker, "order-never-used", &body).await;
            assert_eq!((used.status, &used.code, used.replayed), (unused.status, &unused.code, unused.replayed));
            assert!(!used.json.to_string().contains(paid[0].as_str().unwrap()));
        }
        // A restricted key that may create payments runs its own request with
        // the merchant's key: no 422 telling it the key was used, no replay of
        // the merchant's answer.
        let writer = app.key(&m, KeyKind::Restricted, &[Permission::PaymentsWrite]).await;
        let own = post_with_key(app, writer.secret.expose(), "order-1", &body).await;
        assert_eq!((own.status, own.replayed), (200, false), "{}", own.json);
        assert_ne!(own.json["id"], paid[0]);
        // The merchant's retry still replays its own first answer.
        let retry = post_with_key(app, sk, "order-1", &body).await;
        assert_eq!((retry.status, retry.replayed, &retry.json["id"]), (200, true, &paid[0]));
    }

    async fn a_refusal_by_the_keys_money_limits_is_not_stored(app) {
        let m = app.merchant("Limited").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let mut limited = new_key(&m, KeyKind::Restricted, &[Permission::PaymentsWrite]);
        limited.restrictions = KeyRestrictions { max_amount: Some(1000), ..Default::default() };
        let limited = app.issue(limited).await;
        let card = token(app, sk.secret.expose(), "4242424242424242").await;
        let big = json!({"amount": 5000, "currency": "usd", "payment_method": card, "confirm": true});
        let a = post_with_key(app, limited.secret.expose(), "big-1", &big).await;
        assert_eq!((a.status, a.code.as_deref()), (403, Some("amount_above_key_limit")), "{}", a.json);
        assert_eq!(records(app, "big-1").await, 0, "a refusal by the key's limits was stored");
    }

    async fn a_rotated_keys_successor_gets_its_predecessors_answers(app) {
        let m = app.merchant("Rotating").await;
        let old = app.key(&m, KeyKind::Secret, &[]).await;
        let card = token(app, old.secret.expose(), "4242424242424242").await;
        let body = json!({"amount": 700, "currency": "usd", "payment_method": card, "confirm": true});
        let first = post_with_key(app, old.secret.expose(), "rotation-1", &body).await;
        assert_eq!(first.status, 200, "{}", first.json);
        let rotated = app.cli_json(&["key", "rotate", old.key.id.as_str(), "--grace", "1h"]);
        let new = rotated["secret"].as_str().unwrap();
        // The retry sent with the successor during the grace period is the
        // same request: it gets the first answer, and no second payment.
        let retry = post_with_key(app, new, "rotation-1", &body).await;
        assert_eq!((retry.status, retry.replayed), (200, true), "{}", retry.json);
        assert_eq!(retry.json["id"], first.json["id"]);
        let again = post_with_key(app, old.secret.expose(), "rotation-1", &body).await;
        assert_eq!((again.replayed, &again.json["id"]), (true, &first.json["id"]));
        // Another request under that key is still a reuse.
        let other = post_with_key(app, new, "rotation-1", &json!({"amount": 701, "currency": "usd"})).await;
        assert_eq!((other.status, other.code.as_deref()), (422, Some("idempotency_key_reused")));
        let (payments,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM payments WHERE merchant_id = $1")
            .bind(m.as_str())
            .fetch_one(app.store.reader())
            .await
            .unwrap();
        assert_eq!(payments, 1);
    }
}
