//! Test support: `spawn_app()` starts the real gateway (real TLS listener on
//! 127.0.0.1:0, real database) for one test, on SQLite or PostgreSQL. Each
//! test gets its own SQLite file or its own PostgreSQL schema, so tests run in
//! parallel. PostgreSQL comes from `TEST_POSTGRES_URL` (default: the local
//! server); when it cannot be reached the PostgreSQL variants print a loud
//! SKIPPED line, or fail when `REQUIRE_POSTGRES=1` (as CI sets).

use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use paywarden::connectors::{Connector, Connectors};
use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::audit::AuditRecord;
use paywarden::domain::ids::MerchantId;
use paywarden::domain::merchant::MerchantName;
use paywarden::domain::permission::Permission;
use paywarden::domain::restrictions::KeyRestrictions;
use paywarden::secret_files::DevSecrets;
use paywarden::server::listener::{self, ConnLimits};
use paywarden::server::{tls, Gateway, GatewayOptions};
use paywarden::services::actor::Actor;
use paywarden::services::api_keys::{self, IssuedKey, KeyPolicy, NewKey};
use paywarden::services::auth::LockoutPolicy;
use paywarden::services::idempotency::IdempotencyPolicy;
use paywarden::services::key_hasher::KeyHasher;
use paywarden::services::merchants;
use paywarden::services::payments::PaymentPolicy;
use paywarden::services::rate_limit::TokenizationPolicy;
use paywarden::store::{self, PoolSettings, Store};
use paywarden::vault::Vault;
use paywarden::vault::{CvcStore, Fingerprinter, Kek, KekVersion, StaticKeyring};
use paywarden::webhooks::settings::{RetrySchedule, WebhookSettings};
use secrecy::SecretBox;
use serde_json::Value;
use sqlx::Connection;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::fault_proxy::{upstream_of, FaultProxy};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A database for one test: a SQLite file in a temp dir, or a fresh schema.
pub struct TestDatabase {
    pub url: String,
    pg_schema: Option<String>,
}

impl TestDatabase {
    pub async fn create(kind: Db, dir: &TempDir) -> Option<Self> {
        match kind {
            Db::Sqlite => Some(Self {
                url: format!("sqlite://{}", dir.path().join("paywarden.db").display()),

                pg_schema: None,
            }),
            Db::Postgres => {
                let base = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
                let schema = format!(
                    "pwt_{}",
                    paywarden::domain::random::base62_string(12).ok()?.to_lowercase()
                );
                match sqlx::PgConnection::connect(&base).await {
                    Ok(mut conn) => {
                        sqlx::query(&format!("CREATE SCHEMA {schema}"))
                            .execute(&mut conn)
                            .await
                            .ok()?;
                        let _ = conn.close().await;
                    }
                    Err(e) => {
                        if std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                            panic!("PostgreSQL required (REQUIRE_POSTGRES=1) but unreachable at {base}: {e}");
                        }
                        eprintln!("\n!!!! SKIPPED: PostgreSQL variant of this test: cannot reach {base} ({e}). Set TEST_POSTGRES_URL. !!!!\n");
                        return None;
                    }
                }
                let sep = if base.contains('?') { '&' } else { '?' };
                Some(Self {
                    url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
                    pg_schema: Some(schema),
                })
            }
        }
    }

    pub async fn drop_schema(&self) {
        if let Some(schema) = &self.pg_schema {
            let base = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
            if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
        }
    }
}

/// One running gateway (a "replica") with an HTTPS client that trusts its
/// certificate (verification on, never disabled).
pub struct Replica {
    pub base: String,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Replica {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str, key: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(key).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = h.await;
        }
    }
}

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
    hasher: Arc<KeyHasher>,
    lockout: LockoutPolicy,
    /// The payments policy of every replica (`public_url` is set per replica).
    pub payments: PaymentPolicy,
    /// Proxies whose `X-Forwarded-For` every replica believes (none by default).
    trusted_proxies: Vec<ipnet::IpNet>,
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
    replica_url: String,
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
        }
    }
}

pub fn test_pepper() -> (String, [u8; 32]) {
    let bytes: [u8; 32] = paywarden::domain::random::bytes().unwrap();
    (base64::engine::general_purpose::STANDARD.encode(bytes), bytes)
}

pub async fn spawn_app(kind: Db) -> Option<TestApp> {
    spawn_app_with(kind, LockoutPolicy::default()).await
}

pub async fn spawn_app_with(kind: Db, lockout: LockoutPolicy) -> Option<TestApp> {
    spawn_app_full(kind, lockout, test_payment_policy()).await
}

/// Payments as in production, but expired challenges are found within 100 ms.
pub fn test_payment_policy() -> PaymentPolicy {
    PaymentPolicy {
        sweep_interval: Duration::from_millis(100),
        ..PaymentPolicy::default()
    }
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
    };
    app.main = app.spawn_replica().await;
    Some(app)
}

impl TestApp {
    /// Another gateway on the same database and pepper, as a second replica.
    pub async fn spawn_replica(&self) -> Replica {
        self.spawn_replica_with(self.vault()).await
    }

    /// A replica with its own vault keys (e.g. during a KEK rotation).
    pub async fn spawn_replica_with(&self, vault: Vault) -> Replica {
        self.spawn_replica_sharing(Arc::new(vault)).await
    }

    /// A replica using `vault`, which the caller keeps (e.g. to look into
    /// its CVC holder, as a payment does).
    pub async fn spawn_replica_sharing(&self, vault: Arc<Vault>) -> Replica {
        self.start_replica(vault, Connectors::builtin(), TokenizationPolicy::default())
            .await
    }

    /// A replica with its own tokenization limits.
    pub async fn spawn_replica_with_rate_limits(&self, rate_limits: TokenizationPolicy) -> Replica {
        self.start_replica(Arc::new(self.vault()), Connectors::builtin(), rate_limits)
            .await
    }

    /// Another replica that can also route payments to `processor` (a
    /// double of a third-party processor, e.g. `processor_double`), for the
    /// merchants whose `connector` names it.
    pub async fn spawn_replica_with_processor(&self, processor: Arc<dyn Connector>) -> Replica {
        self.start_replica(
            Arc::new(self.vault()),
            Connectors::builtin().with(processor),
            TokenizationPolicy::default(),
        )
        .await
    }

    async fn start_replica(
        &self,
        vault: Arc<Vault>,
        connectors: Connectors,
        rate_limits: TokenizationPolicy,
    ) -> Replica {
        let store = Store::open(&self.replica_url, &self.pool).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("https://127.0.0.1:{}", addr.port());
        let pepper: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(&self.pepper_b64)
            .unwrap()
            .try_into()
            .unwrap();
        let gateway = Gateway::start(
            store,
            GatewayOptions {
                pepper: SecretBox::new(Box::new(pepper)),
                vault,
                lockout: self.lockout.clone(),
                idempotency: self.idempotency.clone(),
                payments: PaymentPolicy {
                    public_url: base.clone(),
                    ..self.payments.clone()
                },
                trusted_proxies: self.trusted_proxies.clone(),
                body_limit: 64 * 1024,
                webhooks: webhook_settings(),
                rate_limits,
                connectors,
            },
        );
        let (cert, key) = tls::dev_paths(self.dir.path());
        let tls = tls::server_config(&cert, &key, DevSecrets::Allowed).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let router = gateway.router();
        let limits = self.limits.clone();
        let server = tokio::spawn(async move {
            listener::serve(listener, Some(tls), router, limits, async {
                let _ = rx.await;
            })
            .await;
            gateway.shutdown(Duration::from_secs(5)).await;
        });
        Replica {
            base,
            client: client_trusting(&self.cert_pem),
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// A vault over this app's keys (each replica holds its own CVCs in memory).
    pub fn vault(&self) -> Vault {
        self.vault_with(StaticKeyring::single(KekVersion::new(1), kek(&self.kek_b64)))
    }

    /// A vault with this app's fingerprint key and the given KEKs.
    pub fn vault_with(&self, keyring: StaticKeyring) -> Vault {
        self.vault_holding(keyring, CvcStore::new(Duration::from_secs(600), 10_000).unwrap())
    }

    /// A vault with this app's keys and the given CVC holder.
    pub fn vault_with_cvcs(&self, cvcs: CvcStore) -> Vault {
        self.vault_holding(StaticKeyring::single(KekVersion::new(1), kek(&self.kek_b64)), cvcs)
    }

    fn vault_holding(&self, keyring: StaticKeyring, cvcs: CvcStore) -> Vault {
        let fingerprint: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(&self.fingerprint_b64)
            .unwrap()
            .try_into()
            .unwrap();
        Vault::new(
            Arc::new(keyring),
            Fingerprinter::new(SecretBox::new(Box::new(fingerprint))),
            cvcs,
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.main.base, path)
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.main.client
    }

    pub async fn get(&self, path: &str, key: &str) -> reqwest::Response {
        self.client().get(self.url(path)).bearer_auth(key).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> reqwest::Response {
        self.client()
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn merchant(&self, name: &str) -> MerchantId {
        merchants::create(&self.store, &operator(), MerchantName::parse(name).unwrap())
            .await
            .unwrap()
            .id
    }

    pub async fn issue(&self, new: NewKey) -> IssuedKey {
        api_keys::issue(&self.store, &self.hasher, &KeyPolicy::default(), &operator(), new)
            .await
            .unwrap()
    }

    pub async fn key(&self, merchant: &MerchantId, kind: KeyKind, permissions: &[Permission]) -> IssuedKey {
        self.issue(new_key(merchant, kind, permissions)).await
    }

    /// A merchant with a test secret key: `(merchant, "sk_test_…")`.
    pub async fn merchant_with_secret(&self, name: &str) -> (MerchantId, String) {
        let m = self.merchant(name).await;
        let k = self.key(&m, KeyKind::Secret, &[]).await;
        (m, k.secret.expose().to_owned())
    }

    pub async fn audit(&self) -> Vec<AuditRecord> {
        store::audit::page(self.store.reader(), 0, 1_000_000).await.unwrap()
    }

    /// Waits (up to 10 s) until the audit trail satisfies `pred`.
    pub async fn wait_for_audit(&self, pred: impl Fn(&[AuditRecord]) -> bool) -> Vec<AuditRecord> {
        for _ in 0..200 {
            let records = self.audit().await;
            if pred(&records) {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let records = self.audit().await;
        panic!(
            "audit trail never satisfied the condition; it holds {} entries: {:#?}",
            records.len(),
            records
                .iter()
                .map(|r| (&r.event.action, &r.event.resource, &r.event.reason))
                .collect::<Vec<_>>()
        );
    }

    /// Runs the real `paywarden` binary against this test's database.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_env(args, &[])
    }

    /// `cli` with more (or other) configuration in environment variables,
    /// e.g. `PAYWARDEN_VAULT__PREVIOUS_KEK_FILES`.
    pub fn cli_env(&self, args: &[&str], env: &[(&str, String)]) -> Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_paywarden"));
        cmd.args(args)
            .arg("--database-url")
            .arg(&self.db.url)
            .arg("--data-dir")
            .arg(self.dir.path())
            .env("PAYWARDEN_SECRETS__API_KEY_PEPPER", &self.pepper_b64)
            .env("PAYWARDEN_VAULT__KEK", &self.kek_b64)
            .env("PAYWARDEN_VAULT__FINGERPRINT_KEY", &self.fingerprint_b64)
            .env("PAYWARDEN_LOG", "warn")
            .current_dir(self.dir.path());
        for (name, value) in env {
            cmd.env(name, value);
        }
        cmd.output().unwrap()
    }

    /// `cli` with `--json`, parsed; panics with stderr if the command failed.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        self.cli_json_env(args, &[])
    }

    /// `cli_env` with `--json`, parsed; panics with stderr if the command failed.
    pub fn cli_json_env(&self, args: &[&str], env: &[(&str, String)]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.cli_env(&all, env);
        assert!(
            out.status.success(),
            "paywarden {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }

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

/// A CA of the tests' own that signs the certificates of webhook receivers
/// (`receiver.rs`); every test gateway trusts it through its webhook
/// settings, exactly as an operator's `webhooks.extra_root_ca_file` does.
pub struct TestCa {
    pub ca_pem: String,
    /// A leaf for `localhost` and `127.0.0.1`, signed by the CA.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The CA certificate as a file (for the real binary's configuration).
    pub ca_file: PathBuf,
}

pub fn test_ca() -> &'static TestCa {
    static CA: std::sync::OnceLock<TestCa> = std::sync::OnceLock::new();
    CA.get_or_init(|| {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "paywarden webhook test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let dir = std::env::temp_dir().join(format!(
            "paywarden-webhook-ca-{}-{}",
            std::process::id(),
            paywarden::domain::random::base62_string(8).unwrap()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert_file, key_file, ca_file) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("ca.pem"));
        std::fs::write(&cert_file, leaf.pem()).unwrap();
        write_secret_file(&key_file, &leaf_key.serialize_pem());
        std::fs::write(&ca_file, ca.pem()).unwrap();
        TestCa {
            ca_pem: ca.pem(),
            cert_file,
            key_file,
            ca_file,
        }
    })
}

/// The retry schedule of test gateways: 100 ms doubling to 400 ms, for 4 s.
pub const TEST_RETRY: RetrySchedule = RetrySchedule {
    initial: Duration::from_millis(100),
    max_interval: Duration::from_millis(400),
    window: Duration::from_secs(4),
};

/// Webhook settings of test gateways: the test CA trusted (verification on),
/// a fast retry schedule and poll interval, attempts cut after 2 s.
pub fn webhook_settings() -> WebhookSettings {
    let mut settings = WebhookSettings::new(
        false,
        Some(test_ca().ca_pem.as_bytes()),
        TEST_RETRY,
        Duration::from_millis(100),
        Duration::from_secs(5),
    )
    .unwrap();
    settings.attempt_timeout = Duration::from_secs(2);
    settings.payloads = paywarden::api::views::webhook_payloads();
    settings
}

/// A KEK from base64.
pub fn kek(b64: &str) -> Kek {
    let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
        .try_into()
        .unwrap();
    Kek::new(SecretBox::new(Box::new(bytes)))
}

/// Writes a secret file as an operator must: owner-only (0600), which the
/// gateway and CLI demand of every secret file they read.
pub fn write_secret_file(path: impl AsRef<std::path::Path>, contents: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub fn operator() -> Actor {
    Actor::Operator { command: "test".into() }
}

pub fn new_key(merchant: &MerchantId, kind: KeyKind, permissions: &[Permission]) -> NewKey {
    NewKey {
        merchant: merchant.clone(),
        kind,
        mode: Mode::Test,
        permissions: permissions.to_vec(),
        restrictions: KeyRestrictions::default(),
        expires_in: None,
        description: None,
    }
}

pub fn client_trusting(cert_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem).unwrap())
        .user_agent("paywarden-tests")
        .build()
        .unwrap()
}

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
