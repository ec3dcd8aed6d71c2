//! Refunds left `pending` after an unknown outcome at Stripe, reconciled
//! by the job against the fake Stripe: one Stripe made is found by its
//! `metadata[paywarden_refund]` and succeeds (refunded once, never again);
//! one Stripe never received fails from the second round on and gives its
//! amount back; one that cannot be looked up is announced overdue once.

use std::sync::Arc;
use std::time::Duration;

use paywarden::services::payments::{PaymentPolicy, Payments};
use paywarden::services::reconciliation::{sweep, Sweep};
use serde_json::{json, Value};

use super::fake_stripe::{Damage, FakeStripe, Fault};
use super::{pay_with_card, stripe_connectors, EAGER, TEST_KEY, VISA};
use crate::both_backends;
use crate::support::{Replica, TestApp};

struct Shop {
    gateway: Replica,
    sk: String,
    job: Payments<paywarden::services::Store>,
}

impl Shop {
    async fn open(app: &TestApp, fake: &FakeStripe) -> Shop {
        let gateway = app
            .spawn_replica_routing(app.vault(), stripe_connectors(&fake.base))
            .await;
        let (_, sk) = app.merchant_with_secret("Refunding shop").await;
        let body = json!({"type": "stripe", "secret_key": TEST_KEY, "default": true});
        assert_eq!(gateway.post("/v1/connectors", &sk, &body).await.status(), 200);
        let job = Payments::new(
            app.store.clone(),
            Arc::new(app.vault()),
            stripe_connectors(&fake.base),
            PaymentPolicy::default(),
            paywarden::api::views::snapshots(),
        );
        Shop { gateway, sk, job }
    }

    /// A payment of 30.00 EUR captured at Stripe: its id.
    async fn captured(&self) -> String {
        let payment = pay_with_card(&self.gateway, &self.sk, VISA, 3000, true).await;
        let id = payment["id"].as_str().unwrap().to_owned();
        let r = self
            .gateway
            .post(&format!("/v1/payments/{id}/capture"), &self.sk, &json!({}))
            .await;
        assert_eq!(r.status(), 200);
        id
    }

    /// A refund of `amount` whose answer from Stripe is lost: its id, left
    /// `pending` with a 503 to the merchant.
    async fn lost_refund(&self, payment: &str, amount: i64) -> String {
        let r = self
            .gateway
            .post("/v1/refunds", &self.sk, &json!({"payment": payment, "amount": amount}))
            .await;
        assert_eq!(r.status(), 503, "an unknown outcome");
        let list: Value = self
            .gateway
            .get(&format!("/v1/refunds?payment={payment}"), &self.sk)
            .await
            .json()
            .await
            .unwrap();
        let refund = &list["data"][0];
        assert_eq!(refund["status"], "pending", "{list}");
        refund["id"].as_str().unwrap().to_owned()
    }

    async fn get(&self, path: &str) -> Value {
        self.gateway.get(path, &self.sk).await.json().await.unwrap()
    }

    async fn events_of_type(&self, kind: &str) -> usize {
        let events = self.get("/v1/events?limit=100").await;
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == kind)
            .count()
    }
}

async fn next_round_due(app: &TestApp) {
    sqlx::query("UPDATE reconciliation_claims SET next_at = 0")
        .execute(app.store.reader())
        .await
        .unwrap();
}

both_backends! {
    async fn a_refund_stripe_made_is_found_and_succeeds_without_a_second_refund(app) {
        let fake = FakeStripe::start().await;
        let mut shop = Shop::open(app, &fake).await;
        let payment = shop.captured().await;
        fake.inject("/v1/refunds", Fault::Processed(Damage::Delay(Duration::from_secs(4))));
        let refund = shop.lost_refund(&payment, 1200).await;
        assert_eq!(fake.applied().refunds, 1, "Stripe made it");

        let done = sweep(&shop.job, &app.store, &EAGER).await.unwrap();
        assert_eq!(done, Sweep { resolved: 1, unresolved: 0, overdue: 0 });
        let shown = shop.get(&format!("/v1/refunds/{refund}")).await;
        assert_eq!(shown["status"], "succeeded", "{shown}");
        let shown = shop.get(&format!("/v1/payments/{payment}")).await;
        assert_eq!(shown["amount_refunded"], 1200, "{shown}");
        assert_eq!(shop.events_of_type("refund.succeeded").await, 1);
        assert_eq!(sweep(&shop.job, &app.store, &EAGER).await.unwrap(), Sweep::default(), "nothing left");
        // Only asked: one refund made at Stripe, one lookup.
        assert_eq!(fake.applied().refunds, 1);
        let posts = fake.calls().iter().filter(|c| c.method == "POST" && c.path == "/v1/refunds").count();
        assert_eq!(posts, 1, "the job never refunds");
        let lookup = fake.calls().into_iter().find(|c| c.method == "GET" && c.path == "/v1/refunds").unwrap();
        assert!(lookup.query.contains("payment_intent=pi_"), "{}", lookup.query);
        shop.gateway.stop().await;
    }

    async fn a_refund_stripe_never_received_fails_from_the_second_round_and_gives_its_amount_back(app) {
        let fake = FakeStripe::start().await;
        let mut shop = Shop::open(app, &fake).await;
        let payment = shop.captured().await;
        fake.inject("/v1/refunds", Fault::ResetUnprocessed);
        let refund = shop.lost_refund(&payment, 3000).await;
        assert_eq!(fake.applied().refunds, 0);
        // While pending, its amount is reserved: nothing more to refund.
        let r = shop.gateway.post("/v1/refunds", &shop.sk, &json!({"payment": payment, "amount": 100})).await;
        assert_eq!(r.status(), 409, "reserved by the pending refund");
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "amount_exceeds_refundable");

        // First round: not found may be Stripe lagging; it waits.
        let first = sweep(&shop.job, &app.store, &EAGER).await.unwrap();
        assert_eq!((first.resolved, first.unresolved), (0, 1), "{first:?}");
        assert_eq!(shop.get(&format!("/v1/refunds/{refund}")).await["status"], "pending");
        next_round_due(app).await;
        let second = sweep(&shop.job, &app.store, &EAGER).await.unwrap();
        assert_eq!(second, Sweep { resolved: 1, unresolved: 0, overdue: 0 });
        let shown = shop.get(&format!("/v1/refunds/{refund}")).await;
        assert_eq!(shown["status"], "failed", "{shown}");
        assert_eq!(shop.events_of_type("refund.failed").await, 1);
        // The amount is refundable again, and refunds once at Stripe.
        let r = shop.gateway.post("/v1/refunds", &shop.sk, &json!({"payment": payment, "amount": 3000})).await;
        assert_eq!(r.status(), 200);
        assert_eq!(fake.applied().refunds, 1);
        shop.gateway.stop().await;
    }

    async fn a_refund_that_cannot_be_looked_up_stays_pending_and_is_announced_overdue_once(app) {
        let fake = FakeStripe::start().await;
        let mut shop = Shop::open(app, &fake).await;
        let payment = shop.captured().await;
        fake.inject("/v1/refunds", Fault::Processed(Damage::Delay(Duration::from_secs(4))));
        let refund = shop.lost_refund(&payment, 500).await;
        fake.inject("/v1/refunds", Fault::server_error(500));

        let done = sweep(&shop.job, &app.store, &EAGER).await.unwrap();
        assert_eq!(done, Sweep { resolved: 0, unresolved: 1, overdue: 1 });
        assert_eq!(shop.get(&format!("/v1/refunds/{refund}")).await["status"], "pending");
        assert_eq!(shop.events_of_type("refund.reconciliation_overdue").await, 1);
        let audit: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'refund.reconciliation_overdue'")
            .fetch_one(app.store.reader())
            .await
            .unwrap();
        assert_eq!(audit, 1);

        // The next round finds it made; it is not announced again.
        next_round_due(app).await;
        let done = sweep(&shop.job, &app.store, &EAGER).await.unwrap();
        assert_eq!(done, Sweep { resolved: 1, unresolved: 0, overdue: 0 });
        assert_eq!(shop.events_of_type("refund.reconciliation_overdue").await, 1);
        assert_eq!(fake.applied().refunds, 1);
        shop.gateway.stop().await;
    }
}
