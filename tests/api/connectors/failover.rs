//! Failover routing and circuit breakers through the whole gateway: a
//! connection names a fallback (`POST /v1/connectors/{id}`), an
//! authorization that could not reach the primary's processor (nothing was
//! sent) goes to the fallback, which then serves the payment's capture; a
//! decline or an unknown outcome never fails over; a breaker opens after
//! outages in a row, stops calls from reaching the processor, and closes
//! after a successful probe. The fake counts every call per account key.

use std::time::Duration;

use paywarden::connectors::breaker::BreakerSettings;
use paywarden::connectors::http::HttpSettings;
use paywarden::connectors::{Connectors, StripeSettings};
use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::permission::Permission;
use serde_json::{json, Value};

use super::fake_stripe::{FakeStripe, Fault};
use super::{pay_with_card, TEST_KEY};
use crate::both_backends;
use crate::support::{new_key, Replica, TestApp};

/// The fallback account's key (the fake knows both).
const FALLBACK_KEY: &str = "sk_test_paywarden_fallback";

fn connectors(fake_base: &str, breaker: BreakerSettings) -> Connectors {
    Connectors::builtin()
        .with_stripe(StripeSettings {
            base_url: fake_base.to_owned(),
            http: HttpSettings {
                extra_root_ca_pem: Some(FakeStripe::ca_pem()),
                request_timeout: Duration::from_secs(2),
                ..HttpSettings::default()
            },
        })
        .with_breaker(breaker)
}

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn connect(gateway: &Replica, sk: &str, key: &str, default: bool) -> String {
    let (status, conn) = json_of(
        gateway
            .post(
                "/v1/connectors",
                sk,
                &json!({"type": "stripe", "secret_key": key, "default": default}),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{conn}");
    conn["id"].as_str().unwrap().to_owned()
}

async fn recorded_connector(app: &TestApp, payment: &Value) -> String {
    sqlx::query_scalar("SELECT connector FROM payments WHERE id = $1")
        .bind(payment["id"].as_str().unwrap())
        .fetch_one(app.store.reader())
        .await
        .unwrap()
}

/// A merchant whose default connection (the fake's main key) falls back to
/// a second one (the fallback key).
async fn routed(app: &TestApp, gateway: &Replica) -> (String, String, String) {
    let (_, sk) = app.merchant_with_secret("Failover shop").await;
    let primary = connect(gateway, &sk, TEST_KEY, true).await;
    let fallback = connect(gateway, &sk, FALLBACK_KEY, false).await;
    let (status, updated) = json_of(
        gateway
            .post(
                &format!("/v1/connectors/{primary}"),
                &sk,
                &json!({"fallback": fallback}),
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, updated["fallback"].as_str()),
        (200, Some(fallback.as_str())),
        "{updated}"
    );
    (sk, primary, fallback)
}

both_backends! {
    async fn an_unreachable_primary_fails_over_and_the_fallback_serves_the_payment_after(app) {
        let fake = FakeStripe::start().await;
        let mut gateway = app.spawn_replica_routing(app.vault(), connectors(&fake.base, BreakerSettings::default())).await;
        let (sk, _, fallback) = routed(app, &gateway).await;
        // Stripe refuses the primary account's calls unprocessed (429).
        fake.outage(TEST_KEY, Fault::rate_limited(None));
        let payment = pay_with_card(&gateway, &sk, "4242424242424242", 1500, true).await;
        assert_eq!(payment["status"], "requires_capture", "{payment}");
        assert_eq!(recorded_connector(app, &payment).await, fallback);
        let id = payment["id"].as_str().unwrap();
        let (status, shown) = json_of(gateway.get(&format!("/v1/payments/{id}"), &sk).await).await;
        assert_eq!(status, 200);
        let history = shown["history"].as_array().unwrap();
        assert!(history.iter().any(|h| h["outcome"] == "failover"), "{shown}");
        // The capture goes where the money is: the fallback.
        let (status, captured) = json_of(gateway.post(&format!("/v1/payments/{id}/capture"), &sk, &json!({})).await).await;
        assert_eq!((status, captured["status"].as_str()), (200, Some("succeeded")), "{captured}");
        assert!(fake.calls_with(TEST_KEY).iter().all(|c| c.answer.is_none()), "nothing was done for the primary");
        assert_eq!(fake.calls_with(FALLBACK_KEY).iter().filter(|c| c.path.ends_with("/confirm")).count(), 1);
        assert_eq!((fake.applied().confirms, fake.applied().captures), (1, 1));
        let audit: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE resource = $1")
            .bind(id)
            .fetch_all(app.store.reader())
            .await
            .unwrap();
        assert!(audit.iter().any(|a| a == "payment.failover"), "{audit:?}");
        gateway.stop().await;
    }

    async fn a_decline_or_an_unknown_outcome_never_fails_over(app) {
        let fake = FakeStripe::start().await;
        let mut gateway = app.spawn_replica_routing(app.vault(), connectors(&fake.base, BreakerSettings::default())).await;
        let (sk, primary, _) = routed(app, &gateway).await;
        let declined = pay_with_card(&gateway, &sk, "4000000000000002", 1500, true).await;
        assert_eq!(declined["status"], "failed", "{declined}");
        assert_eq!(recorded_connector(app, &declined).await, primary);
        // A 500 after a POST: Stripe may have done it. Never elsewhere.
        fake.outage(TEST_KEY, Fault::server_error(500));
        let unknown = pay_with_card(&gateway, &sk, "4242424242424242", 1500, true).await;
        assert_eq!(unknown["decline_code"], "processor_timeout", "{unknown}");
        assert_eq!(recorded_connector(app, &unknown).await, primary);
        assert!(fake.calls_with(FALLBACK_KEY).is_empty(), "the fallback was never called");
        gateway.stop().await;
    }

    async fn a_breaker_opens_after_outages_stops_calling_the_processor_and_a_probe_closes_it(app) {
        let fake = FakeStripe::start().await;
        let breaker = BreakerSettings { failure_threshold: 2, open_for: Duration::from_millis(500) };
        let mut gateway = app.spawn_replica_routing(app.vault(), connectors(&fake.base, breaker)).await;
        let (_, sk) = app.merchant_with_secret("Breaker shop").await;
        connect(&gateway, &sk, TEST_KEY, true).await;
        fake.outage(TEST_KEY, Fault::rate_limited(None));
        for _ in 0..2 {
            let failed = pay_with_card(&gateway, &sk, "4242424242424242", 1500, true).await;
            assert_eq!(failed["decline_code"], "processor_unavailable", "{failed}");
        }
        let calls = fake.calls_with(TEST_KEY).len();
        let metrics = gateway.client.get(format!("{}/metrics", gateway.operator)).send().await.unwrap().text().await.unwrap();
        assert!(
            metrics.lines().any(|l| l.starts_with("paywarden_connector_breakers_open{connector=\"stripe\"}") && !l.ends_with(" 0")),
            "{metrics}"
        );
        let refused = pay_with_card(&gateway, &sk, "4242424242424242", 1500, true).await;
        assert_eq!(refused["decline_code"], "processor_unavailable", "{refused}");
        assert_eq!(fake.calls_with(TEST_KEY).len(), calls, "an open breaker sends nothing");
        // The processor is back; after open_for, one probe goes and closes it.
        fake.restore(TEST_KEY);
        tokio::time::sleep(Duration::from_millis(600)).await;
        let probe = pay_with_card(&gateway, &sk, "4242424242424242", 1500, true).await;
        assert_eq!(probe["status"], "requires_capture", "{probe}");
        let next = pay_with_card(&gateway, &sk, "4242424242424242", 1500, true).await;
        assert_eq!(next["status"], "requires_capture", "{next}");
        gateway.stop().await;
    }

    async fn only_the_merchants_own_active_other_connection_can_be_a_fallback(app) {
        let fake = FakeStripe::start().await;
        let mut gateway = app.spawn_replica_routing(app.vault(), connectors(&fake.base, BreakerSettings::default())).await;
        let (merchant, sk) = app.merchant_with_secret("Fallback rules").await;
        let primary = connect(&gateway, &sk, TEST_KEY, true).await;
        let second = connect(&gateway, &sk, FALLBACK_KEY, false).await;
        let (_, other_sk) = app.merchant_with_secret("Someone else").await;
        let theirs = connect(&gateway, &other_sk, TEST_KEY, false).await;
        let update = |key: &str, id: &str, body: Value| {
            let (key, path) = (key.to_owned(), format!("/v1/connectors/{id}"));
            let gateway = &gateway;
            async move { json_of(gateway.post(&path, &key, &body).await).await }
        };
        let refused = |answer: &(u16, Value), status: u16, param: Option<&str>| {
            assert_eq!(answer.0, status, "{}", answer.1);
            if let Some(param) = param {
                assert_eq!(answer.1["error"]["param"].as_str(), Some(param), "{}", answer.1);
            }
        };
        // Another merchant's connection is no connection of this one's.
        refused(&update(&sk, &primary, json!({"fallback": theirs})).await, 409, Some("fallback"));
        refused(&update(&sk, &primary, json!({"fallback": primary})).await, 400, Some("fallback"));
        refused(&update(&sk, &primary, json!({"fallback": "conn_nope"})).await, 400, Some("fallback"));
        refused(&update(&sk, &primary, json!({})).await, 400, Some("fallback"));
        refused(&update(&sk, &primary, json!({"fallback": second, "other": 1})).await, 400, None);
        // Another merchant cannot touch this connection; the other mode
        // does not see it.
        refused(&update(&other_sk, &primary, json!({"fallback": null})).await, 404, None);
        let mut live = new_key(&merchant, KeyKind::Secret, &[]);
        live.mode = Mode::Live;
        let live_sk = app.issue(live).await.secret.expose().to_owned();
        refused(&update(&live_sk, &primary, json!({"fallback": null})).await, 404, None);
        let restricted = app
            .issue(new_key(&merchant, KeyKind::Restricted, &[Permission::PaymentsWrite]))
            .await
            .secret
            .expose()
            .to_owned();
        refused(&update(&restricted, &primary, json!({"fallback": second})).await, 403, None);
        let anonymous = gateway
            .client
            .post(gateway.url(&format!("/v1/connectors/{primary}")))
            .json(&json!({"fallback": second}))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);
        // A disabled connection is no fallback; clearing works.
        let (status, _) = json_of(gateway.post(&format!("/v1/connectors/{second}/disable"), &sk, &json!({})).await).await;
        assert_eq!(status, 200);
        refused(&update(&sk, &primary, json!({"fallback": second})).await, 400, Some("fallback"));
        let (status, cleared) = update(&sk, &primary, json!({"fallback": null})).await;
        assert_eq!((status, &cleared["fallback"]), (200, &Value::Null), "{cleared}");
        gateway.stop().await;
    }
}
