//! Attacks on the hosted card fields page and what it trusts: injection in
//! the merchant's `element_origins`, and injection and markup in the page's
//! `key` and `origin` query. Each is a clean 4xx answered as JSON, never an
//! HTML page reflecting the value; the registered origins are unchanged and
//! the real page is still served.
//!
//! Every wrong key counts towards the client address's lockout; these
//! gateways lock out only after 1,000 failures, so that each payload reaches
//! the page's own checks.

use paywarden::domain::api_key::KeyKind;
use paywarden::services::auth::LockoutPolicy;
use serde_json::{json, Value};

use super::{assert_api_error, assert_intact, assert_not_echoed, enc, Rows, SQLI, XSS};
use crate::support::{spawn_app_with, Db, TestApp};

const ORIGIN: &str = "https://shop.example";

/// `GET /elements/card?<query>`: status, content type and body.
async fn page(app: &TestApp, query: &str) -> (u16, String, String) {
    let r = app
        .client()
        .get(app.url(&format!("/elements/card?{query}")))
        .send()
        .await
        .unwrap();
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    (r.status().as_u16(), content_type, r.text().await.unwrap())
}

async fn element_origins(app: &TestApp, sk: &str) -> Value {
    let merchant: Value = app.get("/v1/merchant", sk).await.json().await.unwrap();
    merchant["element_origins"].clone()
}

async fn run(app: &TestApp) {
    let m = app.merchant("Elements").await;
    let sk = app.key(&m, KeyKind::Secret, &[]).await.secret.expose().to_owned();
    let pk = app.key(&m, KeyKind::Publishable, &[]).await.secret.expose().to_owned();
    let r = app
        .post("/v1/merchant", &sk, &json!({"element_origins": [ORIGIN]}))
        .await;
    assert_eq!(r.status(), 200);
    let origins = element_origins(app, &sk).await;
    assert_eq!(origins, json!([ORIGIN]));
    let before = Rows::snapshot(app).await;

    // Injection into the registered origins: refused, naming the element.
    for payload in SQLI.iter().chain(XSS) {
        for (body, param) in [
            (json!({"element_origins": [payload]}), "element_origins[0]"),
            (json!({"element_origins": [ORIGIN, payload]}), "element_origins[1]"),
            (
                json!({"element_origins": [format!("{ORIGIN}/{payload}")]}),
                "element_origins[0]",
            ),
            (
                json!({"element_origins": [format!("https://{payload}")]}),
                "element_origins[0]",
            ),
            (
                json!({"element_origins": [format!("{ORIGIN}{payload}")]}),
                "element_origins[0]",
            ),
            (json!({"element_origins": payload}), "element_origins"),
            (
                json!({"name": "Renamed", "element_origins": [payload]}),
                "element_origins[0]",
            ),
            (json!({*payload: [ORIGIN]}), "body"),
        ] {
            let r = app.post("/v1/merchant", &sk, &body).await;
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            let e = assert_api_error(status, &text, &body.to_string());
            assert_eq!(
                (status, e["error"]["param"].as_str()),
                (400, Some(param)),
                "{body}: {text}"
            );
            assert_not_echoed(&e, payload, &body.to_string());
        }
    }
    assert_eq!(
        element_origins(app, &sk).await,
        origins,
        "the registered origins are unchanged"
    );

    // Injection and markup in the page's query: a JSON error, never a page.
    let escaped = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    for payload in SQLI.iter().chain(XSS) {
        let p = enc(payload);
        let o = enc(ORIGIN);
        for (query, status, param) in [
            (format!("key={p}&origin={o}"), 401, None),
            (format!("key={pk}{p}&origin={o}"), 401, None),
            (format!("key={p}{pk}&origin={o}"), 401, None),
            (format!("key={pk}&origin={p}"), 400, Some("origin")),
            (format!("key={pk}&origin={o}{p}"), 400, Some("origin")),
            (format!("key={pk}&origin={o}%2F{p}"), 400, Some("origin")),
            (format!("key={p}&origin={p}"), 400, Some("origin")),
            (format!("key={pk}&origin={o}&{p}=1"), 400, Some("query")),
            (format!("key={pk}&origin={o}&origin={p}"), 400, None),
        ] {
            let (got, content_type, body) = page(app, &query).await;
            let e = assert_api_error(got, &body, &query);
            assert_eq!(got, status, "{query}: {body}");
            if let Some(param) = param {
                assert_eq!(e["error"]["param"], param, "{query}: {body}");
            }
            assert!(content_type.starts_with("application/json"), "{query}: {content_type}");
            assert!(!body.contains(payload), "{query}: the value is reflected: {body}");
            assert_not_echoed(&e, payload, &query);
            assert!(
                !body.contains(&escaped(payload)) || escaped(payload) == *payload,
                "{query}: {body}"
            );
            assert!(!body.contains("<label") && !body.contains(&pk), "{query}: {body}");
        }
    }

    // The real page is still served, and only for the registered origin.
    let (status, content_type, html) = page(app, &format!("key={pk}&origin={}", enc(ORIGIN))).await;
    assert_eq!(status, 200, "{html}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(html.contains("<label"));
    for payload in XSS {
        assert!(!html.contains(payload), "{html}");
    }
    assert_intact(app, before, |_| {}).await;
}

/// A gateway whose lockout does not end the attack early.
async fn spawn(kind: Db) -> Option<TestApp> {
    let lockout = LockoutPolicy {
        threshold: 1_000,
        ..LockoutPolicy::default()
    };
    spawn_app_with(kind, lockout).await
}

mod injection_and_markup_in_the_card_page_and_element_origins_are_refused {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = spawn(Db::Sqlite).await.expect("sqlite app");
        run(&app).await;
        app.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some(app) = spawn(Db::Postgres).await else { return };
        run(&app).await;
        app.stop().await;
    }
}
