//! Attacks on the client-address lockout: a lockout the operator cleared must
//! not come back on the next mistake; behind a trusted proxy, a forwarded-for
//! entry with a port is still the client's address, and a chain that cannot be
//! read is refused (400) instead of being blamed on the proxy (which would lock
//! out everyone behind it); and requests without any credentials (which a page
//! in a victim's browser can send) cannot lock out a client's correct key.

use std::time::Duration;

use paywarden::services::auth::LockoutPolicy;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{spawn_app_behind_proxies, test_payment_policy, Db, TestApp};

/// Three failures within a minute lock an address out for ten minutes.
fn policy() -> LockoutPolicy {
    LockoutPolicy {
        threshold: 3,
        window: Duration::from_secs(60),
        duration: Duration::from_secs(600),
    }
}

/// A gateway whose clients reach it through a proxy on 127.0.0.1 (when
/// `behind_proxy`), or directly.
async fn app(kind: Db, behind_proxy: bool) -> Option<TestApp> {
    let trusted = if behind_proxy {
        vec!["127.0.0.1/32".parse().unwrap()]
    } else {
        Vec::new()
    };
    spawn_app_behind_proxies(kind, policy(), test_payment_policy(), trusted).await
}

/// `GET /v1/merchant` with an optional bearer key and `X-Forwarded-For` value.
async fn get(app: &TestApp, key: Option<&str>, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut req = app.client().get(app.url("/v1/merchant"));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.unwrap()
}

/// Sends wrong keys until the address is locked out; asserts it takes exactly
/// the policy's threshold.
async fn lock_out(app: &TestApp, forwarded_for: Option<&str>) {
    for i in 0..3 {
        let status = get(app, Some(&format!("sk_test_guess{i}")), forwarded_for)
            .await
            .status();
        let expected = if i == 2 {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(status, expected, "wrong key {i} from {forwarded_for:?}");
    }
}

async fn clearing_a_lockout_also_forgets_the_failures(kind: Db) {
    let Some(app) = app(kind, false).await else { return };
    let (_, sk) = app.merchant_with_secret("Cleared").await;
    lock_out(&app, None).await;
    assert_eq!(get(&app, Some(&sk), None).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let out = app.cli_json(&["lockout", "clear", "127.0.0.1"]);
    assert_eq!(out["was_locked"], true);
    assert_eq!(out["failures_forgotten"], 3);
    // One more mistake after the clear is one failure, not the threshold's fourth.
    assert_eq!(
        get(&app, Some("sk_test_typo"), None).await.status(),
        StatusCode::UNAUTHORIZED,
        "a single bad key re-locked the address the operator had just cleared"
    );
    assert_eq!(get(&app, Some(&sk), None).await.status(), StatusCode::OK);
    app.stop().await;
}

async fn forwarded_for_with_ports_is_attributed_to_the_client(kind: Db) {
    let Some(app) = app(kind, true).await else { return };
    let (_, sk) = app.merchant_with_secret("Proxied").await;
    for (entry, client) in [
        ("198.51.100.20:4711", "198.51.100.20"),
        ("[2001:db8::7]:4711", "2001:db8::7"),
    ] {
        // The proxy appends the client's address (with the client's port) to
        // what the client sent.
        lock_out(&app, Some(&format!("203.0.113.50, {entry}"))).await;
        // The client is locked out, also when its proxy omits the port ...
        assert_eq!(
            get(&app, Some(&sk), Some(client)).await.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "{entry} was not attributed to {client}"
        );
        // ... while the proxy itself and everyone else behind it are not.
        assert_eq!(
            get(&app, Some(&sk), None).await.status(),
            StatusCode::OK,
            "{entry} locked out the proxy"
        );
        assert_eq!(get(&app, Some(&sk), Some("192.0.2.33")).await.status(), StatusCode::OK);
    }
    let audit = app.audit().await;
    let locked: Vec<_> = audit
        .iter()
        .filter(|r| r.event.action == "auth.lockout")
        .filter_map(|r| r.event.resource.clone())
        .collect();
    assert_eq!(locked, ["198.51.100.20", "2001:db8::7"]);
    app.stop().await;
}

async fn an_unreadable_forwarded_chain_is_refused_and_locks_nobody(kind: Db) {
    let Some(app) = app(kind, true).await else { return };
    let (_, sk) = app.merchant_with_secret("Garbled").await;
    for (i, chain) in [
        "not-an-address",
        "198.51.100.20:notaport",
        "2001:db8::7]:4711",
        "198.51.100.20, ",
        "unknown",
        "198.51.100.20:4711:1",
    ]
    .iter()
    .enumerate()
    {
        let r = get(&app, Some(&format!("sk_test_guess{i}")), Some(chain)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{chain:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forwarded_for_invalid", "{chain:?}");
        assert_eq!(body["error"]["param"], "X-Forwarded-For");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(body["error"]["request_id"].is_string());
        assert!(
            !body.to_string().contains(chain.trim_end_matches(", ")),
            "the header is not echoed"
        );
    }
    // More unreadable requests than the threshold: nobody is locked out.
    assert_eq!(get(&app, Some(&sk), None).await.status(), StatusCode::OK);
    assert_eq!(
        get(&app, Some(&sk), Some("198.51.100.20")).await.status(),
        StatusCode::OK
    );
    // Each refusal is audited (as the proxy's request), none as a failed authentication.
    let audit = app
        .wait_for_audit(|a| {
            a.iter()
                .filter(|r| r.event.reason.as_deref() == Some("forwarded_for_invalid"))
                .count()
                >= 6
        })
        .await;
    assert!(!audit
        .iter()
        .any(|r| r.event.action == "auth.failed" || r.event.action == "auth.lockout"));
    // Entries the client wrote before the proxy's own are never read, so
    // garbage there does not matter: the right-most untrusted address counts.
    assert_eq!(
        get(&app, Some(&sk), Some("garbage, [2001:db8::9]:1, 192.0.2.34"))
            .await
            .status(),
        StatusCode::OK
    );
    app.stop().await;
}

async fn forwarded_for_from_an_untrusted_peer_is_ignored(kind: Db) {
    let Some(app) = app(kind, false).await else { return };
    let (_, sk) = app.merchant_with_secret("Direct").await;
    // The peer is the client; what it claims to forward is not read at all.
    assert_eq!(
        get(&app, Some(&sk), Some("not-an-address")).await.status(),
        StatusCode::OK
    );
    app.stop().await;
}

async fn requests_without_credentials_do_not_lock_out_a_correct_key(kind: Db) {
    let Some(app) = app(kind, false).await else { return };
    let (_, sk) = app.merchant_with_secret("Office").await;
    // What a hostile page in a browser in the merchant's office can send.
    for _ in 0..10 {
        assert_eq!(get(&app, None, None).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        get(&app, Some(&sk), None).await.status(),
        StatusCode::OK,
        "credential-less requests locked out the address"
    );
    // They are still audited with their reason.
    let audit = app
        .wait_for_audit(|a| {
            a.iter()
                .filter(|r| r.event.reason.as_deref() == Some("no API key presented"))
                .count()
                >= 10
        })
        .await;
    assert!(!audit.iter().any(|r| r.event.action == "auth.lockout"));
    // Wrong keys are still counted, and lock the address at the threshold.
    lock_out(&app, None).await;
    assert_eq!(get(&app, Some(&sk), None).await.status(), StatusCode::TOO_MANY_REQUESTS);
    app.stop().await;
}

/// Each case on SQLite and on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(Db::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(Db::Postgres).await;
                }
            }
        )*
    };
}

on_both_backends!(
    clearing_a_lockout_also_forgets_the_failures,
    forwarded_for_with_ports_is_attributed_to_the_client,
    an_unreadable_forwarded_chain_is_refused_and_locks_nobody,
    forwarded_for_from_an_untrusted_peer_is_ignored,
    requests_without_credentials_do_not_lock_out_a_correct_key,
);
