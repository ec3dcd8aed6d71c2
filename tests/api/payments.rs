//! Payments through the API with the sandbox processor: every test card's
//! path, manual and partial capture, cancel, the 3-D Secure challenge (approve,
//! fail, expire), validation and key restrictions, listing, history and the
//! events written with each change.

use std::time::Duration;

use paywarden::domain::api_key::KeyKind;
use paywarden::domain::money::Currency;
use paywarden::domain::permission::Permission;
use paywarden::domain::restrictions::KeyRestrictions;
use serde_json::{json, Value};

use crate::both_backends;
use crate::support::{new_key, TestApp};

/// A token for `number` (with a CVC), created through the API.
pub async fn token(app: &TestApp, key: &str, number: &str) -> String {
    let cvc = if number.starts_with("34") || number.starts_with("37") {
        "1234"
    } else {
        "123"
    };
    let r = app
        .post(
            "/v1/tokens",
            key,
            &json!({"card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": cvc}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

/// Creates and confirms a payment of `amount` USD cents with card `number`.
pub async fn pay(app: &TestApp, key: &str, number: &str, amount: i64, capture: &str) -> Value {
    let tok = token(app, key, number).await;
    let r = app
        .post(
            "/v1/payments",
            key,
            &json!({"amount": amount, "currency": "usd", "payment_method": tok, "confirm": true,
                    "capture_method": capture, "return_url": "https://shop.example/done"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (status, body["error"].clone())
}

/// The event types written for `object`, oldest first.
async fn events_of(app: &TestApp, object: &str) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT type FROM events WHERE object_id = $1 ORDER BY id")
        .bind(object)
        .fetch_all(app.store.reader())
        .await
        .unwrap();
    rows.into_iter().map(|(t,)| t).collect()
}

fn actions(payment: &Value) -> Vec<String> {
    payment["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{}:{}", h["action"].as_str().unwrap(), h["outcome"].as_str().unwrap()))
        .collect()
}

both_backends! {
    async fn a_good_card_is_authorized_and_captured_with_history_and_events(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let p = pay(app, &sk, "4242424242424242", 2000, "automatic").await;
        assert!(p["id"].as_str().unwrap().starts_with("pay_"));
        assert_eq!(p["status"], "succeeded");
        assert_eq!(p["amount_received"], 2000);
        assert_eq!(p["amount_capturable"], 0);
        assert_eq!(p["livemode"], false);
        assert_eq!(p["decline_code"], Value::Null);
        // 4242… is a US card: SCA is out of scope with the acquirer in the EEA.
        assert_eq!(actions(&p), ["create:succeeded", "confirm:succeeded", "sca:out_of_scope", "authorize:approved", "capture:succeeded"]);
        let statuses: Vec<&str> = p["history"].as_array().unwrap().iter().map(|h| h["to_status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["requires_confirmation", "processing", "processing", "requires_capture", "succeeded"]);
        assert_eq!(events_of(app, p["id"].as_str().unwrap()).await, ["payment.created", "payment.succeeded"]);
        let again: Value = app.get(&format!("/v1/payments/{}", p["id"].as_str().unwrap()), &sk).await.json().await.unwrap();
        assert_eq!(again["status"], "succeeded");
        assert_eq!(again["history"], p["history"]);
        let text = serde_json::to_string(&again).unwrap();
        assert!(!text.contains("4242424242424242") && !text.contains("sbx_"), "no card number, no processor reference");
    }

    async fn every_decline_card_fails_the_payment_with_its_code(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        for (number, code) in [
            ("4000000000000002", "generic_decline"),
            ("4000000000009995", "insufficient_funds"),
            ("4000000000000069", "expired_card"),
            ("4000000000000119", "processing_error"),
            ("4000000000000101", "processor_timeout"),
        ] {
            let p = pay(app, &sk, number, 1500, "automatic").await;
            assert_eq!(p["status"], "failed", "{number}");
            assert_eq!(p["decline_code"], code, "{number}");
            assert_eq!(p["last_error"]["code"], code);
            assert!(!p["last_error"]["message"].as_str().unwrap().is_empty());
            assert_eq!(p["amount_received"], 0);
            assert_eq!(events_of(app, p["id"].as_str().unwrap()).await, ["payment.created", "payment.failed"]);
        }
    }

    async fn manual_capture_can_be_partial_and_only_once(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let p = pay(app, &sk, "4242424242424242", 5000, "manual").await;
        assert_eq!(p["status"], "requires_capture");
        assert_eq!(p["amount_capturable"], 5000);
        let id = p["id"].as_str().unwrap();
        let (status, e) = error_of(app.post(&format!("/v1/payments/{id}/capture"), &sk, &json!({"amount_to_capture": 5001})).await).await;
        assert_eq!((status, e["code"].as_str().unwrap(), e["param"].as_str().unwrap()), (409, "amount_exceeds_capturable", "amount_to_capture"));
        let r = app.post(&format!("/v1/payments/{id}/capture"), &sk, &json!({"amount_to_capture": 3000})).await;
        assert_eq!(r.status(), 200);
        let captured: Value = r.json().await.unwrap();
        assert_eq!(captured["status"], "succeeded");
        assert_eq!((captured["amount_received"].as_i64(), captured["amount_capturable"].as_i64()), (Some(3000), Some(0)));
        let (status, e) = error_of(app.post(&format!("/v1/payments/{id}/capture"), &sk, &json!({})).await).await;
        assert_eq!((status, e["code"].as_str().unwrap()), (409, "payment_unexpected_state"));
        assert!(e["message"].as_str().unwrap().contains("succeeded"));
        assert_eq!(
            events_of(app, id).await,
            ["payment.created", "payment.amount_capturable_updated", "payment.captured", "payment.succeeded"]
        );
    }

    async fn an_authorization_can_be_canceled_but_not_a_capture(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let held = pay(app, &sk, "4242424242424242", 700, "manual").await;
        let id = held["id"].as_str().unwrap();
        let r = app.post(&format!("/v1/payments/{id}/cancel"), &sk, &json!({"cancellation_reason": "requested_by_customer"})).await;
        assert_eq!(r.status(), 200);
        let canceled: Value = r.json().await.unwrap();
        assert_eq!(canceled["status"], "canceled");
        assert_eq!(canceled["cancellation_reason"], "requested_by_customer");
        assert_eq!(canceled["amount_capturable"], 0);
        let (status, _) = error_of(app.post(&format!("/v1/payments/{id}/capture"), &sk, &json!({})).await).await;
        assert_eq!(status, 409, "a canceled payment cannot be captured");
        let done = pay(app, &sk, "4242424242424242", 700, "automatic").await;
        let (status, e) = error_of(app.post(&format!("/v1/payments/{}/cancel", done["id"].as_str().unwrap()), &sk, &json!({})).await).await;
        assert_eq!((status, e["code"].as_str().unwrap()), (409, "payment_unexpected_state"));
    }

    async fn payments_can_be_confirmed_later_and_get_their_card_then(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let r = app.post("/v1/payments", &sk, &json!({"amount": 990, "currency": "eur", "description": "Order 42",
            "metadata": {"order_id": "42"}, "customer_email": "ada@example.com"})).await;
        assert_eq!(r.status(), 200);
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["status"], "requires_payment_method");
        assert_eq!(p["currency"], "eur");
        assert_eq!(p["metadata"]["order_id"], "42");
        let id = p["id"].as_str().unwrap();
        let (status, e) = error_of(app.post(&format!("/v1/payments/{id}/confirm"), &sk, &json!({})).await).await;
        assert_eq!((status, e["code"].as_str().unwrap()), (409, "payment_unexpected_state"), "no card to confirm with: {e}");
        let unknown = "tok_000000000000000000000000";
        let (status, e) = error_of(app.post(&format!("/v1/payments/{id}/confirm"), &sk, &json!({"payment_method": unknown})).await).await;
        assert_eq!((status, e["code"].as_str().unwrap(), e["param"].as_str().unwrap()), (409, "resource_missing", "payment_method"));
        let tok = token(app, &sk, "5555555555554444").await;
        let r = app.post(&format!("/v1/payments/{id}/confirm"), &sk, &json!({"payment_method": tok})).await;
        assert_eq!(r.status(), 200);
        let confirmed: Value = r.json().await.unwrap();
        assert_eq!(confirmed["status"], "succeeded");
        assert_eq!(confirmed["payment_method"], tok.as_str());
        let (status, _) = error_of(app.post(&format!("/v1/payments/{id}/confirm"), &sk, &json!({})).await).await;
        assert_eq!(status, 409, "a succeeded payment cannot be confirmed again");
        // Confirm with no body at all works too.
        let r = app.post("/v1/payments", &sk, &json!({"amount": 100, "currency": "usd", "payment_method": tok})).await;
        let pending: Value = r.json().await.unwrap();
        assert_eq!(pending["status"], "requires_confirmation");
        let r = app.client().post(app.url(&format!("/v1/payments/{}/confirm", pending["id"].as_str().unwrap())))
            .bearer_auth(&sk).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "succeeded");
    }

    async fn a_failing_capture_is_recorded_and_answered_402(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let auto = pay(app, &sk, "4000000000000341", 1200, "automatic").await;
        assert_eq!(auto["status"], "failed");
        assert_eq!(auto["decline_code"], "capture_failed");
        let manual = pay(app, &sk, "4000000000000341", 1200, "manual").await;
        let id = manual["id"].as_str().unwrap();
        let (status, e) = error_of(app.post(&format!("/v1/payments/{id}/capture"), &sk, &json!({})).await).await;
        assert_eq!((status, e["type"].as_str().unwrap(), e["code"].as_str().unwrap()), (402, "card_error", "capture_failed"));
        let after: Value = app.get(&format!("/v1/payments/{id}"), &sk).await.json().await.unwrap();
        assert_eq!(after["status"], "requires_capture", "the authorization still stands");
        assert_eq!(actions(&after).last().unwrap(), "capture:declined");
    }

    async fn three_d_secure_challenge_approved_resumes_the_payment(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let p = pay(app, &sk, "4000002760003184", 3100, "automatic").await;
        assert_eq!(p["status"], "requires_action");
        assert_eq!(p["next_action"]["type"], "redirect_to_url");
        assert_eq!(p["next_action"]["return_url"], "https://shop.example/done");
        let url = p["next_action"]["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with(&app.main.base), "{url}");
        assert_eq!(events_of(app, p["id"].as_str().unwrap()).await, ["payment.created", "payment.requires_action"]);
        let page = app.client().get(&url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
        let html = page.text().await.unwrap();
        assert!(html.contains("31.00 USD"), "{html}");
        let challenge = url.split("challenge=").nth(1).unwrap().to_owned();
        let no_redirects = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&app.cert_pem).unwrap())
            .redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let id = p["id"].as_str().unwrap();
        let wrong = no_redirects.post(app.url(&format!("/sandbox/3ds/{id}"))).header("content-type", "application/x-www-form-urlencoded")
            .body("challenge=wrong&decision=submit&code=123456").send().await.unwrap();
        assert_eq!(wrong.status(), 404, "a wrong challenge secret is no challenge at all");
        let form = crate::sca::approving_form(app.client(), &url).await;
        assert!(form.starts_with(&format!("challenge={challenge}&")));
        let r = no_redirects.post(app.url(&format!("/sandbox/3ds/{id}"))).header("content-type", "application/x-www-form-urlencoded")
            .body(form.clone()).send().await.unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"].to_str().unwrap(), format!("https://shop.example/done?payment={id}"));
        let after: Value = app.get(&format!("/v1/payments/{id}"), &sk).await.json().await.unwrap();
        assert_eq!(after["status"], "succeeded");
        assert_eq!(after["next_action"], Value::Null);
        assert_eq!(after["amount_received"], 3100);
        let replay = no_redirects.post(app.url(&format!("/sandbox/3ds/{id}"))).header("content-type", "application/x-www-form-urlencoded")
            .body(form).send().await.unwrap();
        assert_eq!(replay.status(), 404, "a challenge is answered once");
    }

    async fn three_d_secure_challenge_failed_fails_the_payment(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let p = pay(app, &sk, "4000002760003184", 3100, "manual").await;
        let id = p["id"].as_str().unwrap();
        let url = p["next_action"]["url"].as_str().unwrap();
        let challenge = url.split("challenge=").nth(1).unwrap();
        let no_redirects = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&app.cert_pem).unwrap())
            .redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let r = no_redirects.post(app.url(&format!("/sandbox/3ds/{id}"))).header("content-type", "application/x-www-form-urlencoded")
            .body(format!("challenge={challenge}&decision=fail")).send().await.unwrap();
        assert_eq!(r.status(), 303);
        let after: Value = app.get(&format!("/v1/payments/{id}"), &sk).await.json().await.unwrap();
        assert_eq!(after["status"], "failed");
        assert_eq!(after["decline_code"], "authentication_failed");
        assert_eq!(events_of(app, id).await, ["payment.created", "payment.requires_action", "payment.failed"]);
    }

    async fn amounts_currencies_and_fields_are_validated_by_name(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let tok = token(app, &sk, "4242424242424242").await;
        let cases = [
            (json!({"amount": 0, "currency": "usd"}), "amount", "invalid_amount"),
            (json!({"amount": -5, "currency": "usd"}), "amount", "invalid_amount"),
            (json!({"amount": 100_000_000, "currency": "usd"}), "amount", "amount_too_large"),
            (json!({"amount": 12.5, "currency": "usd"}), "amount", "parameter_invalid"),
            (json!({"amount": 1e30, "currency": "usd"}), "amount", "parameter_invalid"),
            (json!({"amount": "100", "currency": "usd"}), "amount", "parameter_invalid"),
            (json!({"amount": 100, "currency": "xyz"}), "currency", "invalid_currency"),
            (json!({"amount": 100, "currency": "usd", "capture_method": "later"}), "capture_method", "parameter_invalid"),
            (json!({"amount": 100, "currency": "usd", "customer_email": "nope"}), "customer_email", "parameter_invalid"),
            (json!({"amount": 100, "currency": "usd", "customer_ip": "300.1.1.1"}), "customer_ip", "parameter_invalid"),
            (json!({"amount": 100, "currency": "usd", "return_url": "http://shop.example/"}), "return_url", "parameter_invalid"),
            (json!({"amount": 100, "currency": "usd", "description": "a\u{202E}b"}), "description", "parameter_invalid"),
            (json!({"amount": 100, "currency": "usd", "metadata": (0..21).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}), "metadata", "parameter_invalid"),
            (json!({"amount": 100, "currency": "usd", "confirm": true}), "payment_method", "parameter_missing"),
            (json!({"amount": 100, "currency": "usd", "payment_method": "tok_nope"}), "payment_method", "parameter_invalid"),
            (json!({"amount": 100, "currency": "Usd"}), "currency", "invalid_currency"),
            (json!({"amount": 100.5, "currency": "usd"}), "amount", "parameter_invalid"),
            (json!({"amount": 100, "currency": "usd", "customer_ip": "01.2.3.4"}), "customer_ip", "parameter_invalid"),
            (json!({"amount": 100, "currency": "usd", "return_url": "https://user@shop.example/"}), "return_url", "parameter_invalid"),
            (json!({"amount": 100, "currency": "usd", "status": "succeeded", "payment_method": tok}), "status", "parameter_unknown"),
            (json!({"amount": 100, "currency": "usd", "amount_refunded": 5}), "amount_refunded", "parameter_unknown"),
        ];
        for (body, param, code) in cases {
            let (status, e) = error_of(app.post("/v1/payments", &sk, &body).await).await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(e["param"], param, "{body}: {e}");
            if code != "parameter_invalid" || e["code"] != "parameter_invalid" {
                assert_eq!(e["code"], code, "{body}: {e}");
            }
        }
        let count: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM payments").fetch_one(app.store.reader()).await.unwrap();
        assert_eq!(count.0, 0, "nothing was half-created");
        // Zero-decimal and three-decimal currencies take their own minor units;
        // a code may be spelled upper-case, and a whole number as a float.
        for (amount, currency) in [(json!(1500), "jpy"), (json!(1500.0), "KWD")] {
            let r = app.post("/v1/payments", &sk, &json!({"amount": amount, "currency": currency})).await;
            assert_eq!(r.status(), 200);
            let p: Value = r.json().await.unwrap();
            assert_eq!((p["amount"].as_i64(), p["currency"].as_str()), (Some(1500), Some(currency.to_ascii_lowercase().as_str())));
        }
    }

    async fn key_kinds_permissions_and_restrictions_are_enforced(app) {
        let (merchant, sk) = app.merchant_with_secret("Shop").await;
        let tok = token(app, &sk, "4242424242424242").await;
        let body = json!({"amount": 5000, "currency": "usd", "payment_method": tok, "confirm": true});
        let pk = app.key(&merchant, KeyKind::Publishable, &[]).await;
        let (status, e) = error_of(app.post("/v1/payments", pk.secret.expose(), &body).await).await;
        assert_eq!((status, e["code"].as_str().unwrap()), (403, "publishable_key_not_allowed"));
        let reader = app.key(&merchant, KeyKind::Restricted, &[Permission::PaymentsRead]).await;
        let (status, e) = error_of(app.post("/v1/payments", reader.secret.expose(), &body).await).await;
        assert_eq!((status, e["code"].as_str().unwrap()), (403, "permission_denied"));
        let mut limited = new_key(&merchant, KeyKind::Restricted, &[Permission::PaymentsWrite]);
        limited.restrictions = KeyRestrictions {
            max_amount: Some(1000),
            currencies: vec![Currency::parse("usd").unwrap()],
            ..KeyRestrictions::default()
        };
        let limited = app.issue(limited).await;
        let (status, e) = error_of(app.post("/v1/payments", limited.secret.expose(), &body).await).await;
        assert_eq!((status, e["code"].as_str().unwrap(), e["param"].as_str().unwrap()), (403, "amount_above_key_limit", "amount"));
        let (status, e) = error_of(app.post("/v1/payments", limited.secret.expose(), &json!({"amount": 500, "currency": "eur"})).await).await;
        assert_eq!((status, e["code"].as_str().unwrap(), e["param"].as_str().unwrap()), (403, "currency_not_allowed", "currency"));
        let r = app.post("/v1/payments", limited.secret.expose(), &json!({"amount": 1000, "currency": "usd", "payment_method": tok, "confirm": true})).await;
        assert_eq!(r.status(), 200);
        let made: Value = r.json().await.unwrap();
        let r = app.get(&format!("/v1/payments/{}", made["id"].as_str().unwrap()), reader.secret.expose()).await;
        assert_eq!(r.status(), 200, "a read-only key reads payments");
    }

    async fn payments_list_newest_first_with_filters_and_cursor(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let mut ids = Vec::new();
        for number in ["4242424242424242", "4000000000000002", "4242424242424242", "4000000000000002", "4242424242424242"] {
            ids.push(pay(app, &sk, number, 100, "automatic").await["id"].as_str().unwrap().to_owned());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let all: Value = app.get("/v1/payments?limit=10", &sk).await.json().await.unwrap();
        let listed: Vec<&str> = all["data"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
        let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
        assert_eq!(listed, newest_first);
        assert!(all["data"][0].get("history").is_none(), "lists carry no history");
        let page: Value = app.get("/v1/payments?limit=2", &sk).await.json().await.unwrap();
        assert_eq!(page["has_more"], true);
        let next: Value = app.get(&format!("/v1/payments?limit=2&starting_after={}", page["data"][1]["id"].as_str().unwrap()), &sk).await.json().await.unwrap();
        assert_eq!(next["data"][0]["id"], ids[2].as_str());
        let failed: Value = app.get("/v1/payments?status=failed", &sk).await.json().await.unwrap();
        assert_eq!(failed["data"].as_array().unwrap().len(), 2);
        let future: Value = app.get("/v1/payments?created[gte]=4000000000", &sk).await.json().await.unwrap();
        assert_eq!(future["data"].as_array().unwrap().len(), 0);
        let past: Value = app.get("/v1/payments?created[lte]=4000000000&created[gte]=0", &sk).await.json().await.unwrap();
        assert_eq!(past["data"].as_array().unwrap().len(), 5);
        // Every time the document allows is answered, the largest included.
        let max = i64::MAX;
        let never: Value = app.get(&format!("/v1/payments?created[gte]={max}"), &sk).await.json().await.unwrap();
        assert_eq!(never["data"].as_array().unwrap().len(), 0);
        let ever: Value = app.get(&format!("/v1/payments?created[lte]={max}"), &sk).await.json().await.unwrap();
        assert_eq!(ever["data"].as_array().unwrap().len(), 5);
        for bad in ["status=paid", "created[gte]=-1", "starting_after=pay_x", "colour=red"] {
            let r = app.get(&format!("/v1/payments?{bad}"), &sk).await;
            assert_eq!(r.status(), 400, "{bad}");
        }
    }

    async fn another_merchants_payment_is_not_found_anywhere(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let (_, other) = app.merchant_with_secret("Other").await;
        let p = pay(app, &sk, "4242424242424242", 800, "manual").await;
        let id = p["id"].as_str().unwrap();
        let r = app.get(&format!("/v1/payments/{id}"), &other).await;
        assert_eq!(r.status(), 404);
        for action in ["capture", "cancel", "confirm"] {
            let (status, e) = error_of(app.post(&format!("/v1/payments/{id}/{action}"), &other, &json!({})).await).await;
            assert_eq!((status, e["code"].as_str().unwrap()), (404, "resource_missing"), "{action}");
        }
        let listed: Value = app.get("/v1/payments", &other).await.json().await.unwrap();
        assert_eq!(listed["data"].as_array().unwrap().len(), 0);
        // Nor can one merchant charge another merchant's card token.
        let foreign = token(app, &sk, "4242424242424242").await;
        let (status, e) = error_of(app.post("/v1/payments", &other, &json!({"amount": 100, "currency": "usd", "payment_method": foreign, "confirm": true})).await).await;
        assert_eq!((status, e["code"].as_str().unwrap(), e["param"].as_str().unwrap()), (409, "resource_missing", "payment_method"));
        let still: Value = app.get(&format!("/v1/payments/{id}"), &sk).await.json().await.unwrap();
        assert_eq!(still["status"], "requires_capture");
    }

    async fn concurrent_identical_requests_with_one_idempotency_key_make_one_payment(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let tok = token(app, &sk, "4242424242424242").await;
        let body = json!({"amount": 4200, "currency": "usd", "payment_method": tok, "confirm": true});
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (client, url, sk, body) = (app.client().clone(), app.url("/v1/payments"), sk.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let r = client.post(url).bearer_auth(sk).header("Idempotency-Key", "order-42").json(&body).send().await.unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap())
            }));
        }
        let mut ids = std::collections::HashSet::new();
        for t in tasks {
            let (status, body) = t.await.unwrap();
            match status {
                200 => { ids.insert(body["id"].as_str().unwrap().to_owned()); }
                409 => assert_eq!(body["error"]["code"], "idempotency_key_in_use"),
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(ids.len(), 1, "every success names the same payment");
        let count: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM payments").fetch_one(app.store.reader()).await.unwrap();
        assert_eq!(count.0, 1);
        let replay = app.client().post(app.url("/v1/payments")).bearer_auth(&sk).header("Idempotency-Key", "order-42").json(&body).send().await.unwrap();
        assert_eq!(replay.headers()["idempotent-replayed"], "true");
        assert_eq!(replay.json::<Value>().await.unwrap()["id"].as_str().unwrap(), ids.iter().next().unwrap());
    }
}

mod expiry {
    use super::*;
    use crate::support::{spawn_app_with_payments, test_payment_policy, Db};

    async fn run(db: Db) {
        let policy = paywarden::services::payments::PaymentPolicy {
            challenge_ttl: Duration::from_millis(300),
            ..test_payment_policy()
        };
        let Some(app) = spawn_app_with_payments(db, policy).await else {
            return;
        };
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let p = pay(&app, &sk, "4000002760003184", 100, "automatic").await;
        assert_eq!(p["status"], "requires_action");
        let id = p["id"].as_str().unwrap();
        let mut status = String::new();
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now: Value = app.get(&format!("/v1/payments/{id}"), &sk).await.json().await.unwrap();
            status = now["status"].as_str().unwrap().to_owned();
            if status == "canceled" {
                assert_eq!(now["cancellation_reason"], "abandoned");
                assert_eq!(now["next_action"], Value::Null);
                break;
            }
        }
        assert_eq!(status, "canceled", "an unanswered challenge expires");
        assert_eq!(
            events_of(&app, id).await,
            ["payment.created", "payment.requires_action", "payment.canceled"]
        );
        let url = p["next_action"]["url"].as_str().unwrap();
        let r = app.client().get(url).send().await.unwrap();
        assert_eq!(r.status(), 404, "the page of an expired challenge is gone");
        app.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Db::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(Db::Postgres).await;
    }
}
