//! Per-merchant processor connections (`/v1/connectors`) through the whole
//! gateway: created, listed, shown and disabled with a secret key only, each
//! mode in its own world; the credentials in no answer, audit entry or
//! database column in clear; a payment routed to the merchant's Stripe
//! connection reaches the fake Stripe with the merchant's key, and its
//! refund still does after the connection was disabled; a live payment
//! without a live connection fails as a configuration error, never
//! sandboxed; KEK rotation re-wraps the credentials and payments go on.

use std::time::Duration;

use paywarden::connectors::http::HttpSettings;
use paywarden::connectors::{Connectors, StripeSettings};
use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::ids::MerchantId;
use paywarden::domain::permission::Permission;
use paywarden::vault::{KekVersion, StaticKeyring};
use serde_json::{json, Value};

use super::fake_stripe::FakeStripe;
use super::{pay_with_card, TEST_KEY, VISA};
use crate::both_backends;
use crate::support::{kek, new_key, test_pepper, write_secret_file, TestApp};

/// A key whose characters must never appear outside the vault.
const SECRET: &str = "sk_test_51ConnSecretKeyValue0000XyZ9";
const SECRET_BODY: &str = "ConnSecretKeyValue";
const WEBHOOK_SECRET: &str = "whsec_ConnWebhookSecretValue";
const WEBHOOK_BODY: &str = "ConnWebhookSecretValue";

fn stripe_settings(fake_base: &str) -> Connectors {
    Connectors::builtin().with_stripe(StripeSettings {
        base_url: fake_base.to_owned(),
        http: HttpSettings {
            extra_root_ca_pem: Some(FakeStripe::ca_pem()),
            request_timeout: Duration::from_secs(2),
            ..HttpSettings::default()
        },
    })
}

async fn key_of(app: &TestApp, merchant: &MerchantId, mode: Mode, kind: KeyKind, permissions: &[Permission]) -> String {
    let mut key = new_key(merchant, kind, permissions);
    key.mode = mode;
    app.issue(key).await.secret.expose().to_owned()
}

async fn column(app: &TestApp, sql: &str, id: &str) -> Option<String> {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(app.store.reader())
        .await
        .unwrap()
}

/// Every text an operator could read of the audit trail.
async fn audit_text(app: &TestApp) -> String {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT action || ' ' || COALESCE(resource, '') || ' ' || COALESCE(reason, '') || ' ' || \
         COALESCE(user_agent, '') FROM audit_log ORDER BY seq",
    )
    .fetch_all(app.store.reader())
    .await
    .unwrap();
    rows.join("\n")
}

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn recorded_connector(app: &TestApp, payment: &str) -> String {
    column(app, "SELECT connector FROM payments WHERE id = $1", payment)
        .await
        .unwrap()
}

both_backends! {
    async fn a_connection_is_created_listed_shown_and_disabled_and_its_secrets_appear_nowhere(app) {
        let (merchant, sk) = app.merchant_with_secret("Connections").await;
        let (status, created) = json_of(app.post("/v1/connectors", &sk, &json!({
            "type": "stripe", "secret_key": SECRET, "webhook_secret": WEBHOOK_SECRET, "default": true
        })).await).await;
        assert_eq!(status, 200, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("conn_"), "{created}");
        assert_eq!(created["object"], "connector");
        assert_eq!(created["type"], "stripe");
        assert_eq!(created["status"], "active");
        assert_eq!(created["default"], true);
        assert_eq!(created["livemode"], false);
        assert_eq!(created["secret_key_last4"], "XyZ9");
        assert_eq!(created["webhook_secret_configured"], true);
        assert_eq!(column(app, "SELECT connector FROM merchants WHERE id = $1", merchant.as_str()).await.unwrap(), id);

        let (_, listed) = json_of(app.get("/v1/connectors", &sk).await).await;
        assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(listed["data"][0]["id"], id.as_str());
        let (status, shown) = json_of(app.get(&format!("/v1/connectors/{id}"), &sk).await).await;
        assert_eq!((status, &shown["default"]), (200, &json!(true)), "{shown}");

        let (status, disabled) = json_of(app.post(&format!("/v1/connectors/{id}/disable"), &sk, &json!({})).await).await;
        assert_eq!(status, 200, "{disabled}");
        assert_eq!(disabled["status"], "disabled");
        assert_eq!(disabled["default"], false);
        assert!(disabled["disabled_at"].is_i64(), "{disabled}");
        // The test mode falls back to the sandbox.
        assert_eq!(column(app, "SELECT connector FROM merchants WHERE id = $1", merchant.as_str()).await.unwrap(), "sandbox");
        let (_, again) = json_of(app.get(&format!("/v1/connectors/{id}"), &sk).await).await;
        assert_eq!(again["status"], "disabled");
        // Operators see the same, and no more.
        let listed_by_operator = app.cli_json(&["connectors", "list", "--merchant", merchant.as_str()]);
        assert_eq!(listed_by_operator["data"][0]["id"], id.as_str(), "{listed_by_operator}");
        assert_eq!(listed_by_operator["data"][0]["secret_key_last4"], "XyZ9");
        let text = String::from_utf8(app.cli(&["connectors", "list", "--merchant", merchant.as_str()]).stdout).unwrap();
        assert!(text.contains(&id) && text.contains("disabled") && text.contains("XyZ9"), "{text}");
        assert!(!listed_by_operator.to_string().contains(SECRET_BODY) && !text.contains(SECRET_BODY));

        for answer in [&created, &listed, &shown, &disabled, &again, &listed_by_operator] {
            let text = answer.to_string();
            assert!(!text.contains(SECRET_BODY) && !text.contains(WEBHOOK_BODY), "{text}");
        }
        let trail = audit_text(app).await;
        assert!(trail.contains("connector.created") && trail.contains("connector.disabled"), "{trail}");
        assert!(trail.contains(&id) && trail.contains("XyZ9"), "{trail}");
        assert!(!trail.contains(SECRET_BODY) && !trail.contains(WEBHOOK_BODY), "{trail}");
        let row = column(
            app,
            "SELECT id || ' ' || merchant_id || ' ' || mode || ' ' || kind || ' ' || status || ' ' || secret_key_last4 \
             || ' ' || wrapped_dek || ' ' || ciphertext FROM processor_connections WHERE id = $1",
            &id,
        ).await.unwrap();
        assert!(row.contains("XyZ9"), "{row}");
        assert!(!row.contains(SECRET_BODY) && !row.contains(WEBHOOK_BODY) && !row.contains("0000XyZ9"), "{row}");
    }

    async fn wrong_mode_publishable_or_malformed_credentials_and_weaker_keys_are_refused(app) {
        let (merchant, sk) = app.merchant_with_secret("Refusals").await;
        let cases = [
            (json!({"type": "stripe", "secret_key": "sk_live_51ConnSecretKeyValue0000"}), "secret_key", "secret_key_wrong_mode"),
            (json!({"type": "stripe", "secret_key": "rk_live_51ConnSecretKeyValue0000"}), "secret_key", "secret_key_wrong_mode"),
            (json!({"type": "stripe", "secret_key": "pk_test_51ConnSecretKeyValue0000"}), "secret_key", "publishable_key_not_allowed"),
            (json!({"type": "stripe", "secret_key": "whsec_ConnSecretKeyValue0000"}), "secret_key", "parameter_invalid"),
            (json!({"type": "square", "secret_key": SECRET}), "type", "parameter_invalid"),
            (json!({"type": "paypal", "secret_key": SECRET}), "secret_key", "parameter_unknown"),
            (json!({"type": "stripe"}), "secret_key", "parameter_missing"),
            (json!({"type": "stripe", "secret_key": SECRET, "webhook_secret": "ConnWebhookSecretValue"}), "webhook_secret", "parameter_invalid"),
        ];
        for (body, param, code) in cases {
            let (status, e) = json_of(app.post("/v1/connectors", &sk, &body).await).await;
            assert_eq!(status, 400, "{body}: {e}");
            assert_eq!((e["error"]["param"].as_str(), e["error"]["code"].as_str()), (Some(param), Some(code)), "{body}: {e}");
            assert!(!e.to_string().contains(SECRET_BODY) && !e.to_string().contains(WEBHOOK_BODY), "{e}");
        }
        // A restricted key (whatever it may do) and a publishable key manage no connection.
        let rk = key_of(app, &merchant, Mode::Test, KeyKind::Restricted, &[Permission::PaymentsWrite, Permission::PaymentsRead]).await;
        let pk = key_of(app, &merchant, Mode::Test, KeyKind::Publishable, &[]).await;
        for weaker in [&rk, &pk] {
            let r = app.post("/v1/connectors", weaker, &json!({"type": "stripe", "secret_key": SECRET})).await;
            assert_eq!(r.status(), 403);
            assert_eq!(app.get("/v1/connectors", weaker).await.status(), 403);
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM processor_connections WHERE merchant_id = $1")
            .bind(merchant.as_str()).fetch_one(app.store.reader()).await.unwrap();
        assert_eq!(count, 0);
        // Nor may they read or disable the secret key's connection.
        let (_, conn) = json_of(app.post("/v1/connectors", &sk, &json!({"type": "stripe", "secret_key": SECRET, "default": true})).await).await;
        let id = conn["id"].as_str().unwrap();
        for weaker in [&rk, &pk] {
            assert_eq!(app.get(&format!("/v1/connectors/{id}"), weaker).await.status(), 403);
            assert_eq!(app.post(&format!("/v1/connectors/{id}/disable"), weaker, &json!({})).await.status(), 403);
        }
        let (_, still) = json_of(app.get(&format!("/v1/connectors/{id}"), &sk).await).await;
        assert_eq!((still["status"].as_str(), still["default"].as_bool()), (Some("active"), Some(true)), "{still}");
    }

    async fn each_mode_and_merchant_sees_and_touches_only_its_own_connections(app) {
        let (merchant, test_sk) = app.merchant_with_secret("Modes").await;
        let live_sk = key_of(app, &merchant, Mode::Live, KeyKind::Secret, &[]).await;
        let (_, stranger) = app.merchant_with_secret("Stranger").await;
        let (_, test_conn) = json_of(app.post("/v1/connectors", &test_sk, &json!({"type": "stripe", "secret_key": SECRET})).await).await;
        let (status, live_conn) = json_of(app.post("/v1/connectors", &live_sk, &json!({
            "type": "stripe", "secret_key": "rk_live_51ConnLiveKeyValue0000Ab12", "default": true
        })).await).await;
        assert_eq!(status, 200, "{live_conn}");
        assert_eq!((live_conn["livemode"].as_bool(), live_conn["default"].as_bool()), (Some(true), Some(true)));
        // A test-mode key is refused by a live key too.
        let (status, e) = json_of(app.post("/v1/connectors", &live_sk, &json!({"type": "stripe", "secret_key": SECRET})).await).await;
        assert_eq!((status, e["error"]["code"].as_str()), (400, Some("secret_key_wrong_mode")));
        for (key, foreign) in [(&live_sk, &test_conn), (&test_sk, &live_conn), (&stranger, &test_conn), (&stranger, &live_conn)] {
            let id = foreign["id"].as_str().unwrap();
            let (status, e) = json_of(app.get(&format!("/v1/connectors/{id}"), key).await).await;
            assert_eq!((status, e["error"]["code"].as_str()), (404, Some("resource_missing")), "{e}");
            assert_eq!(app.post(&format!("/v1/connectors/{id}/disable"), key, &json!({})).await.status(), 404);
        }
        let (_, listed) = json_of(app.get("/v1/connectors", &test_sk).await).await;
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        assert_eq!(listed["data"][0]["id"], test_conn["id"]);
        let (_, listed) = json_of(app.get("/v1/connectors", &stranger).await).await;
        assert!(listed["data"].as_array().unwrap().is_empty());
        // Untouched by the attempts: both still active.
        for (key, conn) in [(&test_sk, &test_conn), (&live_sk, &live_conn)] {
            let id = conn["id"].as_str().unwrap();
            let (_, shown) = json_of(app.get(&format!("/v1/connectors/{id}"), key).await).await;
            assert_eq!(shown["status"], "active", "{shown}");
        }
    }

    async fn a_live_payment_without_a_live_connector_fails_as_configuration_and_is_never_sandboxed(app) {
        let (merchant, _) = app.merchant_with_secret("Live").await;
        let live_sk = key_of(app, &merchant, Mode::Live, KeyKind::Secret, &[]).await;
        let mut gateway = app.spawn_replica().await;
        let payment = pay_with_card(&gateway, &live_sk, VISA, 1000, true).await;
        assert_eq!(payment["status"], "failed", "{payment}");
        assert_eq!(payment["decline_code"], "connector_configuration", "{payment}");
        assert_eq!(recorded_connector(app, payment["id"].as_str().unwrap()).await, "unconfigured");
        // A live connection whose processor host the gateway may not reach
        // (here: not a public address) fails the same way, and disabling it
        // leaves the live mode without a connector again.
        let fake = FakeStripe::start().await;
        let mut routed = app.spawn_replica_routing(app.vault(), stripe_settings(&fake.base)).await;
        let (status, conn) = json_of(routed.post("/v1/connectors", &live_sk, &json!({
            "type": "stripe", "secret_key": "sk_live_51ConnLiveKeyValue0000Cd34", "default": true
        })).await).await;
        assert_eq!(status, 200, "{conn}");
        let payment = pay_with_card(&routed, &live_sk, VISA, 1000, true).await;
        assert_eq!(payment["decline_code"], "connector_configuration", "{payment}");
        assert!(fake.calls().is_empty(), "no card data left for a host live mode may not reach");
        let id = conn["id"].as_str().unwrap();
        assert_eq!(routed.post(&format!("/v1/connectors/{id}/disable"), &live_sk, &json!({})).await.status(), 200);
        let live_route = column(app, "SELECT COALESCE(live_connector, 'none') FROM merchants WHERE id = $1", merchant.as_str()).await;
        assert_eq!(live_route.as_deref(), Some("none"));
        let payment = pay_with_card(&routed, &live_sk, VISA, 1000, true).await;
        assert_eq!(payment["decline_code"], "connector_configuration", "{payment}");
        assert_eq!(recorded_connector(app, payment["id"].as_str().unwrap()).await, "unconfigured");
        gateway.stop().await;
        routed.stop().await;
    }

    async fn a_payment_goes_to_the_merchants_stripe_connection_and_is_refunded_there_after_disabling(app) {
        let fake = FakeStripe::start().await;
        let mut gateway = app.spawn_replica_routing(app.vault(), stripe_settings(&fake.base)).await;
        let (_, sk) = app.merchant_with_secret("Stripe merchant").await;
        let (status, conn) = json_of(gateway.post("/v1/connectors", &sk, &json!({
            "type": "stripe", "secret_key": TEST_KEY, "default": true
        })).await).await;
        assert_eq!(status, 200, "{conn}");
        let conn_id = conn["id"].as_str().unwrap().to_owned();
        let payment = pay_with_card(&gateway, &sk, VISA, 2500, true).await;
        assert_eq!(payment["status"], "requires_capture", "{payment}");
        let id = payment["id"].as_str().unwrap().to_owned();
        assert_eq!(recorded_connector(app, &id).await, conn_id);
        let r = gateway.post(&format!("/v1/payments/{id}/capture"), &sk, &json!({"amount_to_capture": 2000})).await;
        let (status, captured) = json_of(r).await;
        assert_eq!((status, captured["status"].as_str()), (200, Some("succeeded")), "{captured}");

        // Switching away: new payments go to the sandbox, the refund of the
        // Stripe payment still goes to Stripe.
        let (status, _) = json_of(gateway.post(&format!("/v1/connectors/{conn_id}/disable"), &sk, &json!({})).await).await;
        assert_eq!(status, 200);
        let r = gateway.post("/v1/refunds", &sk, &json!({"payment": id, "amount": 500})).await;
        let (status, refund) = json_of(r).await;
        assert_eq!((status, refund["status"].as_str()), (200, Some("succeeded")), "{refund}");
        let applied = fake.applied();
        assert_eq!((applied.confirms, applied.captures, applied.refunds), (1, 1, 1));
        let calls = fake.calls();
        assert!(!calls.is_empty());
        let merchants_key = format!("Bearer {TEST_KEY}");
        for call in &calls {
            assert_eq!(call.authorization.as_deref(), Some(merchants_key.as_str()), "{} {}", call.method, call.path);
        }
        let after = pay_with_card(&gateway, &sk, VISA, 700, true).await;
        assert_eq!(recorded_connector(app, after["id"].as_str().unwrap()).await, "sandbox");
        assert_eq!(fake.applied().intents, applied.intents, "the disabled connection takes no new payment");
        // Another replica (no cached connector) refunds through it too.
        let mut other = app.spawn_replica_routing(app.vault(), stripe_settings(&fake.base)).await;
        let r = other.post("/v1/refunds", &sk, &json!({"payment": id, "amount": 300})).await;
        let (status, refund) = json_of(r).await;
        assert_eq!((status, refund["status"].as_str()), (200, Some("succeeded")), "{refund}");
        assert_eq!(fake.applied().refunds, 2);
        other.stop().await;
        gateway.stop().await;
    }

    async fn kek_rotation_rewraps_connection_credentials_and_payments_go_on(app) {
        let fake = FakeStripe::start().await;
        let mut before = app.spawn_replica_routing(app.vault(), stripe_settings(&fake.base)).await;
        let (_, sk) = app.merchant_with_secret("Rotating").await;
        let (status, conn) = json_of(before.post("/v1/connectors", &sk, &json!({
            "type": "stripe", "secret_key": TEST_KEY, "webhook_secret": WEBHOOK_SECRET, "default": true
        })).await).await;
        assert_eq!(status, 200, "{conn}");
        let payment = pay_with_card(&before, &sk, VISA, 1500, true).await;
        assert_eq!(payment["status"], "requires_capture", "{payment}");
        before.stop().await;
        let kek_of = |status: &Value| status["kek_versions"].as_array().unwrap().iter()
            .map(|v| (v["version"].as_i64().unwrap(), v["connection_credentials"].as_i64().unwrap()))
            .filter(|(_, n)| *n > 0).collect::<Vec<_>>();
        assert_eq!(kek_of(&app.cli_json(&["vault", "status"])), vec![(1, 1)]);

        let (new_b64, _) = test_pepper();
        let file = app.data_path().join("kek-v2");
        write_secret_file(&file, &new_b64);
        let file = file.to_str().unwrap().to_owned();
        let readable = [("PAYWARDEN_VAULT__PREVIOUS_KEK_FILES", format!("[{{version = 2, file = {file:?}}}]"))];
        let done = app.cli_json_env(&["vault", "rotate-kek", "--new-key-file", &file, "--new-version", "2"], &readable);
        assert_eq!(done["report"]["connection_credentials"], json!({"rewrapped": 1, "skipped": 0, "remaining": 0}), "{done}");
        assert_eq!(done["report"]["complete"], true, "{done}");
        assert_eq!(kek_of(&app.cli_json(&["vault", "status"])), vec![(2, 1)]);

        // A replica holding only the new KEK opens the credentials.
        let only_new = StaticKeyring::single(KekVersion::new(2), kek(&new_b64));
        let mut after = app.spawn_replica_routing(app.vault_with(only_new), stripe_settings(&fake.base)).await;
        let id = payment["id"].as_str().unwrap();
        let (status, captured) = json_of(after.post(&format!("/v1/payments/{id}/capture"), &sk, &json!({})).await).await;
        assert_eq!((status, captured["status"].as_str()), (200, Some("succeeded")), "{captured}");
        let next = pay_with_card(&after, &sk, VISA, 900, true).await;
        assert_eq!(next["status"], "requires_capture", "{next}");
        assert_eq!(fake.applied().confirms, 2);
        after.stop().await;
    }
}
