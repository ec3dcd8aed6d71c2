//! The app a test gets: its database, its keys and secrets, and its first
//! gateway ([`TestApp::main`]); `spawn_app*` start one as the options say.

use std::path::PathBuf;
use std::sync::Arc;

use paywarden::server::listener::ConnLimits;
use paywarden::server::tls;
use paywarden::services::anomaly::AnomalyPolicy;
use paywarden::services::auth::LockoutPolicy;
use paywarden::services::idempotency::IdempotencyPolicy;
use paywarden::services::key_hasher::KeyHasher;
use paywarden::services::payments::PaymentPolicy;
use paywarden::store::{PoolSettings, Store};
use secrecy::SecretBox;
use tempfile::TempDir;

use super::database::{Db, TestDatabase};
use super::fixtures::{test_payment_policy, test_pepper};
use super::replica::Replica;
use crate::fault_proxy::{upstream_of, FaultProxy};

pub struct TestApp {
    pub db: TestDatabase,
    pub store: Store,
    pub dir: TempDir,
    pub pepper_b64: String,
    /// The vault's KEK and fingerprint key, shared by every replica.
    pub kek_b64: String,
    pub fingerprint_b64: String,
    pub cert_pem: Vec<u8>,
    pub main: Replica,
    pub(super) hasher: Arc<KeyHasher>,
    pub(super) lockout: LockoutPolicy,
    /// The payments policy of every replica (`public_url` is set per replica).
    pub payments: PaymentPolicy,
    /// Proxies whose `X-Forwarded-For` every replica believes (none by default).
    pub(super) trusted_proxies: Vec<ipnet::IpNet>,
    /// The connection limits and deadlines of every replica's listener.
    pub limits: ConnLimits,
    /// The database settings of every replica (deadlines, pool, free-space floor).
    pub pool: PoolSettings,
    pub idempotency: IdempotencyPolicy,
    /// PostgreSQL only: the fault-injecting proxy every replica reaches the
    /// database through (`AppOptions::through_proxy`); the test's own `store`
    /// connects directly.
    pub proxy: Option<FaultProxy>,
    /// The database URL replicas use (through the proxy, if there is one).
    pub(super) replica_url: String,
    /// The anomaly detectors' policy of every replica.
    pub anomaly: AnomalyPolicy,
}

/// How a test gateway differs from the default one.
pub struct AppOptions {
    pub lockout: LockoutPolicy,
    pub payments: PaymentPolicy,
    /// Proxies whose `X-Forwarded-For` is believed (a gateway behind a load
    /// balancer).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The listener's limits and deadlines.
    pub limits: ConnLimits,
    /// The replicas' database settings.
    pub pool: PoolSettings,
    pub idempotency: IdempotencyPolicy,
    /// Replicas reach PostgreSQL through a [`FaultProxy`] (SQLite: ignored).
    pub through_proxy: bool,
    /// The anomaly detectors' thresholds and responses.
    pub anomaly: AnomalyPolicy,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            lockout: LockoutPolicy::default(),
            payments: test_payment_policy(),
            trusted_proxies: Vec::new(),
            limits: ConnLimits::default(),
            pool: PoolSettings {
                max_connections: 8,
                ..Default::default()
            },
            idempotency: IdempotencyPolicy::default(),
            through_proxy: false,
            anomaly: AnomalyPolicy::default(),
        }
    }
}

pub async fn spawn_app(kind: Db) -> Option<TestApp> {
    spawn_app_with(kind, LockoutPolicy::default()).await
}

pub async fn spawn_app_with(kind: Db, lockout: LockoutPolicy) -> Option<TestApp> {
    spawn_app_full(kind, lockout, test_payment_policy()).await
}

pub async fn spawn_app_with_payments(kind: Db, payments: PaymentPolicy) -> Option<TestApp> {
    spawn_app_full(kind, LockoutPolicy::default(), payments).await
}

pub async fn spawn_app_full(kind: Db, lockout: LockoutPolicy, payments: PaymentPolicy) -> Option<TestApp> {
    spawn_app_with_options(
        kind,
        AppOptions {
            lockout,
            payments,
            ..AppOptions::default()
        },
    )
    .await
}

/// A gateway that believes `X-Forwarded-For` from `trusted_proxies`, as one
/// behind a load balancer does.
pub async fn spawn_app_behind_proxies(
    kind: Db,
    lockout: LockoutPolicy,
    payments: PaymentPolicy,
    trusted_proxies: Vec<ipnet::IpNet>,
) -> Option<TestApp> {
    spawn_app_with_options(
        kind,
        AppOptions {
            lockout,
            payments,
            trusted_proxies,
            ..AppOptions::default()
        },
    )
    .await
}

/// A gateway whose listener has its own limits (e.g. short deadlines).
pub async fn spawn_app_with_limits(kind: Db, limits: ConnLimits) -> Option<TestApp> {
    spawn_app_with_options(
        kind,
        AppOptions {
            limits,
            ..AppOptions::default()
        },
    )
    .await
}

/// A gateway as `options` say.
pub async fn spawn_app_with_options(kind: Db, options: AppOptions) -> Option<TestApp> {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::create(kind, &dir).await?;
    let store = Store::open(
        &db.url,
        &PoolSettings {
            max_connections: 8,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (pepper_b64, pepper) = test_pepper();
    let (kek_b64, _) = test_pepper();
    let (fingerprint_b64, _) = test_pepper();
    let (cert, _) = tls::ensure_dev_certificate(dir.path()).unwrap();
    let cert_pem = std::fs::read(&cert).unwrap();
    let hasher = Arc::new(KeyHasher::new(SecretBox::new(Box::new(pepper))));
    let proxy = match (kind, options.through_proxy) {
        (Db::Postgres, true) => Some(FaultProxy::start(upstream_of(&db.url).await).await),
        _ => None,
    };
    let replica_url = proxy
        .as_ref()
        .map_or_else(|| db.url.clone(), |p| p.url_through(&db.url));
    let mut app = TestApp {
        db,
        store,
        dir,
        pepper_b64,
        kek_b64,
        fingerprint_b64,
        cert_pem,
        main: Replica {
            base: String::new(),
            operator: String::new(),
            client: reqwest::Client::new(),
            shutdown: None,
            server: None,
        },
        hasher,
        lockout: options.lockout,
        payments: options.payments,
        trusted_proxies: options.trusted_proxies,
        limits: options.limits,
        pool: options.pool,
        idempotency: options.idempotency,
        proxy,
        replica_url,
        anomaly: options.anomaly,
    };
    app.main = app.spawn_replica().await;
    Some(app)
}

impl TestApp {
    /// Runs raw SQL against the test database (used to simulate tampering).
    pub async fn sql(&self, statement: &str) {
        sqlx::query(statement).execute(self.store.reader()).await.unwrap();
    }

    pub fn data_path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub async fn stop(mut self) {
        self.main.stop().await;
        self.store.close().await;
        self.db.drop_schema().await;
    }
}
