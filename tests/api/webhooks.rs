//! Webhook endpoints and deliveries, end to end: a real HTTPS receiver with
//! its own CA, events inserted through the real outbox code, the real
//! delivery worker of the test gateway (fast retry schedule `TEST_RETRY`).

use std::time::Duration;

use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::permission::Permission;
use paywarden::webhooks::{verify, verify_at, VerifyError};
use serde_json::{json, Value};

use crate::both_backends;
use crate::receiver::{emit, Receiver};
use crate::support::{new_key, TestApp};

const WAIT: Duration = Duration::from_secs(20);

fn now_secs() -> i64 {
    paywarden::domain::time::Timestamp::now().as_secs()
}

/// Creates an endpoint; returns (id, secret).
async fn endpoint(app: &TestApp, sk: &str, url: &str, events: &[&str]) -> (String, String) {
    let r = app
        .post("/v1/webhook_endpoints", sk, &json!({"url": url, "events": events}))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

fn payment(id: &str) -> Value {
    json!({"id": id, "object": "payment", "amount": 1000, "currency": "eur", "status": "succeeded"})
}

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Waits until `GET path` satisfies `pred`.
async fn wait_api(app: &TestApp, path: &str, sk: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let body: Value = app.get(path, sk).await.json().await.unwrap();
        if pred(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never satisfied the condition: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_backends! {
    async fn the_secret_is_shown_once_and_stored_only_sealed(app) {
        let (_, sk) = app.merchant_with_secret("Hooks").await;
        let r = app.post("/v1/webhook_endpoints", &sk, &json!({"url": "https://hooks.example.com/pw", "events": ["payment.succeeded"]})).await;
        assert_eq!(r.status(), 200);
        let created: Value = r.json().await.unwrap();
        let secret = created["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_") && secret.len() > 30, "{secret}");
        assert_eq!(created["object"], "webhook_endpoint");
        assert_eq!(created["status"], "enabled");
        assert_eq!(created["livemode"], false);
        assert_eq!(created["events"], json!(["payment.succeeded"]));
        let id = created["id"].as_str().unwrap();
        assert!(id.starts_with("we_"));
        let shown: Value = app.get(&format!("/v1/webhook_endpoints/{id}"), &sk).await.json().await.unwrap();
        assert_eq!(shown["id"], id);
        assert!(shown.get("secret").is_none(), "{shown}");
        let listed: Value = app.get("/v1/webhook_endpoints", &sk).await.json().await.unwrap();
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        assert!(!listed.to_string().contains(&secret));
        let row: (Option<String>, Option<String>) = sqlx::query_as(
            "SELECT secret_ciphertext, secret_wrapped_dek FROM webhook_endpoints WHERE id = $1")
            .bind(id).fetch_one(app.store.reader()).await.unwrap();
        let (ct, dek) = (row.0.unwrap(), row.1.unwrap());
        assert!(!ct.contains(&secret) && !ct.contains("whsec_") && !dek.is_empty());
        let audit = app.audit().await;
        assert!(audit.iter().any(|r| r.event.action == "webhook_endpoint.created"
            && r.event.resource.as_deref() == Some(id)));
        assert!(!format!("{audit:?}").contains(&secret), "the secret reached the audit trail");
    }

    async fn deliveries_are_signed_and_verify_with_the_exported_verifier(app) {
        let (merchant, sk) = app.merchant_with_secret("Signed").await;
        let receiver = Receiver::start().await;
        let (_, secret) = endpoint(app, &sk, &receiver.url("/hooks"), &["payment.succeeded"]).await;
        let event_id = emit(&app.store, &merchant, Mode::Test, "payment.succeeded", payment("pay_1")).await;
        let got = receiver.wait_for(WAIT, |r| !r.is_empty()).await;
        let delivery = &got[0];
        assert_eq!(delivery.path, "/hooks");
        assert_eq!(delivery.content_type, "application/json");
        assert!(delivery.user_agent.starts_with("paywarden-webhooks/"), "{}", delivery.user_agent);
        let event = verify(&delivery.body, &delivery.signature, &secret).unwrap();
        assert_eq!(event.id, event_id);
        assert_eq!(event.event_type, "payment.succeeded");
        assert!(!event.livemode);
        assert_eq!(event.data["object"]["id"], "pay_1");
        let body = delivery.json();
        assert_eq!(body["object"], "event");
        // The body is the event as the API shows it.
        let (status, shown) = json_of(app.get(&format!("/v1/events/{event_id}"), &sk).await).await;
        assert_eq!(status, 200);
        assert_eq!(shown, body);
        // Tampered, wrong secret, too old, from the future.
        let mut tampered = delivery.body.clone();
        let i = tampered.iter().position(|b| *b == b'1').unwrap();
        tampered[i] = b'2';
        assert_eq!(verify(&tampered, &delivery.signature, &secret).err(), Some(VerifyError::SignatureMismatch));
        assert_eq!(verify(&delivery.body, &delivery.signature, "whsec_wrong").err(), Some(VerifyError::SignatureMismatch));
        assert_eq!(
            verify_at(&delivery.body, &delivery.signature, &secret, now_secs() + 400).err(),
            Some(VerifyError::TimestampOutOfTolerance)
        );
        assert_eq!(
            verify_at(&delivery.body, &delivery.signature, &secret, now_secs() - 400).err(),
            Some(VerifyError::TimestampOutOfTolerance),
            "a signature dated in the future is refused"
        );
        // Delivered exactly once when the receiver answers 200 at once.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(receiver.received().len(), 1);
    }

    async fn failed_deliveries_are_retried_then_succeed_and_attempts_are_listed(app) {
        let (merchant, sk) = app.merchant_with_secret("Retry").await;
        let receiver = Receiver::start().await;
        receiver.respond_with(&[500, 500]);
        let (id, secret) = endpoint(app, &sk, &receiver.url("/hooks"), &["*"]).await;
        let event_id = emit(&app.store, &merchant, Mode::Test, "payment.failed", payment("pay_2")).await;
        let got = receiver.wait_for(WAIT, |r| r.len() >= 3).await;
        for r in &got {
            assert_eq!(verify(&r.body, &r.signature, &secret).unwrap().id, event_id, "every retry is the same event, re-signed");
        }
        let path = format!("/v1/webhook_endpoints/{id}/attempts");
        let attempts = wait_api(app, &path, &sk, |b| b["data"].as_array().is_some_and(|d| d.len() == 3)).await;
        let data = attempts["data"].as_array().unwrap();
        assert_eq!(attempts["object"], "list");
        // Newest first.
        assert_eq!(data[0]["attempt"], 3);
        assert_eq!(data[0]["status_code"], 200);
        assert_eq!(data[0]["succeeded"], true);
        for (a, n) in data[1..].iter().zip([2, 1]) {
            assert_eq!(a["attempt"], n);
            assert_eq!(a["status_code"], 500);
            assert_eq!(a["succeeded"], false);
            assert_eq!(a["error"], "unexpected_status");
            assert_eq!(a["event"], event_id.as_str());
            assert_eq!(a["webhook_endpoint"], id.as_str());
        }
        // Pagination.
        let first: Value = app.get(&format!("{path}?limit=1"), &sk).await.json().await.unwrap();
        assert_eq!(first["has_more"], true);
        assert_eq!(first["data"][0]["id"], data[0]["id"]);
        let next: Value = app.get(&format!("{path}?limit=2&starting_after={}", data[0]["id"].as_str().unwrap()), &sk)
            .await.json().await.unwrap();
        assert_eq!(next["has_more"], false);
        assert_eq!(next["data"][0]["id"], data[1]["id"]);
        assert_eq!(next["data"][1]["id"], data[2]["id"]);
        let bad = app.get(&format!("{path}?starting_after=evt_x"), &sk).await;
        assert_eq!(bad.status(), 400);
        // Succeeded: no further attempt.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(receiver.received().len(), 3);
    }

    async fn an_endpoint_failing_for_the_whole_retry_window_is_disabled_with_an_event(app) {
        let (merchant, sk) = app.merchant_with_secret("Broken").await;
        let broken = Receiver::start().await;
        broken.always(503);
        let watcher = Receiver::start().await;
        let (id, _) = endpoint(app, &sk, &broken.url("/hooks"), &["payment.succeeded"]).await;
        let (_, watcher_secret) = endpoint(app, &sk, &watcher.url("/watch"), &["webhook_endpoint.disabled"]).await;
        let started = std::time::Instant::now();
        emit(&app.store, &merchant, Mode::Test, "payment.succeeded", payment("pay_3")).await;
        let shown = wait_api(app, &format!("/v1/webhook_endpoints/{id}"), &sk, |b| b["status"] == "disabled").await;
        assert!(started.elapsed() >= crate::support::TEST_RETRY.window, "not disabled before the retry window ended");
        assert!(shown["disabled_at"].as_i64().is_some());
        let attempts = broken.received().len();
        assert!(attempts >= 4, "retried with backoff: {attempts} attempts");
        // The event says so, through the API and by webhook to subscribers.
        let events: Value = app.get("/v1/events?type=webhook_endpoint.disabled", &sk).await.json().await.unwrap();
        let data = events["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{events}");
        assert_eq!(data[0]["data"]["object"]["id"], id.as_str());
        assert_eq!(data[0]["data"]["object"]["status"], "disabled");
        assert!(data[0]["data"]["object"].get("secret").is_none());
        let got = watcher.wait_for(WAIT, |r| !r.is_empty()).await;
        let event = verify(&got[0].body, &got[0].signature, &watcher_secret).unwrap();
        assert_eq!(event.event_type, "webhook_endpoint.disabled");
        assert_eq!(event.data["object"]["id"], id.as_str());
        assert!(app.audit().await.iter().any(|r| r.event.action == "webhook_endpoint.disabled"
            && r.event.resource.as_deref() == Some(id.as_str())));
        // A disabled endpoint gets nothing more; re-enabled, it gets new events again.
        emit(&app.store, &merchant, Mode::Test, "payment.succeeded", payment("pay_4")).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(broken.received().len(), attempts);
        let r = app.post(&format!("/v1/webhook_endpoints/{id}"), &sk, &json!({"disabled": false})).await;
        let (status, body) = json_of(r).await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "enabled");
        assert_eq!(body["disabled_at"], Value::Null);
        broken.always(200);
        emit(&app.store, &merchant, Mode::Test, "payment.succeeded", payment("pay_5")).await;
        broken.wait_for(WAIT, |r| r.iter().any(|x| x.json()["data"]["object"]["id"] == "pay_5")).await;
    }

    async fn during_a_rotation_both_secrets_verify_and_after_it_only_the_new_one(app) {
        let (merchant, sk) = app.merchant_with_secret("Rotate").await;
        let receiver = Receiver::start().await;
        let (id, old) = endpoint(app, &sk, &receiver.url("/hooks"), &["payment.captured"]).await;
        let path = format!("/v1/webhook_endpoints/{id}/rotate_secret");
        let r = app.post(&path, &sk, &json!({"expires_in": 604_801})).await;
        let (status, body) = json_of(r).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["param"], "expires_in");
        let (status, rotated) = json_of(app.post(&path, &sk, &json!({"expires_in": 2})).await).await;
        assert_eq!(status, 200);
        let rotated_at = std::time::Instant::now();
        let new = rotated["secret"].as_str().unwrap().to_owned();
        assert!(new.starts_with("whsec_") && new != old);
        assert!(rotated["previous_secret_expires_at"].as_i64().is_some());
        let shown: Value = app.get(&format!("/v1/webhook_endpoints/{id}"), &sk).await.json().await.unwrap();
        assert!(shown.get("secret").is_none());
        emit(&app.store, &merchant, Mode::Test, "payment.captured", payment("pay_6")).await;
        let got = receiver.wait_for(WAIT, |r| r.len() == 1).await;
        assert_eq!(got[0].signature.matches("v1=").count(), 2, "{}", got[0].signature);
        assert!(verify(&got[0].body, &got[0].signature, &new).is_ok());
        assert!(verify(&got[0].body, &got[0].signature, &old).is_ok(), "the old secret still verifies during the overlap");
        // After the overlap, only the new secret signs.
        tokio::time::sleep(Duration::from_millis(2200).saturating_sub(rotated_at.elapsed())).await;
        emit(&app.store, &merchant, Mode::Test, "payment.captured", payment("pay_7")).await;
        let got = receiver.wait_for(WAIT, |r| r.len() == 2).await;
        assert_eq!(got[1].signature.matches("v1=").count(), 1, "{}", got[1].signature);
        assert!(verify(&got[1].body, &got[1].signature, &new).is_ok());
        assert_eq!(verify(&got[1].body, &got[1].signature, &old).err(), Some(VerifyError::SignatureMismatch));
        let shown: Value = app.get(&format!("/v1/webhook_endpoints/{id}"), &sk).await.json().await.unwrap();
        assert_eq!(shown["previous_secret_expires_at"], Value::Null);
        assert!(app.audit().await.iter().any(|r| r.event.action == "webhook_endpoint.secret_rotated"));
        assert!(!format!("{:?}", app.audit().await).contains(&new));
    }

    async fn urls_must_be_https_and_live_endpoints_public(app) {
        let (merchant, sk) = app.merchant_with_secret("Urls").await;
        let mut live = new_key(&merchant, KeyKind::Secret, &[]);
        live.mode = Mode::Live;
        let live = app.issue(live).await;
        let live = live.secret.expose().to_owned();
        let refused = |key: String, url: &'static str| async move {
            let r = app.post("/v1/webhook_endpoints", &key, &json!({"url": url, "events": ["*"]})).await;
            let (status, body) = json_of(r).await;
            assert_eq!(status, 400, "{url}: {body}");
            assert_eq!(body["error"]["param"], "url", "{url}: {body}");
            assert!(!body["error"]["message"].as_str().unwrap().contains(url));
            body["error"]["code"].as_str().unwrap().to_owned()
        };
        assert_eq!(refused(sk.clone(), "http://hooks.example.com/").await, "url_invalid");
        assert_eq!(refused(sk.clone(), "http://localhost:9/").await, "url_invalid", "plain http only in dev mode");
        assert_eq!(refused(sk.clone(), "https://user:pw@hooks.example.com/").await, "url_invalid");
        assert_eq!(refused(sk.clone(), "not a url").await, "url_invalid");
        for url in ["https://127.0.0.1/", "https://10.1.2.3/", "https://169.254.169.254/latest", "https://[::1]:8443/",
                    "https://[::ffff:10.0.0.1]/", "https://192.168.0.10/", "https://localhost:8443/"] {
            assert_eq!(refused(live.clone(), url).await, "url_not_allowed", "{url}");
        }
        // Live: a public address is accepted. Test mode: private targets are too.
        let r = app.post("/v1/webhook_endpoints", &live, &json!({"url": "https://8.8.8.8/hooks", "events": ["*"]})).await;
        let (status, body) = json_of(r).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["livemode"], true);
        let r = app.post("/v1/webhook_endpoints", &sk, &json!({"url": "https://10.1.2.3/hooks", "events": ["*"]})).await;
        assert_eq!(r.status(), 200);
        // The same rules on update.
        let id = body["id"].as_str().unwrap();
        let r = app.post(&format!("/v1/webhook_endpoints/{id}"), &live, &json!({"url": "https://169.254.169.254/"})).await;
        let (status, body) = json_of(r).await;
        assert_eq!((status, body["error"]["param"].as_str()), (400, Some("url")));
    }

    async fn a_live_endpoint_is_checked_again_at_delivery(app) {
        // A live endpoint whose URL became non-public (as by DNS rebinding or a
        // row written before the rule): the worker refuses to connect.
        let (merchant, _) = app.merchant_with_secret("Rebind").await;
        let mut live = new_key(&merchant, KeyKind::Secret, &[]);
        live.mode = Mode::Live;
        let live = app.issue(live).await.secret.expose().to_owned();
        let receiver = Receiver::start().await;
        let (id, _) = endpoint(app, &live, "https://8.8.8.8/hooks", &["*"]).await;
        sqlx::query("UPDATE webhook_endpoints SET url = $1 WHERE id = $2")
            .bind(receiver.url("/hooks").replace("127.0.0.1", "localhost")).bind(&id)
            .execute(app.store.reader()).await.unwrap();
        emit(&app.store, &merchant, Mode::Live, "payment.succeeded", payment("pay_8")).await;
        let attempts = wait_api(app, &format!("/v1/webhook_endpoints/{id}/attempts"), &live,
            |b| b["data"].as_array().is_some_and(|d| !d.is_empty())).await;
        assert_eq!(attempts["data"][0]["error"], "blocked_address", "{attempts}");
        assert_eq!(attempts["data"][0]["status_code"], Value::Null);
        assert!(receiver.received().is_empty(), "nothing reached the loopback receiver");
    }

    async fn deliveries_follow_subscriptions_mode_and_status(app) {
        let (merchant, sk) = app.merchant_with_secret("Subs").await;
        let receiver = Receiver::start().await;
        let (a, _) = endpoint(app, &sk, &receiver.url("/a"), &["payment.succeeded"]).await;
        let (b, _) = endpoint(app, &sk, &receiver.url("/b"), &["*"]).await;
        let (c, _) = endpoint(app, &sk, &receiver.url("/c"), &["refund.failed", "payment.requires_action"]).await;
        let (d, _) = endpoint(app, &sk, &receiver.url("/d"), &["payment.succeeded"]).await;
        let r = app.post(&format!("/v1/webhook_endpoints/{d}"), &sk, &json!({"disabled": true})).await;
        assert_eq!(r.status(), 200);
        let (_, other_sk) = app.merchant_with_secret("Other").await;
        let (e, _) = endpoint(app, &other_sk, &receiver.url("/e"), &["*"]).await;
        let targets = |event: String| async move {
            let rows = paywarden::store::webhook_deliveries::of_event(app.store.reader(), &event).await.unwrap();
            let mut ids: Vec<String> = rows.into_iter().map(|r| r.endpoint_id).collect();
            ids.sort();
            ids
        };
        let sorted = |mut v: Vec<String>| { v.sort(); v };
        let e1 = emit(&app.store, &merchant, Mode::Test, "payment.succeeded", payment("pay_s1")).await;
        assert_eq!(targets(e1).await, sorted(vec![a.clone(), b.clone()]));
        let e2 = emit(&app.store, &merchant, Mode::Test, "refund.failed", json!({"id": "re_1"})).await;
        assert_eq!(targets(e2).await, sorted(vec![b.clone(), c.clone()]));
        // `_` is a LIKE wildcard: it must not match other characters.
        let e3 = emit(&app.store, &merchant, Mode::Test, "payment.requires_action", payment("pay_s3")).await;
        assert_eq!(targets(e3).await, sorted(vec![b.clone(), c.clone()]));
        let e4 = emit(&app.store, &merchant, Mode::Test, "payment.amount_capturable_updated", payment("pay_s4")).await;
        assert_eq!(targets(e4).await, vec![b.clone()]);
        let e5 = emit(&app.store, &merchant, Mode::Live, "payment.succeeded", payment("pay_s5")).await;
        assert!(targets(e5).await.is_empty(), "test-mode endpoints get no live events");
        let got = receiver.wait_for(WAIT, |r| r.len() >= 7).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut paths: Vec<String> = receiver.received().iter().map(|r| r.path.clone()).collect();
        paths.sort();
        assert_eq!(paths, ["/a", "/b", "/b", "/b", "/b", "/c", "/c"], "{got:?}");
        let _ = e;
    }

    async fn updates_and_deletes_take_effect(app) {
        let (merchant, sk) = app.merchant_with_secret("Edit").await;
        let receiver = Receiver::start().await;
        receiver.always(500);
        let (id, _) = endpoint(app, &sk, &receiver.url("/one"), &["payment.succeeded"]).await;
        let r = app.post(&format!("/v1/webhook_endpoints/{id}"), &sk,
            &json!({"url": receiver.url("/two"), "events": ["refund.succeeded", "refund.succeeded"]})).await;
        let (status, body) = json_of(r).await;
        assert_eq!(status, 200);
        assert_eq!(body["url"], receiver.url("/two"));
        assert_eq!(body["events"], json!(["refund.succeeded"]));
        let r = app.post(&format!("/v1/webhook_endpoints/{id}"), &sk, &json!({"events": []})).await;
        let (status, body) = json_of(r).await;
        assert_eq!((status, body["error"]["param"].as_str()), (400, Some("events")));
        let r = app.post(&format!("/v1/webhook_endpoints/{id}"), &sk, &json!({"events": ["payment.exploded"]})).await;
        assert_eq!(r.status(), 400);
        let r = app.post(&format!("/v1/webhook_endpoints/{id}"), &sk, &json!({"colour": "red"})).await;
        let (status, body) = json_of(r).await;
        assert_eq!((status, body["error"]["param"].as_str()), (400, Some("colour")));
        let event = emit(&app.store, &merchant, Mode::Test, "refund.succeeded", json!({"id": "re_2"})).await;
        receiver.wait_for(WAIT, |r| !r.is_empty()).await;
        let r = app.client().delete(app.url(&format!("/v1/webhook_endpoints/{id}"))).bearer_auth(&sk).send().await.unwrap();
        let (status, body) = json_of(r).await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({"id": id, "object": "webhook_endpoint", "deleted": true}));
        assert_eq!(app.get(&format!("/v1/webhook_endpoints/{id}"), &sk).await.status(), 404);
        let listed: Value = app.get("/v1/webhook_endpoints", &sk).await.json().await.unwrap();
        assert!(listed["data"].as_array().unwrap().is_empty());
        let rows = paywarden::store::webhook_deliveries::of_event(app.store.reader(), &event).await.unwrap();
        assert_eq!(rows[0].status, "failed");
        let row: (Option<String>, Option<String>) = sqlx::query_as(
            "SELECT secret_ciphertext, secret_wrapped_dek FROM webhook_endpoints WHERE id = $1")
            .bind(&id).fetch_one(app.store.reader()).await.unwrap();
        assert_eq!(row, (None, None), "the secret is destroyed");
        let seen = receiver.received().len();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(receiver.received().len(), seen, "no delivery after deletion");
    }

    async fn every_webhook_route_isolates_tenants(app) {
        let (a_merchant, a_sk) = app.merchant_with_secret("Alpha").await;
        let (_, b_sk) = app.merchant_with_secret("Beta").await;
        let (id, _) = endpoint(app, &a_sk, "https://hooks.example.com/a", &["*"]).await;
        emit(&app.store, &a_merchant, Mode::Test, "payment.succeeded", payment("pay_t")).await;
        let missing = paywarden::domain::ids::WebhookEndpointId::generate().unwrap().to_string();
        let client = app.client();
        for target in [id.as_str(), missing.as_str()] {
            let base = format!("/v1/webhook_endpoints/{target}");
            let answers = [
                json_of(app.get(&base, &b_sk).await).await,
                json_of(app.post(&base, &b_sk, &json!({"disabled": true})).await).await,
                json_of(client.delete(app.url(&base)).bearer_auth(&b_sk).send().await.unwrap()).await,
                json_of(app.post(&format!("{base}/rotate_secret"), &b_sk, &json!({})).await).await,
                json_of(app.get(&format!("{base}/attempts"), &b_sk).await).await,
            ];
            for (status, body) in answers {
                assert_eq!(status, 404, "{target}: {body}");
                assert_eq!(body["error"]["code"], "resource_missing");
                assert_eq!(body["error"]["message"], "No such webhook_endpoint");
            }
        }
        let listed: Value = app.get("/v1/webhook_endpoints", &b_sk).await.json().await.unwrap();
        assert!(listed["data"].as_array().unwrap().is_empty());
        // Untouched for its owner.
        let shown: Value = app.get(&format!("/v1/webhook_endpoints/{id}"), &a_sk).await.json().await.unwrap();
        assert_eq!(shown["status"], "enabled");
        let r = app.get("/v1/webhook_endpoints/we_'%20OR%201=1--", &b_sk).await;
        assert_eq!(r.status(), 404);
    }

    async fn webhook_routes_need_the_right_key(app) {
        let (merchant, sk) = app.merchant_with_secret("Perms").await;
        let publishable = app.key(&merchant, KeyKind::Publishable, &[]).await.secret.expose().to_owned();
        let reader = app.key(&merchant, KeyKind::Restricted, &[Permission::WebhooksRead]).await.secret.expose().to_owned();
        let writer = app.key(&merchant, KeyKind::Restricted, &[Permission::WebhooksWrite]).await.secret.expose().to_owned();
        let body = json!({"url": "https://hooks.example.com/p", "events": ["*"]});
        assert_eq!(app.post("/v1/webhook_endpoints", &publishable, &body).await.status(), 403);
        assert_eq!(app.get("/v1/webhook_endpoints", &publishable).await.status(), 403);
        let (status, denied) = json_of(app.post("/v1/webhook_endpoints", &reader, &body).await).await;
        assert_eq!(status, 403);
        assert_eq!(denied["error"]["code"], "permission_denied");
        assert_eq!(app.get("/v1/webhook_endpoints", &reader).await.status(), 200);
        let (status, created) = json_of(app.post("/v1/webhook_endpoints", &writer, &body).await).await;
        assert_eq!(status, 200);
        assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
        let id = created["id"].as_str().unwrap();
        assert_eq!(app.post(&format!("/v1/webhook_endpoints/{id}/rotate_secret"), &reader, &json!({})).await.status(), 403);
        assert_eq!(app.get(&format!("/v1/webhook_endpoints/{id}"), &sk).await.status(), 200);
        assert_eq!(app.get("/v1/events", &reader).await.status(), 403, "events need events:read");
    }
}

both_backends! {
    async fn kek_rotation_rewraps_webhook_secrets(app) {
        use paywarden::store::webhook_endpoints::SealedColumns;
        use paywarden::vault::{KekVersion, StaticKeyring};
        let (_, sk) = app.merchant_with_secret("Kek").await;
        let (id, old) = endpoint(app, &sk, "https://hooks.example.com/kek", &["*"]).await;
        let rotated: Value = app.post(&format!("/v1/webhook_endpoints/{id}/rotate_secret"), &sk, &json!({})).await.json().await.unwrap();
        let new = rotated["secret"].as_str().unwrap().to_owned();
        let (new_b64, _) = crate::support::test_pepper();
        let new_file = app.data_path().join("kek-v2");
        crate::support::write_secret_file(&new_file, &new_b64);
        let readable = [("PAYWARDEN_VAULT__PREVIOUS_KEK_FILES", format!("[{{version = 2, file = {new_file:?}}}]"))];
        let report = app.cli_json_env(&["vault", "rotate-kek", "--new-key-file", new_file.to_str().unwrap(), "--new-version", "2"], &readable);
        assert_eq!(report["report"]["webhook_secrets"]["rewrapped"], 2, "{report}");
        assert_eq!(report["report"]["webhook_secrets"]["remaining"], 0, "{report}");
        let row: (String, i64, String, String, i64, String, String) = sqlx::query_as(
            "SELECT merchant_id, kek_version, secret_wrapped_dek, secret_ciphertext, previous_kek_version, \
             previous_wrapped_dek, previous_ciphertext FROM webhook_endpoints WHERE id = $1")
            .bind(&id).fetch_one(app.store.reader()).await.unwrap();
        assert_eq!((row.1, row.4), (2, 2));
        // Only the new KEK is needed now, for both secrets.
        let only_new = StaticKeyring::single(KekVersion::new(2), crate::support::kek(&new_b64));
        let open = |v, w: &str, c: &str| paywarden::webhooks::secret::open(&only_new, &id, &row.0,
            &SealedColumns { kek_version: v, wrapped_dek: w.to_owned(), ciphertext: c.to_owned() })
            .unwrap().expose_secret().to_owned();
        assert_eq!(open(row.1, &row.2, &row.3), new);
        assert_eq!(open(row.4, &row.5, &row.6), old);
    }
}

both_backends! {
    async fn the_openapi_document_describes_events_and_webhook_endpoints(app) {
        let doc: Value = app.client().get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
        let paths = &doc["paths"];
        for (path, methods) in [
            ("/v1/events", &["get"][..]),
            ("/v1/events/{id}", &["get"]),
            ("/v1/webhook_endpoints", &["get", "post"]),
            ("/v1/webhook_endpoints/{id}", &["get", "post", "delete"]),
            ("/v1/webhook_endpoints/{id}/rotate_secret", &["post"]),
            ("/v1/webhook_endpoints/{id}/attempts", &["get"]),
        ] {
            for m in methods {
                assert!(paths[path][m]["operationId"].is_string(), "{m} {path} undocumented");
            }
        }
        let schemas = &doc["components"]["schemas"];
        let events = &schemas["CreateWebhookEndpoint"]["properties"]["events"];
        assert_eq!(events["minItems"], 1);
        let names = events["items"]["enum"].as_array().unwrap();
        assert!(names.contains(&json!("*")) && names.contains(&json!("payment.succeeded")));
        assert_eq!(schemas["CreateWebhookEndpoint"]["additionalProperties"], false);
        assert!(schemas["WebhookEndpoint"]["properties"].get("secret").is_none());
        let with_secret = schemas["WebhookEndpointWithSecret"].to_string();
        assert!(with_secret.contains("secret"), "{with_secret}");
        let types = doc["paths"]["/v1/events"]["get"]["parameters"].as_array().unwrap().iter()
            .find(|p| p["name"] == "type").unwrap()["schema"]["enum"].as_array().unwrap().len();
        assert_eq!(types, paywarden::domain::event::EventType::ALL.len());
    }
}

both_backends! {
    async fn a_payment_and_its_refund_reach_the_merchant_as_signed_events(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let receiver = Receiver::start().await;
        let (_, secret) = endpoint(app, &sk, &receiver.url("/hooks"), &["*"]).await;
        let (only_succeeded, _) = endpoint(app, &sk, &receiver.url("/succeeded"), &["payment.succeeded"]).await;
        let p = crate::payments::pay(app, &sk, "4242424242424242", 2500, "automatic").await;
        let pay_id = p["id"].as_str().unwrap().to_owned();
        // Both events of the payment were queued for `*`, one for the other.
        let queued: Vec<(String,)> = sqlx::query_as(
            "SELECT e.type FROM webhook_deliveries d JOIN events e ON e.id = d.event_id WHERE d.endpoint_id = $1")
            .bind(&only_succeeded).fetch_all(app.store.reader()).await.unwrap();
        assert_eq!(queued, [("payment.succeeded".to_owned(),)]);
        let r = app.post("/v1/refunds", &sk, &json!({"payment": pay_id, "amount": 500})).await;
        assert_eq!(r.status(), 200);
        let got = receiver.wait_for(WAIT, |r| r.iter().filter(|d| d.path == "/hooks").count() >= 3).await;
        let mut types = Vec::new();
        for delivery in got.iter().filter(|d| d.path == "/hooks") {
            let event = verify(&delivery.body, &delivery.signature, &secret).unwrap();
            types.push(event.event_type.clone());
            if event.event_type == "payment.succeeded" {
                assert_eq!(event.data["object"]["id"], pay_id.as_str());
                assert_eq!(event.data["object"]["amount_received"], 2500);
                let text = String::from_utf8(delivery.body.clone()).unwrap();
                assert!(!text.contains("4242424242424242"), "no card number in a webhook");
            }
            if event.event_type == "refund.succeeded" {
                assert_eq!(event.data["object"]["payment"], pay_id.as_str());
            }
        }
        types.sort();
        assert_eq!(types, ["payment.created", "payment.succeeded", "refund.succeeded"]);
        // The same events, newest first, through the API.
        let (status, listed) = json_of(app.get("/v1/events?limit=3", &sk).await).await;
        assert_eq!(status, 200);
        let listed: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(listed, ["refund.succeeded", "payment.succeeded", "payment.created"]);
    }
}
