//! The low-value counters live in the database and move in the payment's
//! own unit of work: ten payments of one card confirmed at once exempt
//! exactly five (no read-modify-write race), and the counters belong to
//! one merchant's card.

use paywarden::domain::sca::OnUnavailable;
use serde_json::Value;

use super::{decision, Shop, DE_A};
use crate::both_backends;

/// The stored counters of the merchant's cards: (consecutive, cents).
async fn stored(app: &crate::support::TestApp, shop: &Shop) -> Vec<(i64, i64)> {
    sqlx::query_as("SELECT consecutive, cumulative_cents FROM sca_counters WHERE merchant_id = $1 AND mode = 'test'")
        .bind(shop.merchant.as_str())
        .fetch_all(app.store.reader())
        .await
        .unwrap()
}

/// Ten EUR 5 payments of one card (A: no SCA resets), confirmed at once.
async fn check_concurrent(app: &crate::support::TestApp, shop: &Shop) {
    let tokens = futures_util::future::join_all((0..10).map(|_| shop.token(DE_A))).await;
    let payments = futures_util::future::join_all(tokens.iter().map(|token| async move {
        let body = serde_json::json!({"amount": 500, "currency": "eur", "payment_method": token, "confirm": true});
        shop.gateway.post("/v1/payments", &shop.sk, &body).await
    }))
    .await;
    let mut exempt = 0;
    for r in payments {
        let status = r.status();
        let p: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["status"], "succeeded", "{p}");
        match decision(&p) {
            (d, e) if d == "exempt" && e == "low_value" => exempt += 1,
            (d, _) => assert_eq!(d, "frictionless", "{p}"),
        }
    }
    assert_eq!(exempt, 5, "exactly five low-value exemptions");
    assert_eq!(stored(app, shop).await, [(5, 2_500)]);
}

both_backends! {
    async fn concurrent_payments_of_one_card_never_exempt_more_than_five(app) {
        let shop = Shop::open(app, None, OnUnavailable::Fail).await;
        check_concurrent(app, &shop).await;
        shop.stop().await;
    }

    async fn the_counters_are_the_merchants_own(app) {
        let first = Shop::open(app, None, OnUnavailable::Fail).await;
        for _ in 0..5 {
            assert_eq!(decision(&first.pay_eur(DE_A, 100).await).0, "exempt");
        }
        assert_eq!(decision(&first.pay_eur(DE_A, 100).await).0, "frictionless");
        // Another merchant's payment of the same card starts its own run.
        let second = Shop::open(app, None, OnUnavailable::Fail).await;
        assert_eq!(decision(&second.pay_eur(DE_A, 100).await).0, "exempt");
        assert_eq!(stored(app, &second).await, [(1, 100)]);
        assert_eq!(stored(app, &first).await, [(5, 500)]);
        first.stop().await;
        second.stop().await;
    }
}
