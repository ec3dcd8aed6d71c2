//! The attack suite: hostile input in every string field, path segment, query
//! parameter and header of the live server. Every case must answer a clean 4xx
//! (or, for inert text, store it verbatim), leak no internal detail, and leave
//! the data intact: row counts as expected and the audit chain verifying.
//!
//! This file holds the shared payloads and checks, and the cases for
//! merchants, keys, bodies and headers; `payments` those for payments,
//! refunds and the 3-D Secure page.

mod payments;

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::both_backends;
use crate::support::TestApp;

const SQLI: &[&str] = &[
    "' OR '1'='1",
    "'; DROP TABLE api_keys; --",
    "\" OR \"\"=\"",
    "1; SELECT pg_sleep(5)--",
    "key_' UNION SELECT key_hash FROM api_keys--",
    "mer_aaaaaaaaaaaaaaaaaaaaaaa'",
];

const XSS: &[&str] = &[
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "javascript:alert(1)",
];

/// Markers of internal detail that must never reach a client.
const LEAKS: &[&str] = &[
    "sqlx",
    "SELECT",
    "INSERT",
    "syntax error",
    "panicked",
    "/src/",
    "/root/",
    "/work/",
    "stack backtrace",
    "sqlite",
    "postgres",
];

fn assert_clean(status: u16, body: &str, case: &str) {
    assert!((400..500).contains(&status), "{case}: status {status}: {body}");
    for leak in LEAKS {
        assert!(
            !body.to_lowercase().contains(&leak.to_lowercase()),
            "{case}: response leaks {leak:?}: {body}"
        );
    }
}

async fn counts(app: &TestApp) -> (i64, i64) {
    let (m,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM merchants")
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    let (k,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM api_keys")
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    (m, k)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Sends raw bytes over TLS and returns the status line's code (0 if the
/// server closed the connection without answering).
async fn raw_request(app: &TestApp, request: &[u8]) -> (u16, String) {
    let mut roots = rustls::RootCertStore::empty();
    let cert = rustls_pki_types::CertificateDer::from_pem_slice(&app.cert_pem).unwrap();
    roots.add(cert).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let port: u16 = app.main.base.rsplit(':').next().unwrap().parse().unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

use rustls_pki_types::pem::PemObject;

both_backends! {
    async fn injection_and_markup_in_paths_queries_and_bodies_are_inert(app) {
        let (_, sk) = app.merchant_with_secret("Target").await;
        let other = app.merchant_with_secret("Other").await;
        let before = counts(app).await;
        for payload in SQLI.iter().chain(XSS) {
            let r = app.get(&format!("/v1/api_keys/{}", enc(payload)), &sk).await;
            let status = r.status().as_u16();
            assert_clean(status, &r.text().await.unwrap(), payload);
            assert_eq!(status, 404, "{payload}");
            let r = app.post(&format!("/v1/api_keys/{}/revoke", enc(payload)), &sk, &json!({})).await;
            let status = r.status().as_u16();
            assert_clean(status, &r.text().await.unwrap(), payload);
            for q in ["starting_after", "limit"] {
                let r = app.get(&format!("/v1/api_keys?{q}={}", enc(payload)), &sk).await;
                let status = r.status().as_u16();
                assert_clean(status, &r.text().await.unwrap(), payload);
            }
            // As a field value it is just text: stored and returned verbatim, as JSON.
            let r = app.post("/v1/merchant", &sk, &json!({"name": payload})).await;
            assert_eq!(r.status(), 200, "{payload}");
            assert_eq!(r.headers()["content-type"], "application/json");
            assert_eq!(r.headers()["x-content-type-options"], "nosniff");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["name"], *payload);
        }
        assert_eq!(counts(app).await, before, "no row appeared or vanished");
        let theirs: Value = app.get("/v1/merchant", &other.1).await.json().await.unwrap();
        assert_eq!(theirs["name"], "Other");
        let out = app.cli(&["audit", "verify"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }

    async fn malformed_oversized_and_tricky_bodies_are_refused(app) {
        let (_, sk) = app.merchant_with_secret("Bodies").await;
        let before = counts(app).await;
        let post_raw = |ct: Option<&'static str>, body: Vec<u8>| {
            let mut req = app.client().post(app.url("/v1/merchant")).bearer_auth(&sk).body(body);
            if let Some(ct) = ct {
                req = req.header("content-type", ct);
            }
            req.send()
        };
        let cases: Vec<(&str, Option<&'static str>, Vec<u8>, u16)> = vec![
            ("oversized body", Some("application/json"), format!("{{\"name\":\"{}\"}}", "a".repeat(100_000)).into_bytes(), 413),
            ("oversized field", Some("application/json"), format!("{{\"name\":\"{}\"}}", "a".repeat(5_000)).into_bytes(), 400),
            ("deep nesting", Some("application/json"), format!("{}{}", "{\"a\":".repeat(3000), "}".repeat(3000)).into_bytes(), 400),
            ("truncated", Some("application/json"), b"{\"name\":".to_vec(), 400),
            ("trailing garbage", Some("application/json"), b"{\"name\":\"x\"} {}".to_vec(), 400),
            ("duplicate key", Some("application/json"), b"{\"name\":\"x\",\"name\":\"y\"}".to_vec(), 400),
            ("invalid utf-8", Some("application/json"), b"{\"name\":\"\xff\xfe\"}".to_vec(), 400),
            ("NUL", Some("application/json"), b"{\"name\":\"a\\u0000b\"}".to_vec(), 400),
            ("bidi override", Some("application/json"), "{\"name\":\"abc\u{202E}txt.exe\"}".as_bytes().to_vec(), 400),
            ("array", Some("application/json"), b"[]".to_vec(), 400),
            ("null", Some("application/json"), b"null".to_vec(), 400),
            ("number", Some("application/json"), b"{\"name\": 1e400}".to_vec(), 400),
            ("no content type", None, b"{\"name\":\"x\"}".to_vec(), 415),
            ("text/plain", Some("text/plain"), b"{\"name\":\"x\"}".to_vec(), 415),
            ("form", Some("application/x-www-form-urlencoded"), b"name=x".to_vec(), 415),
            ("multipart", Some("multipart/form-data; boundary=x"), b"--x\r\n\r\nx\r\n--x--".to_vec(), 415),
            ("xml", Some("application/xml"), b"<name>x</name>".to_vec(), 415),
        ];
        for (case, ct, body, want) in cases {
            let r = post_raw(ct, body).await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert_eq!(status, want, "{case}: {text}");
            assert_clean(status, &text, case);
            let v: Value = serde_json::from_str(&text).unwrap();
            assert!(v["error"]["code"].is_string(), "{case}");
        }
        for (q, case) in [("limit=-1", "negative"), ("limit=0", "zero"), ("limit=1.5", "fractional"), ("limit=99999999999999999999999", "overflow"), ("limit=1e3", "exponent")] {
            let r = app.get(&format!("/v1/api_keys?{q}"), &sk).await;
            let status = r.status().as_u16();
            assert_eq!(status, 400, "{case}");
            assert_clean(status, &r.text().await.unwrap(), case);
        }
        let body: Value = app.get("/v1/merchant", &sk).await.json().await.unwrap();
        assert_eq!(body["name"], "Bodies", "nothing was half-written");
        assert_eq!(counts(app).await, before);
    }

    async fn header_tricks_and_traversal_are_refused(app) {
        let (_, sk) = app.merchant_with_secret("Headers").await;
        // Obsolete line folding, a NUL in a header, and a bare LF are protocol errors.
        for (case, req) in [
            ("obs-fold", format!("GET /v1/merchant HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sk}\r\nX-A: a\r\n b\r\n\r\n")),
            ("nul", format!("GET /v1/merchant HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sk}\u{0}x\r\n\r\n")),
            ("space before colon", "GET /v1/merchant HTTP/1.1\r\nHost : x\r\n\r\n".to_owned()),
        ] {
            let (status, text) = raw_request(app, req.as_bytes()).await;
            assert!(status == 0 || (400..500).contains(&status), "{case}: {text}");
            assert!(!text.contains("Headers\""), "{case}: request was served: {text}");
        }
        // A smuggled CRLF in a query value never becomes a header.
        let (status, text) = raw_request(app, format!("GET /v1/api_keys?starting_after=a%0d%0aSet-Cookie:%20x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sk}\r\nConnection: close\r\n\r\n").as_bytes()).await;
        assert_eq!(status, 400, "{text}");
        assert!(!text.to_lowercase().contains("set-cookie"));
        for path in ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/v1/..%2f..%2fetc/passwd", "/elements/..%2f..%2fCargo.toml", "/v1/api_keys/..%2f..%2f..%2fetc%2fpasswd", "//etc/passwd", "/.env", "/.git/config"] {
            let r = app.client().get(app.url(path)).bearer_auth(&sk).send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert_clean(status, &text, path);
            assert!(!text.contains("root:") && !text.contains("[package]") && !text.contains("[core]"), "{path}: {text}");
        }
        let out = app.cli(&["audit", "verify"]);
        assert!(out.status.success());
    }
}
