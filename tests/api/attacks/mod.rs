//! The attack suite: hostile input in every string field, path segment, query
//! parameter and header of the live server. Every case must answer a clean 4xx
//! (or, for inert text, store it verbatim), leak no internal detail, and leave
//! the data intact: every table holds the rows it held before (plus what the
//! case legitimately created), and the audit trail kept every entry, recorded
//! the attack and still verifies ([`Rows`], [`assert_intact`]).
//!
//! This file holds the shared payloads and checks, and the cases for
//! merchants, keys, headers and path traversal; `bodies` malformed bodies on
//! every POST endpoint and invalid UTF-8 in paths and queries; `payments`
//! payments, refunds and the 3-D Secure page; `tokens` the vault; `webhooks`
//! webhook endpoints; `events` the event list; `elements` the hosted card
//! fields page and the origins that may embed it; `lockouts` the client-address
//! lockout (clearing, forwarded-for chains, credential-less requests);
//! `user_agents` card numbers and keys hidden in the `User-Agent` header;
//! `modes` test/live isolation; `idempotency` squatting of Idempotency-Keys;
//! `fingerprints` the fingerprint oracle and tokenization limits;
//! `early_refusals` answers given before a body was read, over HTTP/2;
//! `connections` idle and slow connections and the connection cap; `money`
//! races of captures, cancels, refunds and challenge answers through a
//! processor with external effects, and restricted keys' limits on every
//! operation that moves money.

mod bodies;
mod connections;
mod cvc;
mod early_refusals;
mod elements;
mod events;
mod fingerprints;
mod idempotency;
mod lockouts;
mod modes;
mod money;
mod payments;
mod tokens;
mod user_agents;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use paywarden::domain::ids::RequestId;

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

/// A clean 4xx: no marker of internal detail anywhere in `body` (a response
/// body, or a whole response with its head), except in its own request id.
fn assert_clean(status: u16, body: &str, case: &str) {
    assert!((400..500).contains(&status), "{case}: status {status}: {body}");
    let checked = without_request_id(body).to_lowercase();
    for leak in LEAKS {
        assert!(
            !checked.contains(&leak.to_lowercase()),
            "{case}: response leaks {leak:?}: {body}"
        );
    }
}

/// `text` with the response's request id masked: a random id may spell a
/// marker by chance (`req_IcsSqLx…` holds "sqlx"). Masked only where it is
/// the id (the `request_id` of a JSON error, the `Request-Id` header) and
/// only when it has exactly the shape of one (`RequestId::parse`).
fn without_request_id(text: &str) -> String {
    static ID: std::sync::OnceLock<[regex::Regex; 2]> = std::sync::OnceLock::new();
    let [field, header] = ID.get_or_init(|| {
        [
            regex::Regex::new(r#"("request_id"\s*:\s*")([^"\\]*)(")"#).unwrap(),
            regex::Regex::new(r"(?mi)^(request-id:[ \t]*)(\S*)([ \t]*\r?)$").unwrap(),
        ]
    });
    let mask = |caps: &regex::Captures<'_>| match RequestId::parse(&caps[2]) {
        Ok(_) => format!("{}req_<id>{}", &caps[1], &caps[3]),
        Err(_) => caps[0].to_owned(),
    };
    let text = field.replace_all(text, mask);
    header.replace_all(&text, mask).into_owned()
}

#[test]
fn the_leak_check_ignores_the_request_id_and_nothing_else() {
    let clean = |text: &str| std::panic::catch_unwind(|| assert_clean(404, text, "case")).is_ok();
    let error = |message: &str, request_id: &str| {
        json!({"error": {"type": "invalid_request_error", "code": "resource_missing", "message": message,
            "param": "id", "request_id": request_id}})
        .to_string()
    };
    // A random request id may spell a marker: "req_IcsSqLx…" holds "sqlx".
    let id = "req_IcsSqLxAbCdEfGhIjKlMnOpQ";
    assert!(clean(&error("No such key", id)));
    let head = format!("HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\nrequest-id: {id}\r\n");
    assert!(clean(&format!("{head}\r\n{}", error("No such key", id))));
    // Everything else is still checked: the message, the rest of the head,
    // and a request_id that is not one of ours in shape.
    assert!(!clean(&error("sqlx: no rows returned", id)));
    assert!(!clean(&error("No such key", "req_sqlx error at /src/store.rs")));
    assert!(!clean(&error("No such key", &format!("{id}sqlx"))));
    assert!(!clean(&format!(
        "{head}x-debug: sqlx\r\n\r\n{}",
        error("No such key", id)
    )));
    assert!(!clean(&format!(
        "HTTP/1.1 404 Not Found\r\nrequest-id: {id} sqlite\r\n\r\n{{}}"
    )));
}

/// Row counts of every table an attack could reach, and of the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rows {
    merchants: i64,
    api_keys: i64,
    card_tokens: i64,
    webhook_endpoints: i64,
    payments: i64,
    refunds: i64,
    events: i64,
    /// Attacks add to it (every request is audited); nothing may take from it.
    audit_log: i64,
}

impl Rows {
    async fn count(app: &TestApp) -> Self {
        let n = |table: &'static str| async move {
            let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(app.store.reader())
                .await
                .unwrap();
            n
        };
        Self {
            merchants: n("merchants").await,
            api_keys: n("api_keys").await,
            card_tokens: n("card_tokens").await,
            webhook_endpoints: n("webhook_endpoints").await,
            payments: n("payments").await,
            refunds: n("refunds").await,
            events: n("events").await,
            audit_log: n("audit_log").await,
        }
    }

    /// The counts before an attack, taken from a trail that verifies.
    async fn snapshot(app: &TestApp) -> Self {
        let rows = Self::count(app).await;
        assert_chain_covers(app, rows.audit_log).await;
        rows
    }

    /// The data tables alone, which an attack must leave exactly as they were.
    fn data(self) -> Self {
        Self { audit_log: 0, ..self }
    }
}

/// Walks the audit chain from its first entry (`services::audit::verify`, as
/// `paywarden audit verify` does): it must be intact and hold at least `entries`.
async fn assert_chain_covers(app: &TestApp, entries: i64) {
    let report = paywarden::services::audit::verify(&app.store).await.unwrap();
    assert!(report.intact(), "audit chain broken: {:?}", report.first_break);
    assert!(
        i64::try_from(report.entries_checked).unwrap() >= entries,
        "the chain covers {} entries, {entries} were counted",
        report.entries_checked
    );
}

/// After an attack: every data table holds exactly the rows of `before` plus
/// what `created` adds (the rows the case legitimately made, e.g.
/// `|r| r.payments += 1`); the audit trail lost nothing, recorded the attack
/// (at least one entry more than before, or as many as `created` asks for)
/// and its chain verifies from the first entry.
async fn assert_intact(app: &TestApp, before: Rows, created: impl FnOnce(&mut Rows)) {
    let mut expected = before;
    expected.audit_log += 1;
    created(&mut expected);
    // Request entries reach the trail through the batched writer, within
    // about 100 ms of their answer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let after = loop {
        let now = Rows::count(app).await;
        if now.audit_log >= expected.audit_log || tokio::time::Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        after.data(),
        expected.data(),
        "rows appeared, vanished or were not created"
    );
    assert!(
        after.audit_log >= expected.audit_log,
        "the audit trail holds {} entries, at least {} expected (it held {} before)",
        after.audit_log,
        expected.audit_log,
        before.audit_log
    );
    assert_chain_covers(app, after.audit_log).await;
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
/// server closed the connection without answering) and the whole response.
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
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

/// `METHOD target` with `key` (and, for a POST, the JSON body `{}`), sent
/// byte for byte: no client library removes dot segments or re-encodes
/// escapes on the way. Returns the status and the response body.
async fn raw(app: &TestApp, method: &str, target: &str, key: &str) -> (u16, String) {
    let body = if method == "POST" {
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    } else {
        "Content-Length: 0\r\n\r\n"
    };
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n{body}"
    );
    let (status, text) = raw_request(app, request.as_bytes()).await;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_owned();
    (status, body)
}

/// The error names neither the value nor any part of it that JSON escaping
/// would hide from a search of the raw text.
fn assert_not_echoed(error: &Value, payload: &str, case: &str) {
    for field in ["message", "param"] {
        let text = error["error"][field].as_str().unwrap_or_default();
        assert!(!text.contains(payload), "{case}: {field} echoes the value: {error}");
    }
}

/// A clean 4xx in the API's own error format.
fn assert_api_error(status: u16, body: &str, case: &str) -> Value {
    assert_clean(status, body, case);
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{case}: not JSON ({e}): {body}"));
    assert!(v["error"]["code"].is_string(), "{case}: {body}");
    v
}

use rustls_pki_types::pem::PemObject;

both_backends! {
    async fn injection_and_markup_in_paths_queries_and_bodies_are_inert(app) {
        let (_, sk) = app.merchant_with_secret("Target").await;
        let other = app.merchant_with_secret("Other").await;
        let before = Rows::snapshot(app).await;
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
            let shown: Value = app.get("/v1/merchant", &sk).await.json().await.unwrap();
            assert_eq!(shown["name"], *payload, "read back verbatim");
        }
        let theirs: Value = app.get("/v1/merchant", &other.1).await.json().await.unwrap();
        assert_eq!(theirs["name"], "Other");
        assert_intact(app, before, |_| {}).await;
    }

    async fn header_tricks_are_refused(app) {
        let (_, sk) = app.merchant_with_secret("Headers").await;
        let before = Rows::snapshot(app).await;
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
        assert_intact(app, before, |_| {}).await;
    }

    async fn dot_segments_and_encoded_traversal_reach_no_other_route_or_file(app) {
        let (_, sk) = app.merchant_with_secret("Traversal").await;
        let held = crate::payments::pay(app, &sk, "4242424242424242", 3000, "manual").await;
        assert_eq!(held["status"], "requires_capture");
        let held = held["id"].as_str().unwrap().to_owned();
        let before = Rows::snapshot(app).await;
        // Sent byte for byte: a client that removed the dot segments would
        // send another, valid path (`/v1/merchant`, `/v1/payments/{id}/capture`,
        // the payment list) instead of testing the server.
        let gets = [
            "/v1/../v1/merchant".to_owned(),
            "/v1/./merchant".to_owned(),
            "/v1/merchant/.".to_owned(),
            "/v1/api_keys/../merchant".to_owned(),
            "/v1/api_keys/%2e%2e/merchant".to_owned(),
            "/v1/tokens/..%2f..%2fetc%2fpasswd".to_owned(),
            "/v1/tokens/..%2F..%2F..%2FCargo.toml".to_owned(),
            "/v1/api_keys/..%2f..%2f..%2fetc%2fpasswd".to_owned(),
            format!("/v1/payments/{held}/.."),
            format!("/v1/payments/{held}/%2e%2e"),
            "/../../etc/passwd".to_owned(),
            "/v1/../../../../etc/passwd".to_owned(),
            "/%2e%2e/%2e%2e/etc/passwd".to_owned(),
            "/v1/..%2f..%2fetc/passwd".to_owned(),
            "/v1/..%5c..%5cCargo.toml".to_owned(),
            "/elements/../../Cargo.toml".to_owned(),
            "/elements/..%2f..%2fCargo.toml".to_owned(),
            "/elements/card.js/../../../src/main.rs".to_owned(),
            "/elements/%2e%2e/%2e%2e/src/api/elements/card.html".to_owned(),
            "//etc/passwd".to_owned(),
            "/.env".to_owned(),
            "/.git/config".to_owned(),
        ];
        for path in &gets {
            let (status, body) = raw(app, "GET", path, &sk).await;
            let error = assert_api_error(status, &body, path);
            // No route, or a route whose `{id}` is the whole rest: no such object.
            let code = error["error"]["code"].as_str().unwrap();
            assert_eq!(status, 404, "{path}: {body}");
            assert!(code == "route_not_found" || code == "resource_missing", "{path}: {body}");
            for served in ["root:", "[package]", "[core]", "fn main", "<label", "Traversal", "\"object\""] {
                assert!(!body.contains(served), "{path}: {served:?} served: {body}");
            }
        }
        // A POST whose dot segments would resolve to a capture captures nothing.
        for path in [
            format!("/v1/payments/{held}/cancel/../capture"),
            format!("/v1/payments/{held}/cancel/%2e%2e/capture"),
            format!("/v1/payments/x/../{held}/capture"),
        ] {
            let (status, body) = raw(app, "POST", &path, &sk).await;
            let error = assert_api_error(status, &body, &path);
            assert_eq!(status, 404, "{path}: {body}");
            assert!(!body.contains(&held), "{path}: {body}");
            assert!(error["error"]["code"] == "route_not_found" || error["error"]["code"] == "resource_missing", "{path}: {body}");
        }
        let now: Value = app.get(&format!("/v1/payments/{held}"), &sk).await.json().await.unwrap();
        assert_eq!((&now["status"], &now["amount_received"]), (&json!("requires_capture"), &json!(0)), "{now}");
        assert_intact(app, before, |_| {}).await;
    }
}
