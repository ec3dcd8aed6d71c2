//! A restricted key's maximum amount and currencies hold on every operation
//! that moves money (create with confirm, confirm, capture, refund), in test
//! and in live mode.

use paywarden::domain::api_key::Mode;
use serde_json::{json, Value};

use super::super::{assert_intact, Rows};
use super::{claim_of, refusal, shop};
use crate::both_backends;
use crate::support::TestApp;

both_backends! {
    async fn key_limits_hold_for_every_money_movement(app) {
        for mode in [Mode::Test, Mode::Live] {
            key_limits_hold(app, mode).await;
        }
    }
}

/// A restricted key limited to 1000 EUR, against payments the secret key
/// made: every refusal is a 403 that changes nothing and sends nothing to the
/// processor; within the limit the same key moves money.
async fn key_limits_hold(app: &TestApp, mode: Mode) {
    let shop = shop(app, mode).await;
    let rk = shop.limited_key(app).await;
    let card = "4242424242424242";
    let open_big = shop.payment(card, 500_000, "eur", None).await;
    let held_big = shop.payment(card, 900_000, "eur", Some("manual")).await;
    let paid_big = shop.payment(card, 500_000, "eur", Some("automatic")).await;
    let open_usd = shop.payment(card, 500, "usd", None).await;
    let held_usd = shop.payment(card, 500, "usd", Some("manual")).await;
    let paid_usd = shop.payment(card, 500, "usd", Some("automatic")).await;
    let ids = [&open_big, &held_big, &paid_big, &open_usd, &held_usd, &paid_usd];
    let mut views = Vec::new();
    for id in ids {
        views.push(shop.get(id).await);
    }
    let calls = shop.processor.calls();
    let token = shop.token(card).await;
    let before = Rows::snapshot(app).await;
    let over = ("amount_above_key_limit", "amount");
    let cases: Vec<(&str, String, Value, (&str, &str))> = vec![
        (
            "create and confirm 1001 EUR",
            "/v1/payments".into(),
            json!({"amount": 1001, "currency": "eur", "payment_method": token, "confirm": true}),
            over,
        ),
        (
            "create 1001 EUR",
            "/v1/payments".into(),
            json!({"amount": 1001, "currency": "eur"}),
            over,
        ),
        (
            "confirm 500,000 EUR",
            format!("/v1/payments/{open_big}/confirm"),
            json!({}),
            over,
        ),
        (
            "capture all of 900,000 EUR",
            format!("/v1/payments/{held_big}/capture"),
            json!({}),
            ("amount_above_key_limit", "amount_to_capture"),
        ),
        (
            "capture 900,000 EUR",
            format!("/v1/payments/{held_big}/capture"),
            json!({"amount_to_capture": 900_000}),
            ("amount_above_key_limit", "amount_to_capture"),
        ),
        (
            "capture 1001 EUR",
            format!("/v1/payments/{held_big}/capture"),
            json!({"amount_to_capture": 1001}),
            ("amount_above_key_limit", "amount_to_capture"),
        ),
        (
            "refund 400,000 EUR",
            "/v1/refunds".into(),
            json!({"payment": paid_big, "amount": 400_000}),
            over,
        ),
        (
            "refund all of 500,000 EUR",
            "/v1/refunds".into(),
            json!({"payment": paid_big}),
            over,
        ),
        (
            "create 500 USD",
            "/v1/payments".into(),
            json!({"amount": 500, "currency": "usd"}),
            ("currency_not_allowed", "currency"),
        ),
        (
            "confirm 500 USD",
            format!("/v1/payments/{open_usd}/confirm"),
            json!({}),
            ("currency_not_allowed", "currency"),
        ),
        (
            "capture 100 USD",
            format!("/v1/payments/{held_usd}/capture"),
            json!({"amount_to_capture": 100}),
            ("currency_not_allowed", "currency"),
        ),
        (
            "refund 100 USD",
            "/v1/refunds".into(),
            json!({"payment": paid_usd, "amount": 100}),
            ("currency_not_allowed", "currency"),
        ),
    ];
    for (case, path, body, (code, param)) in &cases {
        let got = refusal(shop.gateway.post(path, &rk, body).await).await;
        assert_eq!(got, (403, (*code).to_owned(), (*param).to_owned()), "{mode:?}: {case}");
    }
    assert_eq!(
        shop.processor.calls(),
        calls,
        "{mode:?}: no refused operation reached the processor"
    );
    for (id, view) in ids.iter().zip(&views) {
        assert_eq!(&shop.get(id).await, view, "{mode:?}: a refusal changed the payment");
        assert_eq!(claim_of(app, id).await, None);
    }
    assert_intact(app, before, |_| {}).await;

    // Within the limit, the same key moves money.
    let r = shop
        .gateway
        .post(
            &format!("/v1/payments/{held_big}/capture"),
            &rk,
            &json!({"amount_to_capture": 1000}),
        )
        .await;
    assert_eq!(r.status(), 200, "{mode:?}: {}", r.text().await.unwrap());
    let p = shop.get(&held_big).await;
    assert_eq!(
        (&p["status"], &p["amount_received"]),
        (&json!("succeeded"), &json!(1000)),
        "{p}"
    );
    let r = shop
        .gateway
        .post("/v1/refunds", &rk, &json!({"payment": paid_big, "amount": 1000}))
        .await;
    assert_eq!(r.status(), 200, "{mode:?}: {}", r.text().await.unwrap());
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "succeeded");
    let r = shop
        .gateway
        .post(
            "/v1/payments",
            &rk,
            &json!({"amount": 1000, "currency": "eur", "payment_method": token, "confirm": true}),
        )
        .await;
    assert_eq!(r.status(), 200, "{mode:?}: {}", r.text().await.unwrap());
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "succeeded");
    assert_eq!(shop.processor.captured()[calls.capture..], [1000, 1000], "{mode:?}");
    assert_eq!(shop.processor.refunded(), [1000], "{mode:?}");
    let modes = shop.processor.modes();
    assert!(
        modes.len() == calls.authorize + 1 && modes.iter().all(|m| *m == mode),
        "{mode:?}: {modes:?}"
    );
    shop.stop().await;
}
