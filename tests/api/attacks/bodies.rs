//! Malformed, oversized and tricky bodies on every POST endpoint that takes
//! one (a table of routes), and invalid UTF-8 escapes in paths and queries.
//! Each is a clean 4xx in the API's error format; nothing is created,
//! changed or half-written.

use serde_json::{json, Value};

use super::{assert_api_error, assert_clean, assert_intact, raw, Rows};
use crate::both_backends;
use crate::payments::{pay, token};
use crate::support::TestApp;

/// A POST route with a JSON body.
struct Route {
    path: String,
    /// A body the route accepts.
    valid: Value,
    /// Where text goes: the keys leading to a field of `valid`.
    field: &'static [&'static str],
    /// The field's value around a piece of text (a URL field gets a URL).
    around: fn(&str) -> String,
}

impl Route {
    fn new(path: String, valid: Value, field: &'static [&'static str]) -> Self {
        Self {
            path,
            valid,
            field,
            around: str::to_owned,
        }
    }

    fn url(mut self, around: fn(&str) -> String) -> Self {
        self.around = around;
        self
    }

    /// `valid` with the field set to `text`, as JSON text.
    fn with(&self, text: &str) -> String {
        let mut body = self.valid.clone();
        let mut slot = &mut body;
        for key in self.field {
            slot = &mut slot[*key];
        }
        *slot = json!((self.around)(text));
        body.to_string()
    }

    /// `valid` with the field holding `bytes`, which need not be UTF-8.
    fn with_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        const MARK: &str = "BYTESGOHERE";
        let text = self.with(MARK);
        let (head, tail) = text.split_once(MARK).unwrap();
        [head.as_bytes(), bytes, tail.as_bytes()].concat()
    }

    /// How the API names the field: `card[name]`.
    fn param(&self) -> String {
        let mut names = self.field.iter();
        let mut param = (*names.next().unwrap()).to_owned();
        for name in names {
            param.push_str(&format!("[{name}]"));
        }
        param
    }
}

/// What the target merchant owns, so that a body that got through would change it.
struct Objects {
    sk: String,
    held: String,
    paid: String,
    endpoint: String,
}

async fn objects(app: &TestApp) -> Objects {
    let (_, sk) = app.merchant_with_secret("Bodies").await;
    let held = pay(app, &sk, "4242424242424242", 3000, "manual").await;
    assert_eq!(held["status"], "requires_capture");
    let paid = pay(app, &sk, "4242424242424242", 5000, "automatic").await;
    assert_eq!(paid["status"], "succeeded");
    let r = app
        .post(
            "/v1/webhook_endpoints",
            &sk,
            &json!({"url": "https://hooks.example.com/pw", "events": ["*"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let endpoint = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    Objects {
        held: held["id"].as_str().unwrap().to_owned(),
        paid: paid["id"].as_str().unwrap().to_owned(),
        endpoint,
        sk,
    }
}

fn routes(o: &Objects, token: &str) -> Vec<Route> {
    // In a URL's host, where the URL standard cannot escape it (in its
    // path it is percent-encoded: see `webhooks`).
    let hook = |s: &str| format!("https://hooks.{s}.example.com/pw");
    vec![
        Route::new("/v1/merchant".into(), json!({"name": "Renamed"}), &["name"]),
        Route::new(
            "/v1/tokens".into(),
            json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123", "name": "Ada Lovelace"}}),
            &["card", "name"],
        ),
        Route::new(
            "/v1/payments".into(),
            json!({"amount": 100, "currency": "usd", "payment_method": token, "description": "x"}),
            &["description"],
        ),
        Route::new(
            format!("/v1/payments/{}/confirm", o.held),
            json!({"return_url": "https://shop.example/done"}),
            &["return_url"],
        )
        .url(|s| format!("https://shop.example/{s}")),
        Route::new(
            format!("/v1/payments/{}/capture", o.held),
            json!({"amount_to_capture": 100}),
            &["amount_to_capture"],
        ),
        Route::new(
            format!("/v1/payments/{}/cancel", o.held),
            json!({"cancellation_reason": "duplicate"}),
            &["cancellation_reason"],
        ),
        Route::new(
            "/v1/refunds".into(),
            json!({"payment": o.paid, "amount": 1, "reason": "duplicate"}),
            &["reason"],
        ),
        Route::new(
            "/v1/webhook_endpoints".into(),
            json!({"url": "https://hooks.example.com/new", "events": ["*"]}),
            &["url"],
        )
        .url(hook),
        Route::new(
            format!("/v1/webhook_endpoints/{}", o.endpoint),
            json!({"url": "https://hooks.example.com/moved"}),
            &["url"],
        )
        .url(hook),
        Route::new(
            format!("/v1/webhook_endpoints/{}/rotate_secret", o.endpoint),
            json!({"expires_in": 0}),
            &["expires_in"],
        ),
    ]
}

/// The endpoint's stored row: url, events, status and sealed secrets.
async fn endpoint_row(app: &TestApp, id: &str) -> (String, String, String, Option<String>, Option<String>, i64) {
    sqlx::query_as(&format!(
        "SELECT url, events, status, secret_ciphertext, previous_ciphertext, updated_at \
         FROM webhook_endpoints WHERE id = '{id}'"
    ))
    .fetch_one(app.store.reader())
    .await
    .unwrap()
}

/// A malformed body: (case, content type, body, status, code unless empty,
/// param if known).
type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str, Option<String>);

async fn post(app: &TestApp, path: &str, key: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, String) {
    let mut request = app.client().post(app.url(path)).bearer_auth(key).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

both_backends! {
    async fn malformed_oversized_and_tricky_bodies_are_refused_on_every_post_route(app) {
        let o = objects(app).await;
        let token = token(app, &o.sk, "4242424242424242").await;
        let endpoint_before = endpoint_row(app, &o.endpoint).await;
        let before = Rows::snapshot(app).await;
        const JSON: Option<&str> = Some("application/json");
        for route in routes(&o, &token) {
            let valid = route.valid.to_string();
            let (first_key, first_value) = route.valid.as_object().unwrap().iter().next().unwrap();
            let field = route.param();
            let cases: Vec<Case> = vec![
                ("oversized body", JSON, route.with(&"a".repeat(100_000)).into_bytes(), 413, "body_too_large", None),
                ("oversized field", JSON, route.with(&"a".repeat(5_000)).into_bytes(), 400, "", Some(field.clone())),
                ("NUL", JSON, route.with("a\u{0}b").into_bytes(), 400, "", Some(field.clone())),
                ("raw NUL", JSON, route.with_bytes(b"a\x00b"), 400, "invalid_json", Some("body".into())),
                ("bidi override", JSON, route.with("abc\u{202E}txt.exe").into_bytes(), 400, "", Some(field.clone())),
                ("truncated", JSON, valid.as_bytes()[..valid.len() / 2].to_vec(), 400, "invalid_json", Some("body".into())),
                ("trailing garbage", JSON, format!("{valid} {{}}").into_bytes(), 400, "invalid_json", Some("body".into())),
                ("invalid utf-8", JSON, route.with_bytes(b"a\xff\xfeb"), 400, "invalid_json", Some("body".into())),
                ("overlong utf-8", JSON, route.with_bytes(b"a\xc0\xafb"), 400, "invalid_json", Some("body".into())),
                ("duplicate key", JSON, format!("{{{}:{first_value},{}", json!(first_key), &valid[1..]).into_bytes(), 400, "", None),
                ("deep nesting", JSON, format!("{}{}", "{\"a\":".repeat(3000), "}".repeat(3000)).into_bytes(), 400, "", None),
                ("array", JSON, b"[]".to_vec(), 400, "", None),
                ("null", JSON, b"null".to_vec(), 400, "", None),
                ("string", JSON, b"\"x\"".to_vec(), 400, "", None),
                ("huge number", JSON, format!("{{{}: 1e400}}", json!(first_key)).into_bytes(), 400, "", None),
                ("no content type", None, valid.clone().into_bytes(), 415, "unsupported_content_type", None),
                ("text/plain", Some("text/plain"), valid.clone().into_bytes(), 415, "unsupported_content_type", None),
                ("json lookalike", Some("application/jsonx"), valid.clone().into_bytes(), 415, "unsupported_content_type", None),
                ("form", Some("application/x-www-form-urlencoded"), b"name=x".to_vec(), 415, "unsupported_content_type", None),
                ("multipart", Some("multipart/form-data; boundary=x"), b"--x\r\n\r\nx\r\n--x--".to_vec(), 415, "unsupported_content_type", None),
                ("xml", Some("application/xml"), b"<name>x</name>".to_vec(), 415, "unsupported_content_type", None),
            ];
            for (case, content_type, body, status, code, param) in cases {
                let case = format!("POST {} {case}", route.path);
                let (got, text) = post(app, &route.path, &o.sk, content_type, body).await;
                let error = assert_api_error(got, &text, &case);
                assert_eq!(got, status, "{case}: {text}");
                if !code.is_empty() {
                    assert_eq!(error["error"]["code"], code, "{case}: {text}");
                }
                if let Some(param) = param {
                    assert_eq!(error["error"]["param"], param.as_str(), "{case}: {text}");
                }
                assert!(!text.contains("txt.exe") && !text.contains("aaaaaaaa"), "{case}: the value is echoed: {text}");
            }
        }
        for (q, case) in [("limit=-1", "negative"), ("limit=0", "zero"), ("limit=1.5", "fractional"), ("limit=99999999999999999999999", "overflow"), ("limit=1e3", "exponent")] {
            for list in ["api_keys", "payments", "refunds", "events", "webhook_endpoints"] {
                let r = app.get(&format!("/v1/{list}?{q}"), &o.sk).await;
                let status = r.status().as_u16();
                let error = assert_api_error(status, &r.text().await.unwrap(), case);
                assert_eq!((status, error["error"]["param"].as_str()), (400, Some("limit")), "{list} {case}");
            }
        }
        // Nothing was half-written.
        let merchant: Value = app.get("/v1/merchant", &o.sk).await.json().await.unwrap();
        assert_eq!(merchant["name"], "Bodies");
        let held: Value = app.get(&format!("/v1/payments/{}", o.held), &o.sk).await.json().await.unwrap();
        assert_eq!((&held["status"], &held["amount_received"]), (&json!("requires_capture"), &json!(0)), "{held}");
        let paid: Value = app.get(&format!("/v1/payments/{}", o.paid), &o.sk).await.json().await.unwrap();
        assert_eq!((&paid["status"], &paid["amount_refunded"]), (&json!("succeeded"), &json!(0)), "{paid}");
        assert_eq!(endpoint_row(app, &o.endpoint).await, endpoint_before, "the endpoint and its secret are unchanged");
        assert_intact(app, before, |_| {}).await;
    }

    async fn invalid_utf8_escapes_in_paths_and_queries_are_refused(app) {
        let o = objects(app).await;
        let endpoint_before = endpoint_row(app, &o.endpoint).await;
        let before = Rows::snapshot(app).await;
        // `%FF` decodes to a byte that is not UTF-8; `%C0%AF` is an overlong `/`.
        for bad in ["%FF", "%C0%AF", "pay_%FF%FE", "%ED%A0%80"] {
            let targets = [
                ("GET", format!("/v1/payments/{bad}")),
                ("POST", format!("/v1/payments/{bad}/capture")),
                ("POST", format!("/v1/payments/{bad}/cancel")),
                ("GET", format!("/v1/refunds/{bad}")),
                ("GET", format!("/v1/tokens/{bad}")),
                ("DELETE", format!("/v1/tokens/{bad}")),
                ("GET", format!("/v1/api_keys/{bad}")),
                ("POST", format!("/v1/api_keys/{bad}/revoke")),
                ("GET", format!("/v1/events/{bad}")),
                ("GET", format!("/v1/webhook_endpoints/{bad}")),
                ("DELETE", format!("/v1/webhook_endpoints/{bad}")),
                ("POST", format!("/v1/webhook_endpoints/{bad}/rotate_secret")),
                ("GET", format!("/v1/webhook_endpoints/{bad}/attempts")),
                ("GET", format!("/v1/{bad}")),
            ];
            for (method, target) in &targets {
                let case = format!("{method} {target}");
                let (status, body) = raw(app, method, target, &o.sk).await;
                assert_api_error(status, &body, &case);
                assert!(matches!(status, 400 | 404), "{case}: {body}");
                assert!(!body.contains('\u{FFFD}'), "{case}: the bytes are not echoed: {body}");
            }
            // The challenge page answers in HTML, but as cleanly.
            let target = format!("/sandbox/3ds/{bad}?challenge=x");
            let (status, body) = raw(app, "GET", &target, "").await;
            assert_clean(status, &body, &target);
            assert!(!body.contains("<form"), "{target}: {body}");
            let queries = [
                (format!("/v1/payments?status={bad}"), "status"),
                (format!("/v1/payments?starting_after={bad}"), "starting_after"),
                (format!("/v1/payments?created%5Bgte%5D={bad}"), "created[gte]"),
                (format!("/v1/refunds?payment={bad}"), "payment"),
                (format!("/v1/events?type={bad}"), "type"),
                (format!("/v1/events?starting_after={bad}"), "starting_after"),
                (format!("/v1/api_keys?limit={bad}"), "limit"),
                (format!("/v1/webhook_endpoints?starting_after={bad}"), "starting_after"),
                (format!("/v1/webhook_endpoints/{}/attempts?starting_after={bad}", o.endpoint), "starting_after"),
            ];
            for (target, param) in &queries {
                let (status, body) = raw(app, "GET", target, &o.sk).await;
                let error = assert_api_error(status, &body, target);
                assert_eq!((status, error["error"]["param"].as_str()), (400, Some(*param)), "{target}: {body}");
                assert!(!body.contains('\u{FFFD}'), "{target}: {body}");
            }
            // As a parameter name it is an unknown parameter, not echoed.
            let target = format!("/v1/payments?{bad}=1");
            let (status, body) = raw(app, "GET", &target, &o.sk).await;
            let error = assert_api_error(status, &body, &target);
            assert_eq!((status, error["error"]["param"].as_str()), (400, Some("query")), "{target}: {body}");
            let target = format!("/elements/card?key={bad}&origin={bad}");
            let (status, body) = raw(app, "GET", &target, "").await;
            assert_api_error(status, &body, &target);
            assert_eq!(status, 400, "{target}: {body}");
        }
        let held: Value = app.get(&format!("/v1/payments/{}", o.held), &o.sk).await.json().await.unwrap();
        assert_eq!(held["status"], "requires_capture");
        assert_eq!(endpoint_row(app, &o.endpoint).await, endpoint_before);
        assert_intact(app, before, |_| {}).await;
    }
}
