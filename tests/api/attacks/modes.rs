//! Test and live are separate worlds. A merchant holds objects of both modes
//! (token, payment, refund, event, webhook endpoint, API keys); every route is
//! tried with a key of the other mode on each of them, in both directions:
//! each answers the same 404 as for an object that does not exist, lists
//! never show the other mode's objects, and nothing of the other mode changes.
//! Merchant-wide settings belong to the live secret key once the merchant has
//! live keys; audit entries and webhook deliveries carry their mode.

use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::ids::MerchantId;
use paywarden::domain::permission::Permission;
use serde_json::{json, Value};

use super::{assert_api_error, Rows};
use crate::both_backends;
use crate::payments::{error_of, token};
use crate::support::{new_key, TestApp};

/// One mode's keys and objects of one merchant.
struct World {
    mode: Mode,
    sk: String,
    /// A restricted key that may reveal cards and read and revoke keys.
    rk: String,
    rk_id: String,
    token: String,
    /// A payment waiting for confirmation.
    open_payment: String,
    /// A succeeded payment, refunded in part.
    paid_payment: String,
    refund: String,
    event: String,
    endpoint: String,
}

async fn key(
    app: &TestApp,
    merchant: &MerchantId,
    mode: Mode,
    kind: KeyKind,
    permissions: &[Permission],
) -> (String, String) {
    let mut new = new_key(merchant, kind, permissions);
    new.mode = mode;
    let issued = app.issue(new).await;
    (issued.secret.expose().to_owned(), issued.key.id.to_string())
}

async fn world(app: &TestApp, merchant: &MerchantId, mode: Mode) -> World {
    let (sk, _) = key(app, merchant, mode, KeyKind::Secret, &[]).await;
    let (rk, rk_id) = key(
        app,
        merchant,
        mode,
        KeyKind::Restricted,
        &[
            Permission::TokensReveal,
            Permission::ApiKeysRead,
            Permission::ApiKeysWrite,
        ],
    )
    .await;
    let token = token(app, &sk, "4242424242424242").await;
    let create =
        |confirm: bool| json!({"amount": 5000, "currency": "usd", "payment_method": token, "confirm": confirm});
    let open: Value = app
        .post("/v1/payments", &sk, &create(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open["status"], "requires_confirmation", "{open}");
    let paid: Value = app
        .post("/v1/payments", &sk, &create(false))
        .await
        .json()
        .await
        .unwrap();
    let paid_id = paid["id"].as_str().unwrap().to_owned();
    match mode {
        Mode::Test => {
            let r: Value = app
                .post(&format!("/v1/payments/{paid_id}/confirm"), &sk, &json!({}))
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(r["status"], "succeeded", "{r}");
        }
        // The sandbox takes no live payments, and this merchant has no live
        // connection (its live payments record `unconfigured`): the fixture
        // settles this one as a live processor would have, with the sandbox
        // standing in for that processor's refunds.
        Mode::Live => {
            sqlx::query(
                "UPDATE payments SET status = 'succeeded', amount_received = amount, \
                 processor_reference = 'sbx_live_fixture', connector = 'sandbox' WHERE id = $1",
            )
            .bind(&paid_id)
            .execute(app.store.reader())
            .await
            .unwrap();
        }
    }
    let refund: Value = app
        .post("/v1/refunds", &sk, &json!({"payment": paid_id, "amount": 100}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refund["status"], "succeeded", "{refund}");
    let events: Value = app.get("/v1/events?limit=1", &sk).await.json().await.unwrap();
    let event = events["data"][0]["id"].as_str().unwrap().to_owned();
    // A public literal address: live endpoints must resolve to public ones.
    let endpoint: Value = app
        .post(
            "/v1/webhook_endpoints",
            &sk,
            &json!({"url": "https://8.8.8.8/hooks", "events": ["*"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    World {
        mode,
        sk,
        rk,
        rk_id,
        token,
        open_payment: open["id"].as_str().unwrap().to_owned(),
        paid_payment: paid_id,
        refund: refund["id"].as_str().unwrap().to_owned(),
        event,
        endpoint: endpoint["id"].as_str().unwrap().to_owned(),
    }
}

/// The request answers 404 `resource_missing`, like an unknown id.
async fn assert_missing(r: reqwest::Response, case: &str) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let e = assert_api_error(status, &text, case);
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("resource_missing")),
        "{case}: {text}"
    );
}

/// The ids a list answers.
async fn listed(app: &TestApp, path: &str, key: &str) -> Vec<String> {
    let r = app.get(path, key).await;
    assert_eq!(r.status(), 200, "{path}");
    let body: Value = r.json().await.unwrap();
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every route with `caller`'s keys on `target`'s objects.
async fn cross(app: &TestApp, caller: &World, target: &World) {
    let dir = format!("{:?} key on {:?} objects", caller.mode, target.mode);
    let sk = &caller.sk;
    // Reads.
    for path in [
        format!("/v1/payments/{}", target.open_payment),
        format!("/v1/payments/{}", target.paid_payment),
        format!("/v1/refunds/{}", target.refund),
        format!("/v1/tokens/{}", target.token),
        format!("/v1/events/{}", target.event),
        format!("/v1/webhook_endpoints/{}", target.endpoint),
        format!("/v1/webhook_endpoints/{}/attempts", target.endpoint),
    ] {
        assert_missing(app.get(&path, sk).await, &format!("{dir}: GET {path}")).await;
    }
    assert_missing(
        app.get(&format!("/v1/api_keys/{}", target.rk_id), &caller.rk).await,
        &format!("{dir}: GET api key"),
    )
    .await;
    // Changes.
    for (path, body) in [
        (format!("/v1/payments/{}/confirm", target.open_payment), json!({})),
        (format!("/v1/payments/{}/cancel", target.open_payment), json!({})),
        (format!("/v1/payments/{}/capture", target.paid_payment), json!({})),
        (
            format!("/v1/webhook_endpoints/{}", target.endpoint),
            json!({"url": "https://8.8.4.4/stolen"}),
        ),
        (
            format!("/v1/webhook_endpoints/{}", target.endpoint),
            json!({"disabled": true}),
        ),
        (
            format!("/v1/webhook_endpoints/{}/rotate_secret", target.endpoint),
            json!({}),
        ),
    ] {
        assert_missing(app.post(&path, sk, &body).await, &format!("{dir}: POST {path}")).await;
    }
    assert_missing(
        app.post("/v1/refunds", sk, &json!({"payment": target.paid_payment, "amount": 1}))
            .await,
        &format!("{dir}: refund of the other mode's payment"),
    )
    .await;
    for path in [
        format!("/v1/tokens/{}", target.token),
        format!("/v1/webhook_endpoints/{}", target.endpoint),
    ] {
        let r = app
            .client()
            .delete(app.url(&path))
            .bearer_auth(sk)
            .send()
            .await
            .unwrap();
        assert_missing(r, &format!("{dir}: DELETE {path}")).await;
    }
    assert_missing(
        app.post(&format!("/v1/tokens/{}/reveal", target.token), &caller.rk, &json!({}))
            .await,
        &format!("{dir}: reveal"),
    )
    .await;
    assert_missing(
        app.post(&format!("/v1/api_keys/{}/revoke", target.rk_id), &caller.rk, &json!({}))
            .await,
        &format!("{dir}: revoke"),
    )
    .await;
    // The other mode's card cannot pay in this mode.
    let (status, e) = error_of(
        app.post(
            "/v1/payments",
            sk,
            &json!({"amount": 100, "currency": "usd", "payment_method": target.token, "confirm": true}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str(), e["param"].as_str()),
        (409, Some("resource_missing"), Some("payment_method")),
        "{dir}: {e}"
    );
    // Lists hold nothing of the other mode.
    let theirs = [
        &target.open_payment,
        &target.paid_payment,
        &target.refund,
        &target.event,
        &target.endpoint,
        &target.rk_id,
    ];
    for path in [
        "/v1/payments?limit=100",
        "/v1/refunds?limit=100",
        "/v1/events?limit=100",
        "/v1/webhook_endpoints?limit=100",
    ] {
        let ids = listed(app, path, sk).await;
        assert!(!ids.is_empty(), "{dir}: {path} lists the caller's own objects");
        assert!(
            ids.iter().all(|id| !theirs.contains(&id)),
            "{dir}: {path} shows the other mode: {ids:?}"
        );
    }
    let keys = listed(app, "/v1/api_keys?limit=100", &caller.rk).await;
    assert!(keys.contains(&caller.rk_id), "{dir}");
    assert!(
        !keys.contains(&target.rk_id),
        "{dir}: the other mode's keys are listed: {keys:?}"
    );
}

/// The other world is exactly as it was: each object still reads the same
/// through its own mode's key.
async fn unchanged(app: &TestApp, world: &World, before: &[(String, Value)]) {
    for (path, was) in before {
        let now: Value = app.get(path, &world.sk).await.json().await.unwrap();
        assert_eq!(&now, was, "{path} changed through the other mode");
    }
    let r = app.get(&format!("/v1/api_keys/{}", world.rk_id), &world.rk).await;
    let key: Value = r.json().await.unwrap();
    assert!(key["revoked_at"].is_null(), "{key}");
}

async fn reads(app: &TestApp, world: &World) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for path in [
        format!("/v1/payments/{}", world.open_payment),
        format!("/v1/payments/{}", world.paid_payment),
        format!("/v1/refunds/{}", world.refund),
        format!("/v1/tokens/{}", world.token),
        format!("/v1/events/{}", world.event),
        format!("/v1/webhook_endpoints/{}", world.endpoint),
    ] {
        let r = app.get(&path, &world.sk).await;
        assert_eq!(r.status(), 200, "{path}");
        out.push((path, r.json().await.unwrap()));
    }
    out
}

both_backends! {
    async fn test_and_live_objects_are_invisible_and_untouchable_across_modes(app) {
        let merchant = app.merchant("Two worlds").await;
        let test = world(app, &merchant, Mode::Test).await;
        let live = world(app, &merchant, Mode::Live).await;
        let (test_before, live_before) = (reads(app, &test).await, reads(app, &live).await);
        let rows = Rows::snapshot(app).await;

        cross(app, &test, &live).await;
        cross(app, &live, &test).await;

        unchanged(app, &test, &test_before).await;
        unchanged(app, &live, &live_before).await;
        let after = Rows::count(app).await;
        assert_eq!(after.data(), rows.data(), "a cross-mode request created or removed something");
    }

    async fn merchant_settings_belong_to_the_live_secret_key_once_there_are_live_keys(app) {
        let merchant = app.merchant("Settings").await;
        let (test_sk, _) = key(app, &merchant, Mode::Test, KeyKind::Secret, &[]).await;
        // Before any live key exists, the test secret key manages the merchant.
        let r = app.post("/v1/merchant", &test_sk, &json!({"name": "Renamed in test"})).await;
        assert_eq!(r.status(), 200);
        let (live_sk, _) = key(app, &merchant, Mode::Live, KeyKind::Secret, &[]).await;
        for body in [json!({"name": "Hijacked"}), json!({"element_origins": ["https://evil.example"]})] {
            let (status, e) = error_of(app.post("/v1/merchant", &test_sk, &body).await).await;
            assert_eq!((status, e["code"].as_str()), (403, Some("live_secret_key_required")), "{body}: {e}");
        }
        let shown: Value = app.get("/v1/merchant", &live_sk).await.json().await.unwrap();
        assert_eq!(shown["name"], "Renamed in test");
        let r = app.post("/v1/merchant", &live_sk, &json!({"name": "Live name", "element_origins": ["https://shop.example"]})).await;
        assert_eq!(r.status(), 200);
        let shown: Value = app.get("/v1/merchant", &test_sk).await.json().await.unwrap();
        assert_eq!(shown["name"], "Live name");
    }

    async fn the_card_fields_page_works_in_its_publishable_keys_own_mode(app) {
        let merchant = app.merchant("Page").await;
        let (live_sk, _) = key(app, &merchant, Mode::Live, KeyKind::Secret, &[]).await;
        let r = app.post("/v1/merchant", &live_sk, &json!({"element_origins": ["https://shop.example"]})).await;
        assert_eq!(r.status(), 200);
        for mode in [Mode::Test, Mode::Live] {
            let (pk, _) = key(app, &merchant, mode, KeyKind::Publishable, &[]).await;
            let page = app
                .client()
                .get(app.url(&format!("/elements/card?key={pk}&origin=https://shop.example")))
                .send()
                .await
                .unwrap();
            assert_eq!(page.status(), 200);
            let html = page.text().await.unwrap();
            assert!(html.contains(&format!("data-mode=\"{}\"", mode.as_str())), "{html}");
            // What the page tokenizes (with its key) is of that mode.
            let t: Value = app
                .post("/v1/tokens", &pk, &json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034}}))
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(t["livemode"], mode == Mode::Live, "{t}");
            assert!(t["card"].get("fingerprint").is_none(), "{t}");
        }
    }

    async fn audit_entries_and_webhook_deliveries_carry_their_mode(app) {
        let merchant = app.merchant("Modes").await;
        let test = world(app, &merchant, Mode::Test).await;
        let live = world(app, &merchant, Mode::Live).await;
        let records = app
            .wait_for_audit(|r| {
                r.iter().any(|e| e.event.resource.as_deref() == Some(live.token.as_str()))
                    && r.iter().any(|e| e.event.resource.as_deref() == Some(test.token.as_str()))
                    && [Mode::Live, Mode::Test]
                        .iter()
                        .all(|m| r.iter().any(|e| e.event.action == "api.request" && e.event.mode == Some(*m)))
            })
            .await;
        for (world, mode) in [(&test, Mode::Test), (&live, Mode::Live)] {
            let created = records
                .iter()
                .find(|e| e.event.action == "token.created" && e.event.resource.as_deref() == Some(world.token.as_str()))
                .unwrap();
            assert_eq!(created.event.mode, Some(mode), "{created:?}");
            for e in records.iter().filter(|e| e.event.resource.as_deref() == Some(world.open_payment.as_str())) {
                assert_eq!(e.event.mode, Some(mode), "{e:?}");
            }
        }
        // Request entries written by the request writer carry the key's mode too.
        let requests: Vec<_> = records.iter().filter(|e| e.event.action == "api.request").collect();
        assert!(requests.iter().any(|e| e.event.mode == Some(Mode::Live)));
        assert!(requests.iter().any(|e| e.event.mode == Some(Mode::Test)));
        let report = paywarden::services::audit::verify(&app.store).await.unwrap();
        assert!(report.intact(), "{:?}", report.first_break);
        // Every delivery is its endpoint's mode and its event's.
        let rows: Vec<(String, Option<String>, String, String)> = sqlx::query_as(
            "SELECT d.endpoint_id, d.mode, w.mode, e.mode FROM webhook_deliveries d \
             JOIN webhook_endpoints w ON w.id = d.endpoint_id \
             JOIN events e ON e.id = d.event_id AND e.merchant_id = d.merchant_id",
        )
        .fetch_all(app.store.reader())
        .await
        .unwrap();
        // Deliveries exist only for events after the endpoints were created:
        // make one in each mode.
        let mut rows = rows;
        if rows.is_empty() {
            for world in [&test, &live] {
                app.post("/v1/payments", &world.sk, &json!({"amount": 100, "currency": "usd"})).await;
            }
            rows = sqlx::query_as(
                "SELECT d.endpoint_id, d.mode, w.mode, e.mode FROM webhook_deliveries d \
                 JOIN webhook_endpoints w ON w.id = d.endpoint_id \
                 JOIN events e ON e.id = d.event_id AND e.merchant_id = d.merchant_id",
            )
            .fetch_all(app.store.reader())
            .await
            .unwrap();
        }
        assert!(rows.iter().any(|r| r.0 == test.endpoint) && rows.iter().any(|r| r.0 == live.endpoint), "{rows:?}");
        for (endpoint, delivery, endpoint_mode, event_mode) in rows {
            assert_eq!(delivery.as_deref(), Some(endpoint_mode.as_str()), "{endpoint}");
            assert_eq!(endpoint_mode, event_mode, "{endpoint} was sent another mode's event");
        }
    }
}
