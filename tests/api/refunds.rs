//! Refunds through the API: partial and multiple, never beyond what was
//! captured (also when many requests race), a processor refusal recorded as a
//! failed refund that gives its amount back, tenancy, and the CVC destroyed by
//! the first authorization.

use paywarden::domain::api_key::Mode;
use paywarden::domain::card::{CardNumber, Cvc, ExpiryDate};
use paywarden::domain::tenant::Tenant;
use paywarden::domain::time::Timestamp;
use paywarden::services::tokens::{self, CardInput};
use serde_json::{json, Value};

use crate::both_backends;
use crate::payments::{error_of, pay};
use crate::support::operator;

both_backends! {
    async fn partial_and_multiple_refunds_stop_at_the_captured_amount(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let p = pay(app, &sk, "4242424242424242", 1000, "automatic").await;
        let id = p["id"].as_str().unwrap();
        let r = app.post("/v1/refunds", &sk, &json!({"payment": id, "amount": 300, "reason": "requested_by_customer"})).await;
        assert_eq!(r.status(), 200);
        let first: Value = r.json().await.unwrap();
        assert!(first["id"].as_str().unwrap().starts_with("re_"));
        assert_eq!((first["status"].as_str(), first["amount"].as_i64()), (Some("succeeded"), Some(300)));
        assert_eq!(first["reason"], "requested_by_customer");
        let (status, e) = error_of(app.post("/v1/refunds", &sk, &json!({"payment": id, "amount": 701})).await).await;
        assert_eq!((status, e["code"].as_str().unwrap(), e["param"].as_str().unwrap()), (409, "amount_exceeds_refundable", "amount"));
        assert!(e["message"].as_str().unwrap().contains("700"));
        let rest: Value = app.post("/v1/refunds", &sk, &json!({"payment": id})).await.json().await.unwrap();
        assert_eq!(rest["amount"], 700, "no amount: everything left");
        let (status, _) = error_of(app.post("/v1/refunds", &sk, &json!({"payment": id, "amount": 1})).await).await;
        assert_eq!(status, 409);
        let (status, e) = error_of(app.post("/v1/refunds", &sk, &json!({"payment": id})).await).await;
        assert_eq!((status, e["code"].as_str().unwrap()), (409, "amount_exceeds_refundable"), "nothing left to refund");
        let after: Value = app.get(&format!("/v1/payments/{id}"), &sk).await.json().await.unwrap();
        assert_eq!(after["amount_refunded"], 1000);
        let listed: Value = app.get(&format!("/v1/refunds?payment={id}"), &sk).await.json().await.unwrap();
        let ids: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [rest["id"].as_str().unwrap(), first["id"].as_str().unwrap()], "newest first");
        let shown: Value = app.get(&format!("/v1/refunds/{}", first["id"].as_str().unwrap()), &sk).await.json().await.unwrap();
        assert_eq!(shown["payment"], id);
        let events: Vec<(String,)> = sqlx::query_as("SELECT type FROM events WHERE type LIKE 'refund.%'")
            .fetch_all(app.store.reader()).await.unwrap();
        assert_eq!(events.len(), 2);
        for bad in [json!({"payment": id, "amount": 0}), json!({"payment": id, "amount": -1}), json!({"payment": id, "amount": 1.5})] {
            let (status, e) = error_of(app.post("/v1/refunds", &sk, &bad).await).await;
            assert_eq!((status, e["param"].as_str().unwrap()), (400, "amount"), "{bad}");
        }
    }

    async fn concurrent_refunds_never_exceed_the_captured_amount(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let p = pay(app, &sk, "4242424242424242", 1000, "automatic").await;
        let id = p["id"].as_str().unwrap().to_owned();
        let mut tasks = Vec::new();
        for _ in 0..24 {
            let (client, url, sk, id) = (app.client().clone(), app.url("/v1/refunds"), sk.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                let r = client.post(url).bearer_auth(sk).json(&json!({"payment": id, "amount": 100})).send().await.unwrap();
                r.status().as_u16()
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                200 => ok += 1,
                409 => {}
                other => panic!("unexpected status {other}"),
            }
        }
        assert_eq!(ok, 10, "exactly the captured amount was refunded");
        let (refunded, sum): (i64, i64) = sqlx::query_as(
            "SELECT p.amount_refunded, (SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM refunds WHERE payment_id = p.id AND status = 'succeeded') \
             FROM payments p WHERE p.id = $1")
            .bind(&id).fetch_one(app.store.reader()).await.unwrap();
        assert_eq!((refunded, sum), (1000, 1000));
    }

    async fn a_refused_refund_is_failed_and_gives_its_amount_back(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let p = pay(app, &sk, "4000000000005126", 900, "automatic").await;
        assert_eq!(p["status"], "succeeded");
        let id = p["id"].as_str().unwrap();
        let r: Value = app.post("/v1/refunds", &sk, &json!({"payment": id, "amount": 400})).await.json().await.unwrap();
        assert_eq!(r["status"], "failed");
        assert_eq!(r["failure_reason"], "refund_failed");
        let after: Value = app.get(&format!("/v1/payments/{id}"), &sk).await.json().await.unwrap();
        assert_eq!(after["amount_refunded"], 0);
        let types: Vec<(String,)> = sqlx::query_as("SELECT type FROM events WHERE object_id = $1")
            .bind(r["id"].as_str().unwrap()).fetch_all(app.store.reader()).await.unwrap();
        assert_eq!(types, [("refund.failed".to_owned(),)]);
    }

    async fn only_succeeded_payments_of_the_caller_can_be_refunded(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let (_, other) = app.merchant_with_secret("Other").await;
        let held = pay(app, &sk, "4242424242424242", 500, "manual").await;
        let (status, e) = error_of(app.post("/v1/refunds", &sk, &json!({"payment": held["id"]})).await).await;
        assert_eq!((status, e["code"].as_str().unwrap()), (409, "payment_unexpected_state"));
        let declined = pay(app, &sk, "4000000000000002", 500, "automatic").await;
        let (status, _) = error_of(app.post("/v1/refunds", &sk, &json!({"payment": declined["id"]})).await).await;
        assert_eq!(status, 409);
        let done = pay(app, &sk, "4242424242424242", 500, "automatic").await;
        let (status, e) = error_of(app.post("/v1/refunds", &other, &json!({"payment": done["id"]})).await).await;
        assert_eq!((status, e["code"].as_str().unwrap(), e["param"].as_str().unwrap()), (404, "resource_missing", "payment"));
        let mine: Value = app.post("/v1/refunds", &sk, &json!({"payment": done["id"], "amount": 100})).await.json().await.unwrap();
        let r = app.get(&format!("/v1/refunds/{}", mine["id"].as_str().unwrap()), &other).await;
        assert_eq!(r.status(), 404);
        let listed: Value = app.get("/v1/refunds", &other).await.json().await.unwrap();
        assert_eq!(listed["data"].as_array().unwrap().len(), 0);
        let (status, _) = error_of(app.post("/v1/refunds", &sk, &json!({"payment": done["id"], "amount_refunded": 5})).await).await;
        assert_eq!(status, 400, "mass assignment is an unknown field");
    }

    async fn the_cvc_is_destroyed_by_the_first_authorization(app) {
        let merchant = app.merchant("Shop").await;
        let vault = app.vault();
        let number = CardNumber::parse("4242424242424242").unwrap();
        let card = CardInput {
            cvc: Some(Cvc::parse("123", number.brand()).unwrap()),
            expiry: ExpiryDate::parse(12, 2034, Timestamp::now()).unwrap(),
            number,
            name: None,
        };
        let tenant = Tenant::new(merchant.clone(), Mode::Test);
        let token = tokens::tokenize(&app.store, &vault, &operator(), &tenant, card).await.unwrap();
        let (_, first) = tokens::open_for_payment(&app.store, &vault, &tenant, &token.id, true).await.unwrap().unwrap();
        assert_eq!(first.cvc.as_ref().map(|c| c.expose().to_owned()).as_deref(), Some("123"));
        assert_eq!(first.number.expose_digits(), "4242424242424242");
        let (_, second) = tokens::open_for_payment(&app.store, &vault, &tenant, &token.id, true).await.unwrap().unwrap();
        assert!(second.cvc.is_none(), "the first authorization took the CVC; it is gone");
        let other = Tenant::new(app.merchant("Other").await, Mode::Test);
        assert!(tokens::open_for_payment(&app.store, &vault, &other, &token.id, true).await.unwrap().is_none());
        let live = Tenant::new(merchant, Mode::Live);
        assert!(tokens::open_for_payment(&app.store, &vault, &live, &token.id, true).await.unwrap().is_none(), "a test token is not the live mode's");
    }
}
