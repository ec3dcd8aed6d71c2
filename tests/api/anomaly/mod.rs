//! Anomaly detection under simulated attacks, on one gateway and on two
//! replicas sharing the database (and Redis for their rate limits): the
//! alerts (`anomaly.detected` events, `GET /v1/anomalies`, the CLI, metrics,
//! the audit trail) and the responses their policies call for (throttle,
//! key freeze), taking effect on the other replica at its next request.
//! Clients are simulated with `X-Forwarded-For` from a trusted proxy.

/// One test per backend on an app built with `options()` (in scope where
/// the tests are defined).
macro_rules! with_options {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($app: &$crate::support::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::support::spawn_app_with_options($crate::support::Db::Sqlite, options())
                        .await
                        .expect("sqlite app");
                    run(&app).await;
                    app.stop().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(app) =
                        $crate::support::spawn_app_with_options($crate::support::Db::Postgres, options()).await
                    else {
                        return;
                    };
                    run(&app).await;
                    app.stop().await;
                }
            }
        )*
    };
}

mod access;
mod attacks;
mod key_freeze;
mod step_up;

use paywarden::services::anomaly::AnomalyPolicy;
use serde_json::Value;

use crate::support::{AppOptions, Replica, TestApp};

/// A gateway behind a trusted proxy (127.0.0.1) with `policy`.
pub fn behind_proxy(policy: AnomalyPolicy) -> AppOptions {
    AppOptions {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        anomaly: policy,
        ..AppOptions::default()
    }
}

/// `GET path` with `key` from the client `ip` (as the proxy forwards it).
pub async fn get_from(replica: &Replica, ip: &str, path: &str, key: &str) -> reqwest::Response {
    replica
        .client
        .get(replica.url(path))
        .bearer_auth(key)
        .header("x-forwarded-for", ip)
        .send()
        .await
        .unwrap()
}

/// `paywarden anomalies list --json`'s alerts.
pub fn cli_anomalies(app: &TestApp) -> Vec<Value> {
    app.cli_json(&["anomalies", "list"])["data"].as_array().unwrap().clone()
}

/// `/metrics` of `replica`'s operator listener.
pub async fn metrics(replica: &Replica) -> String {
    replica
        .client
        .get(format!("{}/metrics", replica.operator))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
