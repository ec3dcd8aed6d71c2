//! Attacks on payments, refunds and the sandbox 3-D Secure page: injection in
//! every string field, path segment and list query; hostile amounts; mass
//! assignment; markup in free text; one merchant reaching for another's
//! objects; traversal and injection on the challenge page. After each group
//! the rows are as expected (nothing created, changed or removed but what the
//! group meant to create), the target objects are untouched and the audit
//! trail lost nothing and verifies ([`super::assert_intact`]).

use serde_json::{json, Value};

use super::{assert_clean, assert_intact, enc, Rows, SQLI, XSS};
use crate::both_backends;
use crate::payments::{pay, token};
use crate::support::TestApp;

/// The objects under attack, all the target merchant's.
struct Target {
    sk: String,
    /// Another merchant's secret key.
    other: String,
    /// Succeeded: 5000 captured, 1000 of it refunded.
    paid: String,
    /// Authorized (manual capture): 3000 capturable.
    held: String,
    /// The 1000 refund of `paid`.
    refund: String,
    /// An unused card token.
    token: String,
}

async fn target(app: &TestApp) -> Target {
    let (_, sk) = app.merchant_with_secret("Target").await;
    let (_, other) = app.merchant_with_secret("Attacker").await;
    let paid = pay(app, &sk, "4242424242424242", 5000, "automatic").await;
    assert_eq!(paid["status"], "succeeded");
    let held = pay(app, &sk, "4242424242424242", 3000, "manual").await;
    assert_eq!(held["status"], "requires_capture");
    let paid = paid["id"].as_str().unwrap().to_owned();
    let r = app
        .post("/v1/refunds", &sk, &json!({"payment": paid, "amount": 1000}))
        .await;
    assert_eq!(r.status(), 200);
    let refund = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    Target {
        token: token(app, &sk, "4242424242424242").await,
        held: held["id"].as_str().unwrap().to_owned(),
        sk,
        other,
        paid,
        refund,
    }
}

/// The target's objects are as `target` made them; every table holds the rows
/// of `before` plus what `created` adds, and the audit trail verifies.
async fn intact(app: &TestApp, t: &Target, before: Rows, created: impl FnOnce(&mut Rows)) {
    let paid: Value = app
        .get(&format!("/v1/payments/{}", t.paid), &t.sk)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&paid["status"], &paid["amount_received"], &paid["amount_refunded"]),
        (&json!("succeeded"), &json!(5000), &json!(1000)),
        "{paid}"
    );
    let held: Value = app
        .get(&format!("/v1/payments/{}", t.held), &t.sk)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&held["status"], &held["amount_capturable"], &held["amount_received"]),
        (&json!("requires_capture"), &json!(3000), &json!(0)),
        "{held}"
    );
    let refund: Value = app
        .get(&format!("/v1/refunds/{}", t.refund), &t.sk)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&refund["status"], &refund["amount"]),
        (&json!("succeeded"), &json!(1000)),
        "{refund}"
    );
    assert_intact(app, before, created).await;
}

/// Sends `method path` with `key` and, if given, a raw JSON body.
async fn send(app: &TestApp, method: &str, path: &str, key: &str, body: Option<&[u8]>) -> (u16, String) {
    let mut request = match method {
        "GET" => app.client().get(app.url(path)),
        _ => app.client().post(app.url(path)),
    }
    .bearer_auth(key);
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_vec());
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post_json(app: &TestApp, path: &str, key: &str, body: &Value) -> (u16, String) {
    send(app, "POST", path, key, Some(body.to_string().as_bytes())).await
}

/// A clean 400 naming `param`.
fn refused(status: u16, text: &str, param: &str, case: &str) {
    assert_clean(status, text, case);
    assert_eq!(status, 400, "{case}: {text}");
    let e: Value = serde_json::from_str(text).unwrap();
    assert_eq!(e["error"]["param"], param, "{case}: {text}");
}

both_backends! {
    async fn sql_injection_in_payment_and_refund_inputs_is_refused_or_stored_as_text(app) {
        let t = target(app).await;
        let before = Rows::snapshot(app).await;
        let mut created = 0;
        for payload in SQLI {
            // Fields with a grammar (codes, ids, addresses, enums) refuse it.
            for field in ["currency", "payment_method", "capture_method", "customer_ip", "customer_email", "return_url"] {
                let mut body = json!({"amount": 100, "currency": "usd"});
                body[field] = json!(payload);
                let (status, text) = post_json(app, "/v1/payments", &t.sk, &body).await;
                refused(status, &text, field, &format!("{field}: {payload}"));
            }
            let (status, text) = post_json(app, "/v1/payments", &t.sk, &json!({"amount": 100, "currency": "usd", "metadata": {*payload: "x"}})).await;
            refused(status, &text, "metadata", &format!("metadata key: {payload}"));
            // Free text is only text: stored and returned verbatim.
            let (status, text) = post_json(app, "/v1/payments", &t.sk, &json!({"amount": 100, "currency": "usd", "description": payload, "metadata": {"note": payload}})).await;
            assert_eq!(status, 200, "{payload}: {text}");
            let p: Value = serde_json::from_str(&text).unwrap();
            assert_eq!((p["description"].as_str(), p["metadata"]["note"].as_str()), (Some(*payload), Some(*payload)));
            created += 1;
            for field in ["payment_method", "return_url"] {
                let (status, text) = post_json(app, &format!("/v1/payments/{}/confirm", t.held), &t.sk, &json!({field: payload})).await;
                refused(status, &text, field, &format!("confirm {field}: {payload}"));
            }
            let (status, text) = post_json(app, &format!("/v1/payments/{}/capture", t.held), &t.sk, &json!({"amount_to_capture": payload})).await;
            refused(status, &text, "amount_to_capture", payload);
            let (status, text) = post_json(app, &format!("/v1/payments/{}/cancel", t.held), &t.sk, &json!({"cancellation_reason": payload})).await;
            refused(status, &text, "cancellation_reason", payload);
            for (field, body) in [
                ("payment", json!({"payment": payload})),
                ("reason", json!({"payment": t.paid, "amount": 1, "reason": payload})),
                ("amount", json!({"payment": t.paid, "amount": payload})),
            ] {
                let (status, text) = post_json(app, "/v1/refunds", &t.sk, &body).await;
                refused(status, &text, field, &format!("refund {field}: {payload}"));
            }
            // In an {id}: no such object.
            let id = enc(payload);
            for (method, path) in [
                ("GET", format!("/v1/payments/{id}")),
                ("POST", format!("/v1/payments/{id}/confirm")),
                ("POST", format!("/v1/payments/{id}/capture")),
                ("POST", format!("/v1/payments/{id}/cancel")),
                ("GET", format!("/v1/refunds/{id}")),
            ] {
                let body = (method == "POST").then_some(&b"{}"[..]);
                let (status, text) = send(app, method, &path, &t.sk, body).await;
                assert_clean(status, &text, &path);
                assert_eq!(status, 404, "{path}: {text}");
            }
            // In a list filter: an invalid parameter.
            for (list, param) in [
                ("payments", "status"), ("payments", "starting_after"), ("payments", "limit"),
                ("payments", "created[gte]"), ("payments", "created[lte]"),
                ("refunds", "starting_after"), ("refunds", "payment"), ("refunds", "limit"),
            ] {
                for value in [id.clone(), format!("1{id}"), format!("{}{id}", t.paid)] {
                    let path = format!("/v1/{list}?{param}={value}");
                    let (status, text) = send(app, "GET", &path, &t.sk, None).await;
                    refused(status, &text, param, &path);
                }
            }
            // Beside a valid filter, and as a parameter's name.
            let path = format!("/v1/payments?status=succeeded&created[gte]=0&created[lte]={id}");
            let (status, text) = send(app, "GET", &path, &t.sk, None).await;
            refused(status, &text, "created[lte]", &path);
            let path = format!("/v1/payments?{id}=1");
            let (status, text) = send(app, "GET", &path, &t.sk, None).await;
            refused(status, &text, "query", &path);
        }
        // Only the bracketed spelling is a filter.
        for param in ["created_gte", "created_lte", "created", "merchant_id", "amount"] {
            let path = format!("/v1/payments?{param}=0");
            let (status, text) = send(app, "GET", &path, &t.sk, None).await;
            refused(status, &text, param, &path);
        }
        intact(app, &t, before, |r| {
            r.payments += created;
            r.events += created;
        })
        .await;
    }

    async fn overflowing_negative_zero_fractional_and_string_amounts_are_refused(app) {
        let t = target(app).await;
        let before = Rows::snapshot(app).await;
        // Each is a 400 on every amount field, whether JSON (`amount`) or not
        // (`body`: `1e400` is beyond what a JSON number reader takes).
        let hostile = [
            "1e400", "-1e400", "9223372036854775808", "-9223372036854775809", "18446744073709551616",
            "99999999999999999999999999999", "1e19", "-1", "-9223372036854775808", "0", "-0", "0.0",
            "1.5", "0.1", "1e-7", "100.000000000000000001", "0.99999999999999999999",
            "\"100\"", "\"1e3\"", "\"\"", "true", "[100]", "{\"value\": 100}",
            "NaN", "Infinity", "-Infinity", "0x10", "+100", "0100", "1_000", "100 200", "1e", "--1",
        ];
        for raw in hostile {
            let cases = [
                ("/v1/payments".to_owned(), "amount", format!("{{\"currency\": \"usd\", \"amount\": {raw}}}")),
                (format!("/v1/payments/{}/capture", t.held), "amount_to_capture", format!("{{\"amount_to_capture\": {raw}}}")),
                ("/v1/refunds".to_owned(), "amount", format!("{{\"payment\": \"{}\", \"amount\": {raw}}}", t.paid)),
            ];
            for (path, field, body) in cases {
                let (status, text) = send(app, "POST", &path, &t.sk, Some(body.as_bytes())).await;
                let case = format!("{path} {field}={raw}");
                assert_clean(status, &text, &case);
                assert_eq!(status, 400, "{case}: {text}");
                let e: Value = serde_json::from_str(&text).unwrap();
                assert!(e["error"]["param"] == field || e["error"]["param"] == "body", "{case}: {text}");
                let message = e["error"]["message"].as_str().unwrap();
                assert!(!message.contains(raw.trim_matches('"')) || raw.len() < 3, "{case}: the value is not echoed: {text}");
            }
        }
        // Well-formed but too large for what is there.
        // Above the configured maximum is bad input (400); above what the
        // payment holds is a conflict with its state (409).
        for (path, body, expected, code) in [
            ("/v1/payments".to_owned(), json!({"currency": "usd", "amount": 100_000_000}), 400, "amount_too_large"),
            (format!("/v1/payments/{}/capture", t.held), json!({"amount_to_capture": 3001}), 409, "amount_exceeds_capturable"),
            ("/v1/refunds".to_owned(), json!({"payment": t.paid, "amount": 4001}), 409, "amount_exceeds_refundable"),
        ] {
            let (status, text) = post_json(app, &path, &t.sk, &body).await;
            assert_clean(status, &text, &path);
            let e: Value = serde_json::from_str(&text).unwrap();
            assert_eq!((status, e["error"]["code"].as_str()), (expected, Some(code)), "{path}: {text}");
        }
        intact(app, &t, before, |_| {}).await;
    }

    async fn mass_assignment_on_payments_and_refunds_is_an_unknown_field(app) {
        let t = target(app).await;
        let before = Rows::snapshot(app).await;
        let forged = [
            ("status", json!("succeeded")),
            ("merchant", json!("mer_aaaaaaaaaaaaaaaaaaaaaaaa")),
            ("merchant_id", json!("mer_aaaaaaaaaaaaaaaaaaaaaaaa")),
            ("amount_refunded", json!(0)),
            ("amount_received", json!(1_000_000)),
            ("amount_capturable", json!(1_000_000)),
            ("livemode", json!(true)),
            ("id", json!("pay_aaaaaaaaaaaaaaaaaaaaaaaa")),
            ("created", json!(0)),
            ("connector", json!("stripe")),
        ];
        for (field, value) in &forged {
            let bodies = [
                ("/v1/payments".to_owned(), json!({"amount": 100, "currency": "usd", "payment_method": t.token, "confirm": true, *field: value})),
                (format!("/v1/payments/{}/confirm", t.held), json!({*field: value})),
                (format!("/v1/payments/{}/capture", t.held), json!({"amount_to_capture": 3000, *field: value})),
                (format!("/v1/payments/{}/cancel", t.held), json!({*field: value})),
                ("/v1/refunds".to_owned(), json!({"payment": t.paid, "amount": 100, *field: value})),
            ];
            for (path, body) in bodies {
                let (status, text) = post_json(app, &path, &t.sk, &body).await;
                let case = format!("{path} {field}");
                refused(status, &text, field, &case);
                let e: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(e["error"]["code"], "parameter_unknown", "{case}: {text}");
            }
        }
        intact(app, &t, before, |_| {}).await;
        // The token was never charged: it still pays (with its CVC) now.
        let r = app.post("/v1/payments", &t.sk, &json!({"amount": 100, "currency": "usd", "payment_method": t.token, "confirm": true})).await;
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "succeeded");
    }

    async fn markup_in_description_and_metadata_comes_back_as_json_text(app) {
        let t = target(app).await;
        let before = Rows::snapshot(app).await;
        let mut ids = Vec::new();
        for payload in XSS.iter().chain(&["</script><script>alert(1)</script>", "<svg/onload=alert(1)>", "{{7*7}}", "${7*7}"]) {
            let body = json!({"amount": 100, "currency": "usd", "description": payload, "metadata": {"note": payload}});
            let r = app.post("/v1/payments", &t.sk, &body).await;
            assert_eq!(r.status(), 200, "{payload}");
            assert_eq!(r.headers()["content-type"], "application/json");
            assert_eq!(r.headers()["x-content-type-options"], "nosniff");
            let text = r.text().await.unwrap();
            // A JSON string: quotes escaped, the value read back unchanged.
            let encoded = serde_json::to_string(payload).unwrap();
            assert!(text.contains(&format!("\"description\":{encoded}")), "{text}");
            let p: Value = serde_json::from_str(&text).unwrap();
            assert_eq!((p["description"].as_str(), p["metadata"]["note"].as_str()), (Some(*payload), Some(*payload)));
            ids.push(p["id"].as_str().unwrap().to_owned());
        }
        for id in &ids {
            let r = app.get(&format!("/v1/payments/{id}"), &t.sk).await;
            assert_eq!(r.headers()["content-type"], "application/json");
            let shown: Value = r.json().await.unwrap();
            assert!(XSS.iter().chain(&["</script><script>alert(1)</script>", "<svg/onload=alert(1)>", "{{7*7}}", "${7*7}"]).any(|x| shown["description"] == *x));
        }
        let listed = app.get("/v1/payments?limit=100", &t.sk).await;
        assert_eq!(listed.headers()["content-type"], "application/json");
        let listed: Value = listed.json().await.unwrap();
        assert_eq!(listed["data"].as_array().unwrap().len(), ids.len() + 2);
        let n = i64::try_from(ids.len()).unwrap();
        intact(app, &t, before, |r| {
            r.payments += n;
            r.events += n;
        })
        .await;
    }

    async fn another_merchants_payments_and_refunds_are_the_same_404_as_missing_ones(app) {
        let t = target(app).await;
        // The attacker's own payment, waiting for a card.
        let r = app.post("/v1/payments", &t.other, &json!({"amount": 100, "currency": "usd"})).await;
        let own = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        let before = Rows::snapshot(app).await;
        let missing_payment = "pay_000000000000000000000000";
        let missing_refund = "re_000000000000000000000000";
        let missing_token = "tok_000000000000000000000000";
        // What the other merchant gets: the same answer for the target's id
        // and for an id that never existed, request id aside.
        let answer = |status: u16, text: &str| {
            let mut v: Value = serde_json::from_str(text).unwrap();
            v["error"]["request_id"] = Value::Null;
            (status, v)
        };
        // (method, path, body) for the target's object and for a missing one,
        // and the status both get: 404 for the request's own target, 409 for
        // a reference in the body (the target exists; see
        // `ServiceError::ReferenceNotFound`).
        let pair = |method: &'static str, theirs: (String, Option<Value>), missing: (String, Option<Value>)| (method, 404, [theirs, missing]);
        let reference = |theirs: (String, Option<Value>), missing: (String, Option<Value>)| ("POST", 409, [theirs, missing]);
        let routes = [
            pair("GET", (format!("/v1/payments/{}", t.paid), None), (format!("/v1/payments/{missing_payment}"), None)),
            pair("GET", (format!("/v1/refunds/{}", t.refund), None), (format!("/v1/refunds/{missing_refund}"), None)),
            pair(
                "POST",
                (format!("/v1/payments/{}/confirm", t.held), Some(json!({}))),
                (format!("/v1/payments/{missing_payment}/confirm"), Some(json!({}))),
            ),
            pair(
                "POST",
                (format!("/v1/payments/{}/capture", t.held), Some(json!({"amount_to_capture": 3000}))),
                (format!("/v1/payments/{missing_payment}/capture"), Some(json!({"amount_to_capture": 3000}))),
            ),
            pair(
                "POST",
                (format!("/v1/payments/{}/cancel", t.held), Some(json!({"cancellation_reason": "fraudulent"}))),
                (format!("/v1/payments/{missing_payment}/cancel"), Some(json!({"cancellation_reason": "fraudulent"}))),
            ),
            pair(
                "POST",
                ("/v1/refunds".to_owned(), Some(json!({"payment": t.paid, "amount": 1}))),
                ("/v1/refunds".to_owned(), Some(json!({"payment": missing_payment, "amount": 1}))),
            ),
            reference(
                ("/v1/payments".to_owned(), Some(json!({"amount": 100, "currency": "usd", "payment_method": t.token, "confirm": true}))),
                ("/v1/payments".to_owned(), Some(json!({"amount": 100, "currency": "usd", "payment_method": missing_token, "confirm": true}))),
            ),
            reference(
                (format!("/v1/payments/{own}/confirm"), Some(json!({"payment_method": t.token}))),
                (format!("/v1/payments/{own}/confirm"), Some(json!({"payment_method": missing_token}))),
            ),
        ];
        for (method, expected, cases) in routes {
            let mut answers = Vec::new();
            for (path, body) in &cases {
                let body = body.as_ref().map(|b| b.to_string().into_bytes());
                let (status, text) = send(app, method, path, &t.other, body.as_deref()).await;
                assert_clean(status, &text, path);
                assert_eq!(status, expected, "{method} {path}: {text}");
                for id in [&t.paid, &t.held, &t.refund, &t.token] {
                    assert!(!text.contains(id.as_str()), "the answer names no object: {text}");
                }
                answers.push(answer(status, &text));
            }
            assert_eq!(answers[0], answers[1], "{method} {}: another merchant's object looks missing", cases[0].0);
        }
        // Lists only ever hold the caller's own objects, whatever the filter.
        for path in [
            format!("/v1/refunds?payment={}", t.paid),
            format!("/v1/payments?starting_after={}", t.held),
            format!("/v1/refunds?starting_after={}", t.refund),
            "/v1/payments".to_owned(),
            "/v1/refunds".to_owned(),
        ] {
            let (status, text) = send(app, "GET", &path, &t.other, None).await;
            assert_eq!(status, 200, "{path}: {text}");
            let list: Value = serde_json::from_str(&text).unwrap();
            for item in list["data"].as_array().unwrap() {
                assert_eq!(item["id"], own.as_str(), "{path}: only the attacker's own payment");
            }
        }
        let mine: Value = app.get(&format!("/v1/payments/{own}"), &t.other).await.json().await.unwrap();
        assert_eq!((&mine["status"], &mine["payment_method"]), (&json!("requires_payment_method"), &Value::Null));
        intact(app, &t, before, |_| {}).await;
    }

    async fn the_3ds_page_refuses_traversal_and_injection_in_its_id_and_challenge(app) {
        let t = target(app).await;
        let p = pay(app, &t.sk, "4000002760003184", 3100, "automatic").await;
        assert_eq!(p["status"], "requires_action");
        let id = p["id"].as_str().unwrap().to_owned();
        let url = p["next_action"]["url"].as_str().unwrap().to_owned();
        let challenge = url.split("challenge=").nth(1).unwrap().to_owned();
        let before = Rows::snapshot(app).await;
        let no_redirects = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&app.cert_pem).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let check = |case: String, status: u16, text: String| {
            assert_clean(status, &text, &case);
            assert!(!text.contains("root:") && !text.contains("[package]") && !text.contains("<form"), "{case}: {text}");
            assert!(!text.contains(&challenge), "{case}: the secret is never shown to a wrong request");
        };
        let traversal = [
            "..%2f..%2f..%2fetc%2fpasswd",
            "..%2F..%2FCargo.toml",
            "%2e%2e%2f%2e%2e%2fsrc%2fmain.rs",
            "..%5c..%5cwindows%5cwin.ini",
            "%252e%252e%252f",
            "pay_%00",
            "....%2f%2f....%2f%2fetc%2fpasswd",
        ];
        let hostile_ids: Vec<String> = traversal.iter().map(|s| (*s).to_owned())
            .chain(SQLI.iter().chain(XSS).map(|s| enc(s)))
            .chain([format!("{id}%27%20OR%20%271%27%3D%271"), format!("{id}%2f..%2f..")])
            .collect();
        for bad in &hostile_ids {
            let path = format!("/sandbox/3ds/{bad}?challenge={challenge}");
            let r = no_redirects.get(app.url(&path)).send().await.unwrap();
            let status = r.status().as_u16();
            check(path.clone(), status, r.text().await.unwrap());
            let r = no_redirects.post(app.url(&format!("/sandbox/3ds/{bad}")))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("challenge={challenge}&decision=approve")).send().await.unwrap();
            let status = r.status().as_u16();
            check(format!("POST {path}"), status, r.text().await.unwrap());
        }
        let hostile_challenges: Vec<String> = SQLI.iter().chain(XSS).map(|s| enc(s))
            .chain(traversal.iter().map(|s| (*s).to_owned()))
            .chain([
                String::new(),
                "x".repeat(10_000),
                format!("{challenge}%27--"),
                format!("{challenge}%00"),
                format!("{challenge}&challenge={challenge}"),
                format!("{challenge}&decision=approve"),
                "%27%20OR%20challenge%20IS%20NOT%20NULL--".to_owned(),
            ])
            .collect();
        for bad in &hostile_challenges {
            let path = format!("/sandbox/3ds/{id}?challenge={bad}");
            let r = no_redirects.get(app.url(&path)).send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert_clean(status, &text, &path);
            assert!(!text.contains("<form"), "{path}: no page for a wrong challenge");
            for decision in ["approve", "fail", "approve%27%20OR%201%3D1--"] {
                let r = no_redirects.post(app.url(&format!("/sandbox/3ds/{id}")))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("challenge={bad}&decision={decision}")).send().await.unwrap();
                let status = r.status().as_u16();
                assert_clean(status, &r.text().await.unwrap(), &format!("POST {path} {decision}"));
            }
        }
        let r = no_redirects.get(app.url(&format!("/sandbox/3ds/{id}"))).send().await.unwrap();
        assert_clean(r.status().as_u16(), &r.text().await.unwrap(), "no challenge at all");
        // Nothing moved: the payment still waits, and its real challenge still works.
        let now: Value = app.get(&format!("/v1/payments/{id}"), &t.sk).await.json().await.unwrap();
        assert_eq!(now["status"], "requires_action");
        let page = no_redirects.get(&url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        intact(app, &t, before, |_| {}).await;
    }
}
