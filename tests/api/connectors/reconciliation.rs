//! The reconciliation job against the fake Stripe: a payment authorized at
//! Stripe whose answer was never recorded (left `processing`) is found
//! authorized through `sync` and nothing is captured; one Stripe never saw
//! is failed from the second round on, after its overdue alert; two
//! replicas sweeping at once take each round once.

use std::sync::Arc;

use paywarden::services::payments::{PaymentPolicy, Payments};
use paywarden::services::reconciliation::{sweep, Sweep};
use serde_json::{json, Value};

use super::fake_stripe::FakeStripe;
use super::{pay_with_card, stripe_connectors, EAGER, TEST_KEY, VISA};
use crate::both_backends;
use crate::support::{Replica, TestApp};

/// A manual-capture payment of 9.00 EUR, confirmed or not: its id.
async fn pay(gateway: &Replica, sk: &str, confirm: bool) -> String {
    let payment = pay_with_card(gateway, sk, VISA, 900, confirm).await;
    payment["id"].as_str().unwrap().to_owned()
}

/// The payment's row as a crash before its answer was recorded leaves it.
async fn left_processing(app: &TestApp, id: &str) {
    sqlx::query(
        "UPDATE payments SET status = 'processing', amount_capturable = 0, processor_reference = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(app.store.reader())
    .await
    .unwrap();
}

async fn status(gateway: &Replica, sk: &str, id: &str) -> Value {
    gateway
        .get(&format!("/v1/payments/{id}"), sk)
        .await
        .json()
        .await
        .unwrap()
}

both_backends! {
    async fn payments_left_processing_are_resolved_through_sync_once_and_never_captured(app) {
        let fake = FakeStripe::start().await;
        let mut gateway = app.spawn_replica_routing(app.vault(), stripe_connectors(&fake.base)).await;
        let (_, sk) = app.merchant_with_secret("Reconciled shop").await;
        let r = gateway.post("/v1/connectors", &sk, &json!({"type": "stripe", "secret_key": TEST_KEY, "default": true})).await;
        assert_eq!(r.status(), 200);
        let authorized = pay(&gateway, &sk, true).await;
        left_processing(app, &authorized).await;
        let never_sent = pay(&gateway, &sk, false).await;
        let conn: String = sqlx::query_scalar("SELECT connector FROM payments WHERE id = $1")
            .bind(&authorized)
            .fetch_one(app.store.reader())
            .await
            .unwrap();
        sqlx::query("UPDATE payments SET status = 'processing', connector = $1 WHERE id = $2")
            .bind(&conn)
            .bind(&never_sent)
            .execute(app.store.reader())
            .await
            .unwrap();

        // Two replicas' jobs (fresh connectors: nothing remembered) at once.
        let job = || Payments::new(
            app.store.clone(),
            Arc::new(app.vault()),
            stripe_connectors(&fake.base),
            PaymentPolicy::default(),
            paywarden::api::views::snapshots(),
        );
        let (one, two) = (job(), job());
        let (a, b) = tokio::join!(sweep(&one, &app.store, &EAGER), sweep(&two, &app.store, &EAGER));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.resolved + b.resolved, 1, "{a:?} {b:?}");
        assert_eq!(a.overdue + b.overdue, 1, "the unseen payment is announced once: {a:?} {b:?}");
        let shown = status(&gateway, &sk, &authorized).await;
        assert_eq!(shown["status"], "requires_capture", "{shown}");
        let shown = status(&gateway, &sk, &never_sent).await;
        assert_eq!(shown["status"], "processing", "{shown}");
        assert!(shown["history"].as_array().unwrap().iter().any(|h| h["outcome"] == "overdue"), "{shown}");

        // Each payment's round was taken once.
        let attempts: Vec<i64> = sqlx::query_scalar("SELECT attempts FROM reconciliation_claims WHERE payment_id IN ($1, $2)")
            .bind(&authorized)
            .bind(&never_sent)
            .fetch_all(app.store.reader())
            .await
            .unwrap();
        assert_eq!(attempts, vec![1, 1]);
        assert_eq!(sweep(&one, &app.store, &EAGER).await.unwrap(), Sweep::default(), "backing off");
        // An hour later, the next round fails the payment Stripe has no
        // record of.
        sqlx::query("UPDATE reconciliation_claims SET next_at = 0")
            .execute(app.store.reader())
            .await
            .unwrap();
        let next = sweep(&one, &app.store, &EAGER).await.unwrap();
        assert_eq!(next, Sweep { resolved: 1, unresolved: 0, overdue: 0 });
        let shown = status(&gateway, &sk, &never_sent).await;
        assert_eq!((shown["status"].as_str(), shown["decline_code"].as_str()), (Some("failed"), Some("processor_unavailable")), "{shown}");
        assert_eq!(sweep(&one, &app.store, &EAGER).await.unwrap(), Sweep::default(), "nothing left");

        // Only asked: one confirm (the original), no capture, no cancel.
        let applied = fake.applied();
        assert_eq!((applied.confirms, applied.captures), (1, 0));
        assert!(fake.calls().iter().all(|c| !c.path.ends_with("/capture") && !c.path.ends_with("/cancel")));
        let events: Value = gateway.get("/v1/events?limit=100", &sk).await.json().await.unwrap();
        let overdue = events["data"].as_array().unwrap().iter()
            .filter(|e| e["type"] == "payment.reconciliation_overdue")
            .count();
        assert_eq!(overdue, 1);
        gateway.stop().await;
    }
}
