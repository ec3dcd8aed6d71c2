//! The review queue: payments the rules hold appear in `GET /v1/reviews`
//! (of their own mode only); approving captures, rejecting cancels as
//! `fraudulent`; each opens and closes with an event; a payment not held
//! cannot be approved or rejected.

use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::permission::Permission;
use serde_json::{json, Value};

use super::screening::shop;
use super::secret_key;
use crate::both_backends;

both_backends! {
    async fn held_payments_are_approved_or_rejected_from_the_queue(app) {
        let shop = shop(app, Mode::Test).await;
        shop.rules("rule mid : review when amount > 10_000").await;
        let first = shop.pay(20_000, "a@example.com").await;
        let second = shop.pay(30_000, "b@example.com").await;
        let passed = shop.pay(1_000, "c@example.com").await;
        assert_eq!(passed["status"], "succeeded");
        let (first, second) = (first["id"].as_str().unwrap(), second["id"].as_str().unwrap());
        let queue: Value = shop.gateway.get("/v1/reviews", &shop.sk).await.json().await.unwrap();
        let ids: Vec<&str> = queue["data"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [second, first], "{queue}");
        assert!(queue["data"].as_array().unwrap().iter().all(|p| p["review"] == "open"));
        // Another mode's key sees an empty queue and cannot decide.
        let live = secret_key(app, &shop.merchant, Mode::Live).await;
        let other: Value = shop.gateway.get("/v1/reviews", &live).await.json().await.unwrap();
        assert_eq!(other["data"], json!([]));
        for action in ["approve", "reject"] {
            let r = shop.gateway.post(&format!("/v1/reviews/{first}/{action}"), &live, &json!({})).await;
            assert_eq!(r.status(), 404, "{action}");
        }
        // So does another merchant's secret key, and a restricted key of
        // this merchant that may only read payments.
        let (_, elsewhere) = app.merchant_with_secret("Elsewhere").await;
        let other: Value = shop.gateway.get("/v1/reviews", &elsewhere).await.json().await.unwrap();
        assert_eq!(other["data"], json!([]));
        let reader = app.key(&shop.merchant, KeyKind::Restricted, &[Permission::PaymentsRead]).await;
        let reader = reader.secret.expose().to_owned();
        let listed: Value = shop.gateway.get("/v1/reviews", &reader).await.json().await.unwrap();
        assert_eq!(listed["data"].as_array().unwrap().len(), 2);
        for action in ["approve", "reject"] {
            let r = shop.gateway.post(&format!("/v1/reviews/{first}/{action}"), &elsewhere, &json!({})).await;
            assert_eq!(r.status(), 404, "{action}");
            let r = shop.gateway.post(&format!("/v1/reviews/{first}/{action}"), &reader, &json!({})).await;
            assert_eq!(r.status(), 403, "{action}");
        }
        let still: Value = shop.gateway.get(&format!("/v1/payments/{first}"), &shop.sk).await.json().await.unwrap();
        assert_eq!(still["review"], "open", "nothing refused changed the payment");
        assert_eq!(shop.processor.calls().capture, 1, "only the payment not held was captured");
        // Approve captures.
        let r = shop.gateway.post(&format!("/v1/reviews/{first}/approve"), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 200);
        let approved: Value = r.json().await.unwrap();
        assert_eq!(approved["status"], "succeeded", "{approved}");
        assert_eq!(approved["review"], "closed");
        assert_eq!(shop.processor.calls().capture, 2, "the payment not held and the approved one");
        // Reject cancels as fraudulent, releasing the authorization.
        let r = shop.gateway.post(&format!("/v1/reviews/{second}/reject"), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 200);
        let rejected: Value = r.json().await.unwrap();
        assert_eq!(rejected["status"], "canceled", "{rejected}");
        assert_eq!(rejected["cancellation_reason"], "fraudulent");
        assert_eq!(rejected["review"], "closed");
        assert_eq!(shop.processor.calls().void, 1);
        // Closed reviews, and a payment never held, cannot be decided.
        let passed = passed["id"].as_str().unwrap();
        for (id, action) in [(first, "reject"), (second, "approve"), (passed, "approve")] {
            let r = shop.gateway.post(&format!("/v1/reviews/{id}/{action}"), &shop.sk, &json!({})).await;
            assert_eq!(r.status(), 409, "{id} {action}");
            assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "review_not_open");
        }
        let queue: Value = shop.gateway.get("/v1/reviews", &shop.sk).await.json().await.unwrap();
        assert_eq!(queue["data"], json!([]));
        // Each review opened and closed with an event.
        let events: Value = shop.gateway.get("/v1/events?limit=100", &shop.sk).await.json().await.unwrap();
        let of = |kind: &str| -> Vec<String> {
            events["data"].as_array().unwrap().iter()
                .filter(|e| e["type"] == kind)
                .map(|e| e["data"]["object"]["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let mut opened = of("review.opened");
        opened.sort();
        let mut expected = vec![first.to_owned(), second.to_owned()];
        expected.sort();
        assert_eq!(opened, expected);
        let mut closed = of("review.closed");
        closed.sort();
        assert_eq!(closed, expected);
        shop.stop().await;
    }
}
