//! Attacks on the client-address lockout: a lockout the operator cleared must
//! not come back on the next mistake.

use std::time::Duration;

use paywarden::services::auth::LockoutPolicy;
use reqwest::StatusCode;

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

on_both_backends!(clearing_a_lockout_also_forgets_the_failures);
