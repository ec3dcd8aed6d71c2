//! Attacks on webhook endpoints: injection in `url` and `events`, in every
//! `{id}` (show, update, delete, rotate, attempts) and in the list and
//! attempts queries; privileged fields smuggled into create, update and
//! rotate bodies. A URL carrying the text in its path is inert: stored and
//! shown as the URL it is. Everything else is a clean 4xx, and the target
//! endpoint's row, secrets included, is unchanged. Live-mode endpoints refuse
//! IPv6 literals that reach a non-public IPv4 address (IPv4-translated,
//! -mapped and -compatible forms, NAT64, 6to4, Teredo).

use paywarden::domain::api_key::{KeyKind, Mode};
use reqwest::Method;
use serde_json::{json, Value};

use super::{assert_api_error, assert_intact, enc, Rows, SQLI, XSS};
use crate::both_backends;
use crate::support::{new_key, TestApp};

/// The endpoint under attack: its id and its stored row.
async fn endpoint(app: &TestApp, sk: &str) -> String {
    let r = app
        .post(
            "/v1/webhook_endpoints",
            sk,
            &json!({"url": "https://hooks.example.com/pw", "events": ["payment.succeeded"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

/// Everything stored about the endpoint, its sealed secrets included.
async fn row(app: &TestApp, id: &str) -> Vec<Option<String>> {
    let columns = [
        "merchant_id",
        "mode",
        "url",
        "events",
        "status",
        "secret_wrapped_dek",
        "secret_ciphertext",
        "previous_wrapped_dek",
        "previous_ciphertext",
        "CAST(kek_version AS TEXT)",
        "CAST(previous_expires_at AS TEXT)",
        "CAST(created_at AS TEXT)",
        "CAST(updated_at AS TEXT)",
        "CAST(disabled_at AS TEXT)",
    ];
    let mut values = Vec::new();
    for column in columns {
        let (v,): (Option<String>,) =
            sqlx::query_as(&format!("SELECT {column} FROM webhook_endpoints WHERE id = '{id}'"))
                .fetch_one(app.store.reader())
                .await
                .unwrap();
        values.push(v);
    }
    values
}

async fn send(app: &TestApp, method: Method, path: &str, key: &str, body: Option<Value>) -> (u16, String) {
    let mut request = app.client().request(method, app.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// A clean 400 naming `param` (and with `code`, unless empty).
fn refused(status: u16, text: &str, code: &str, param: &str, case: &str) {
    let e = assert_api_error(status, text, case);
    assert_eq!(
        (status, e["error"]["param"].as_str()),
        (400, Some(param)),
        "{case}: {text}"
    );
    if !code.is_empty() {
        assert_eq!(e["error"]["code"], code, "{case}: {text}");
    }
}

/// `%XX` escapes decoded (the URL standard escapes some characters of a path).
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

both_backends! {
    async fn sql_injection_in_webhook_endpoint_inputs_is_refused_or_inert(app) {
        let (_, sk) = app.merchant_with_secret("Hooks").await;
        let id = endpoint(app, &sk).await;
        let row_before = row(app, &id).await;
        let before = Rows::snapshot(app).await;
        let mut created = 0;
        for payload in SQLI {
            let post = |body: Value| send(app, Method::POST, "/v1/webhook_endpoints", &sk, Some(body));
            let (status, text) = post(json!({"url": payload, "events": ["*"]})).await;
            refused(status, &text, "url_invalid", "url", &format!("url {payload}"));
            for events in [json!([payload]), json!(["payment.succeeded", payload])] {
                let (status, text) = post(json!({"url": "https://hooks.example.com/x", "events": events})).await;
                refused(status, &text, "events_invalid", "events", &format!("events {events}"));
            }
            let (status, text) = post(json!({"url": "https://hooks.example.com/x", "events": ["*"], *payload: 1})).await;
            refused(status, &text, "parameter_unknown", "body", &format!("field {payload}"));
            // In a URL's path it is only text: the endpoint is the URL it
            // names (a raw space is refused: the URL standard would encode it).
            for url in [format!("https://hooks.example.com/h/{payload}"), format!("https://hooks.example.com/h/{}", enc(payload))] {
                let (status, text) = post(json!({"url": url, "events": ["*"]})).await;
                if url.contains(' ') {
                    refused(status, &text, "url_invalid", "url", &format!("raw spaces in {url}"));
                    continue;
                }
                assert_eq!(status, 200, "{url}: {text}");
                created += 1;
                let made: Value = serde_json::from_str(&text).unwrap();
                let stored = made["url"].as_str().unwrap();
                assert_eq!(percent_decoded(stored), percent_decoded(&url), "{url}: {stored}");
                assert!(!stored.contains(' ') && !stored.contains('"'), "{stored}");
                let shown: Value = app.get(&format!("/v1/webhook_endpoints/{}", made["id"].as_str().unwrap()), &sk).await.json().await.unwrap();
                assert_eq!(shown["url"], stored);
            }
            // The target's own fields refuse it.
            let target = format!("/v1/webhook_endpoints/{id}");
            let update = |body: Value| send(app, Method::POST, &target, &sk, Some(body));
            let (status, text) = update(json!({"url": payload})).await;
            refused(status, &text, "url_invalid", "url", &format!("update url {payload}"));
            let (status, text) = update(json!({"events": [payload]})).await;
            refused(status, &text, "events_invalid", "events", &format!("update events {payload}"));
            let (status, text) = update(json!({"disabled": payload})).await;
            refused(status, &text, "parameter_invalid", "disabled", &format!("update disabled {payload}"));
            let (status, text) = send(app, Method::POST, &format!("/v1/webhook_endpoints/{id}/rotate_secret"), &sk, Some(json!({"expires_in": payload}))).await;
            refused(status, &text, "", "expires_in", &format!("rotate expires_in {payload}"));
            // In a list query: an invalid parameter.
            let attempts = format!("/v1/webhook_endpoints/{id}/attempts");
            for (list, param) in [("/v1/webhook_endpoints", "starting_after"), ("/v1/webhook_endpoints", "limit"), (attempts.as_str(), "starting_after"), (attempts.as_str(), "limit")] {
                let path = format!("{list}?{param}={}", enc(payload));
                let (status, text) = send(app, Method::GET, &path, &sk, None).await;
                refused(status, &text, "parameter_invalid", param, &path);
                let path = format!("{list}?{}=1", enc(payload));
                let (status, text) = send(app, Method::GET, &path, &sk, None).await;
                refused(status, &text, "parameter_invalid", "query", &path);
            }
        }
        // In an `{id}` (alone, or after the real id): no such endpoint.
        for payload in SQLI.iter().chain(XSS) {
            for bad in [enc(payload), format!("{id}{}", enc(payload))] {
                for (method, path, body) in [
                    (Method::GET, format!("/v1/webhook_endpoints/{bad}"), None),
                    (Method::POST, format!("/v1/webhook_endpoints/{bad}"), Some(json!({"disabled": true}))),
                    (Method::DELETE, format!("/v1/webhook_endpoints/{bad}"), None),
                    (Method::POST, format!("/v1/webhook_endpoints/{bad}/rotate_secret"), Some(json!({}))),
                    (Method::GET, format!("/v1/webhook_endpoints/{bad}/attempts"), None),
                ] {
                    let case = format!("{method} {path}");
                    let (status, text) = send(app, method, &path, &sk, body).await;
                    let e = assert_api_error(status, &text, &case);
                    assert_eq!((status, e["error"]["code"].as_str()), (404, Some("resource_missing")), "{case}: {text}");
                    assert!(!text.contains(&id) && !text.contains("whsec_"), "{case}: {text}");
                }
            }
        }
        assert_eq!(row(app, &id).await, row_before, "the endpoint and its secrets are unchanged");
        let shown: Value = app.get(&format!("/v1/webhook_endpoints/{id}"), &sk).await.json().await.unwrap();
        assert_eq!((&shown["status"], &shown["url"]), (&json!("enabled"), &json!("https://hooks.example.com/pw")));
        assert_intact(app, before, |r| r.webhook_endpoints += created).await;
    }

    async fn control_and_invisible_characters_in_a_webhook_url_are_refused(app) {
        let (_, sk) = app.merchant_with_secret("Hooks").await;
        let before = Rows::snapshot(app).await;
        let create = |url: String| send(app, Method::POST, "/v1/webhook_endpoints", &sk, Some(json!({"url": url, "events": ["*"]})));
        // The URL standard would drop CR, LF and tab, map a zero-width
        // character in a host to nothing and percent-encode the rest: a URL
        // that reads as one thing and calls another. Refused anywhere in it.
        let hostile = ["a\u{0}b", "abc\u{202E}txt.exe", "a\u{2066}b", "a\r\nX-Injected: 1", "a\tb", "a\u{7}b", "a\u{FEFF}b", "a\u{200B}b", "a b"];
        for text in hostile {
            for url in [
                format!("https://hooks{text}.example.com/"),
                format!("https://hooks.example.com/{text}"),
                format!("https://hooks.example.com/pw?q={text}"),
            ] {
                let (status, body) = create(url.clone()).await;
                refused(status, &body, "url_invalid", "url", &format!("{url:?}"));
            }
        }
        // Markup is visible text: refused in a host, percent-encoded (and
        // shown so) in a path or query.
        let markup = "<script>alert(1)</script>";
        let (status, body) = create(format!("https://hooks{markup}.example.com/")).await;
        refused(status, &body, "url_invalid", "url", "markup in the host");
        let mut created = 0;
        for url in [format!("https://hooks.example.com/{markup}"), format!("https://hooks.example.com/pw?q={markup}")] {
            let (status, body) = create(url.clone()).await;
            assert_eq!(status, 200, "{url:?}: {body}");
            created += 1;
            let stored = serde_json::from_str::<Value>(&body).unwrap()["url"].as_str().unwrap().to_owned();
            assert!(stored.bytes().all(|b| b.is_ascii_graphic()) && !stored.contains('<'), "{url:?} stored as {stored:?}");
            assert_eq!(percent_decoded(&stored), url, "{url:?}");
        }
        assert_intact(app, before, |r| r.webhook_endpoints += created).await;
    }

    async fn mass_assignment_on_webhook_endpoints_is_an_unknown_field(app) {
        let (_, sk) = app.merchant_with_secret("Hooks").await;
        let (other, _) = app.merchant_with_secret("Other").await;
        let id = endpoint(app, &sk).await;
        let row_before = row(app, &id).await;
        let before = Rows::snapshot(app).await;
        let forged = [
            ("id", json!(id)),
            ("object", json!("webhook_endpoint")),
            ("merchant", json!(other.to_string())),
            ("merchant_id", json!(other.to_string())),
            ("secret", json!("whsec_attackerchosensecretattackerchosen")),
            ("status", json!("enabled")),
            ("mode", json!("live")),
            ("livemode", json!(true)),
            ("created", json!(0)),
            ("updated", json!(0)),
            ("disabled_at", json!(null)),
            ("previous_secret_expires_at", json!(4_102_444_800_i64)),
            ("kek_version", json!(1)),
        ];
        for (field, value) in &forged {
            // Beside valid fields: the whole request is refused, none of it applied.
            let cases = [
                (Method::POST, "/v1/webhook_endpoints".to_owned(), json!({"url": "https://hooks.example.com/new", "events": ["*"], *field: value})),
                (Method::POST, format!("/v1/webhook_endpoints/{id}"), json!({"url": "https://hooks.example.com/moved", *field: value})),
                (Method::POST, format!("/v1/webhook_endpoints/{id}"), json!({"disabled": true, *field: value})),
                (Method::POST, format!("/v1/webhook_endpoints/{id}/rotate_secret"), json!({"expires_in": 0, *field: value})),
            ];
            for (method, path, body) in cases {
                let case = format!("{method} {path} {field}");
                let (status, text) = send(app, method, &path, &sk, Some(body)).await;
                refused(status, &text, "parameter_unknown", field, &case);
                assert!(!text.contains("whsec_"), "{case}: {text}");
            }
        }
        // `disabled` is the one state an update may set; a new endpoint has none to choose.
        let (status, text) = send(app, Method::POST, "/v1/webhook_endpoints", &sk, Some(json!({"url": "https://hooks.example.com/new", "events": ["*"], "disabled": true}))).await;
        refused(status, &text, "parameter_unknown", "disabled", "create disabled");
        assert_eq!(row(app, &id).await, row_before, "the endpoint and its secrets are unchanged");
        assert_intact(app, before, |_| {}).await;
    }

    async fn live_endpoints_refuse_ipv6_forms_of_non_public_addresses(app) {
        let (merchant, _) = app.merchant_with_secret("Hooks").await;
        let mut live = new_key(&merchant, KeyKind::Secret, &[]);
        live.mode = Mode::Live;
        let live = app.issue(live).await.secret.expose().to_owned();
        let (status, text) = send(app, Method::POST, "/v1/webhook_endpoints", &live, Some(json!({"url": "https://8.8.8.8/hooks", "events": ["*"]}))).await;
        assert_eq!(status, 200, "{text}");
        let id = serde_json::from_str::<Value>(&text).unwrap()["id"].as_str().unwrap().to_owned();
        let row_before = row(app, &id).await;
        let before = Rows::snapshot(app).await;
        for url in [
            // RFC 2765 IPv4-translated ::ffff:0:a.b.c.d: 127.0.0.1, the metadata address, 10.0.0.1.
            "https://[::ffff:0:7f00:1]/",
            "https://[::ffff:0:a9fe:a9fe]/latest/meta-data/",
            "https://[::ffff:0:a00:1]:8443/",
            // IPv4-mapped, IPv4-compatible, NAT64 (well-known and local-use), 6to4, Teredo.
            "https://[::ffff:7f00:1]/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::7f00:1]/",
            "https://[64:ff9b:1::a00:1]/",
            "https://[2002:a9fe:a9fe::1]/",
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
        ] {
            let (status, text) = send(app, Method::POST, "/v1/webhook_endpoints", &live, Some(json!({"url": url, "events": ["*"]}))).await;
            refused(status, &text, "url_not_allowed", "url", &format!("create {url}"));
            let (status, text) = send(app, Method::POST, &format!("/v1/webhook_endpoints/{id}"), &live, Some(json!({"url": url}))).await;
            refused(status, &text, "url_not_allowed", "url", &format!("update {url}"));
            assert!(!text.contains("ffff") && !text.contains("ff9b"), "{url}: the error echoes the URL: {text}");
        }
        assert_eq!(row(app, &id).await, row_before, "the endpoint still points where it did");
        assert_intact(app, before, |_| {}).await;
    }
}
