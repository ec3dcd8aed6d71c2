//! Test support: `spawn_app()` starts the real gateway (real TLS listener on
//! 127.0.0.1:0, real database) for one test, on SQLite or PostgreSQL. Each
//! test gets its own SQLite file or its own PostgreSQL schema, so tests run in
//! parallel. PostgreSQL comes from `TEST_POSTGRES_URL` (default: the local
//! server); when it cannot be reached the PostgreSQL variants print a loud
//! SKIPPED line, or fail when `REQUIRE_POSTGRES=1` (as CI sets).
//!
//! # Layout
//!
//! - [`database`]: a test's own database (a SQLite file or a PostgreSQL schema).
//! - [`app`]: the [`TestApp`] a test gets, and the `spawn_app*` variants.
//! - [`gateways`]: its gateways: the first, and more on the same database,
//!   each with its own vault; [`replica`]: one of them ([`Replica`]).
//! - [`client`]: what a test does through the app: requests, merchants, keys,
//!   the audit trail.
//! - [`cli`]: the real `paywarden` binary against the test's database.
//! - [`test_ca`]: the tests' own CA for webhook receivers; [`settings`]: the
//!   webhook settings of test gateways, which trust it.
//! - [`fixtures`]: keys, secrets and policies of test gateways.
//! - [`redis`]: shared rate limits in Redis, under a prefix of the test's
//!   own, or in a private `redis-server` a test may stop.
//!
//! Everything a test uses is re-exported here (`crate::support::…`), with
//! [`both_backends!`](crate::both_backends).

mod app;
mod cli;
mod client;
mod database;
mod fixtures;
mod gateways;
mod redis;
mod replica;
mod settings;
mod test_ca;

pub use app::{
    spawn_app, spawn_app_behind_proxies, spawn_app_with, spawn_app_with_limits, spawn_app_with_options,
    spawn_app_with_payments, AppOptions, TestApp,
};
pub use client::client_trusting;
pub use database::{Db, TestDatabase, DEFAULT_POSTGRES_URL};
pub use fixtures::{kek, new_key, operator, test_payment_policy, test_pepper, write_secret_file};
pub use redis::{shared_limits, unique_prefix, PrivateRedis, SHARED_REDIS_URL};
pub use replica::Replica;
pub use settings::{webhook_settings, TEST_RETRY};
pub use test_ca::test_ca;

/// Defines one test per backend: `mod NAME { fn sqlite(); fn postgres(); }`.
#[macro_export]
macro_rules! both_backends {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($app: &$crate::support::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::support::spawn_app($crate::support::Db::Sqlite).await.expect("sqlite app");
                    run(&app).await;
                    app.stop().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(app) = $crate::support::spawn_app($crate::support::Db::Postgres).await else { return };
                    run(&app).await;
                    app.stop().await;
                }
            }
        )*
    };
}
