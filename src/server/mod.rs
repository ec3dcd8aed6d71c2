//! The gateway process: resolving configuration into what the server needs,
//! wiring services together, and running the listener until shutdown.

pub mod capacity;
pub mod config;
pub mod database;
pub mod deadlines;
pub mod dev;
pub mod fd_limit;
pub mod linger;
pub mod listener;
pub mod secrets;
pub mod telemetry;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ipnet::IpNet;
use tokio::task::JoinHandle;

use crate::api::{self, AppServices, AppState};
use crate::connectors::Connectors;
use crate::domain::time::parse_duration;
use crate::services::audit_writer::AuditWriter;
use crate::services::auth::{Authenticator, LockoutPolicy};
use crate::services::idempotency::{self, Idempotency, IdempotencyPolicy, RequestMacKey};
use crate::services::key_hasher::KeyHasher;
use crate::services::keys::KeyPolicy;
use crate::services::payments::{PaymentPolicy, Payments};
use crate::services::rate_limit::{ThrottleLog, Tokenization, TokenizationPolicy, THROTTLE_AUDIT_WINDOW};
use crate::services::tokens::Vault;
use crate::store::{PoolSettings, Store};
use crate::vault::{CvcLimits, CvcStore, Fingerprinter, Kek, KekVersion, StaticKeyring};
use crate::webhooks::delivery::DeliveryWorker;
use crate::webhooks::settings::{self as webhook_settings, RetrySchedule, WebhookSettings};

use crate::secret_files::DevSecrets;
use config::Config;
use listener::ConnLimits;
use secrets::Pepper;

/// Why the gateway refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("refusing to start: missing required configuration:\n{}\nSet them in paywarden.toml or the environment, or run with --dev for a local development setup.", .0.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Missing(Vec<String>),
    #[error("refusing to start: {0}")]
    Invalid(String),
}

/// Everything `serve` needs, resolved and checked.
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// `None` only when `plain_http` is set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub pepper: Pepper,
    pub vault: Arc<Vault>,
    pub key_policy: KeyPolicy,
    pub lockout: LockoutPolicy,
    pub idempotency: IdempotencyPolicy,
    /// `public_url` is empty when not configured: `serve` fills in the
    /// listening address.
    pub payments: PaymentPolicy,
    pub limits: ConnLimits,
    /// How long queued audit entries and background work may take after
    /// the listener stopped (`limits.shutdown_drain_secs`).
    pub shutdown_drain: Duration,
    pub body_limit: usize,
    pub trusted_proxies: Vec<IpNet>,
    pub pool: PoolSettings,
    pub webhooks: WebhookSettings,
    pub rate_limits: TokenizationPolicy,
    pub dev: bool,
}

impl Settings {
    /// Resolves `config`. In `dev` mode, missing TLS material and secrets are
    /// generated under the data dir; otherwise every missing item is named.
    pub fn resolve(config: &Config, dev: bool) -> Result<Self, StartupError> {
        let mut missing = Vec::new();
        if dev && !config.listen.ip().is_loopback() {
            return Err(StartupError::Invalid(
                "--dev uses generated development secrets and may only listen on a loopback address".into(),
            ));
        }
        let tls = if config.plain_http {
            None
        } else {
            match (&config.tls.cert_file, &config.tls.key_file, dev) {
                (Some(cert), Some(key), _) => Some((cert.clone(), key.clone())),
                (None, None, true) => Some(
                    tls::ensure_dev_certificate(&config.data_dir).map_err(|e| StartupError::Invalid(e.to_string()))?,
                ),
                (cert, key, _) => {
                    if cert.is_none() {
                        missing.push("tls.cert_file (PAYWARDEN_TLS__CERT_FILE): the PEM certificate chain".to_owned());
                    }
                    if key.is_none() {
                        missing.push("tls.key_file (PAYWARDEN_TLS__KEY_FILE): the PEM private key".to_owned());
                    }
                    None
                }
            }
        };
        let pepper = match secrets::configured_pepper(config, dev).map_err(|e| StartupError::Invalid(e.to_string()))? {
            Some(p) => Some(p),
            None if dev => {
                Some(secrets::ensure_dev_pepper(&config.data_dir).map_err(|e| StartupError::Invalid(e.to_string()))?)
            }
            None => {
                missing.push(
                    "secrets.api_key_pepper_file or secrets.api_key_pepper (PAYWARDEN_SECRETS__API_KEY_PEPPER_FILE / \
                     PAYWARDEN_SECRETS__API_KEY_PEPPER): 32 random bytes, base64 (`paywarden secrets generate`)"
                        .to_owned(),
                );
                None
            }
        };
        let kek = vault_key(
            config.vault.kek.as_ref(),
            config.vault.kek_file.as_deref(),
            "vault.kek",
            "kek-v1",
            config,
            dev,
        )?;
        let fingerprint_key = vault_key(
            config.vault.fingerprint_key.as_ref(),
            config.vault.fingerprint_key_file.as_deref(),
            "vault.fingerprint_key",
            "fingerprint_key",
            config,
            dev,
        )?;
        if kek.is_none() {
            missing.push(
                "vault.kek_file or vault.kek (PAYWARDEN_VAULT__KEK_FILE / PAYWARDEN_VAULT__KEK): the key-encryption key, \
                 32 random bytes, base64"
                    .to_owned(),
            );
        }
        if fingerprint_key.is_none() {
            missing.push(
                "vault.fingerprint_key_file or vault.fingerprint_key (PAYWARDEN_VAULT__FINGERPRINT_KEY_FILE): \
                 32 random bytes, base64"
                    .to_owned(),
            );
        }
        if !missing.is_empty() {
            return Err(StartupError::Missing(missing));
        }
        let (Some(kek), Some(fingerprint_key)) = (kek, fingerprint_key) else {
            return Err(StartupError::Invalid("vault key material could not be loaded".into()));
        };
        let vault = Arc::new(build_vault(config, kek, fingerprint_key, dev)?);
        let (Some(pepper), tls) = (pepper, tls) else {
            return Err(StartupError::Invalid("secret material could not be loaded".into()));
        };
        let database_url = config.database_url();
        if !dev {
            database::check_transport(&database_url).map_err(StartupError::Invalid)?;
        }
        let tls = match tls {
            Some((cert, key)) => Some(
                tls::server_config(&cert, &key, DevSecrets::new(dev, &config.data_dir))
                    .map_err(|e| StartupError::Invalid(e.to_string()))?,
            ),
            None => None,
        };
        Ok(Settings {
            listen: config.listen,
            data_dir: config.data_dir.clone(),
            database_url,
            tls,
            pepper,
            vault,
            key_policy: key_policy(config)?,
            lockout: lockout_policy(config)?,
            idempotency: idempotency_policy(config)?,
            payments: payment_policy(config)?,
            limits: conn_limits(&config.limits),
            shutdown_drain: Duration::from_secs(config.limits.shutdown_drain_secs),
            body_limit: config.limits.body_limit_bytes,
            trusted_proxies: config.trusted_proxies.clone(),
            pool: pool_settings(&config.database)?,
            webhooks: webhooks(config, dev)?,
            rate_limits: config.rate_limits.tokenization(),
            dev,
        })
    }
}

/// The database settings; every timeout and deadline at least 100 ms.
pub fn pool_settings(db: &config::DatabaseConfig) -> Result<PoolSettings, StartupError> {
    let duration = |name: &str, value: &str| {
        let d = parse_duration(value).map_err(|e| StartupError::Invalid(format!("database.{name}: {e}")))?;
        if d < Duration::from_millis(100) {
            return Err(StartupError::Invalid(format!("database.{name} must be at least 100ms")));
        }
        Ok(d)
    };
    Ok(PoolSettings {
        max_connections: db.max_connections.max(2),
        acquire_timeout: duration("acquire_timeout", &db.acquire_timeout)?,
        connect_timeout: duration("connect_timeout", &db.connect_timeout)?,
        statement_timeout: duration("statement_timeout", &db.statement_timeout)?,
        write_deadline: duration("write_deadline", &db.write_deadline)?,
        read_deadline: duration("read_deadline", &db.read_deadline)?,
        min_free_bytes: db.min_free_space_mb.saturating_mul(1024 * 1024),
        sqlite_max_pages: None,
    })
}

/// The listener's limits; every deadline at least 1 s.
pub fn conn_limits(limits: &config::LimitsConfig) -> ConnLimits {
    let secs = |n: u64| Duration::from_secs(n.max(1));
    ConnLimits {
        max_connections: limits.max_connections.max(1),
        tls_handshake_timeout: secs(limits.tls_handshake_timeout_secs),
        first_request_timeout: secs(limits.first_request_timeout_secs),
        header_read_timeout: secs(limits.header_read_timeout_secs),
        keep_alive_timeout: secs(limits.keep_alive_timeout_secs),
        body_read_timeout: secs(limits.body_read_timeout_secs),
        http2_keep_alive_interval: secs(limits.http2_keep_alive_interval_secs),
        http2_keep_alive_timeout: secs(limits.http2_keep_alive_timeout_secs),
        shutdown_grace: Duration::from_secs(limits.shutdown_grace_secs),
    }
}

/// A configured 32-byte vault secret, or in dev mode the generated one.
fn vault_key(
    inline: Option<&secrecy::SecretString>,
    file: Option<&std::path::Path>,
    name: &str,
    dev_file: &str,
    config: &Config,
    dev: bool,
) -> Result<Option<secrecy::SecretBox<[u8; 32]>>, StartupError> {
    let invalid = |e: secrets::SecretError| StartupError::Invalid(e.to_string());
    match secrets::configured_key(inline, file, name, DevSecrets::new(dev, &config.data_dir)).map_err(invalid)? {
        Some(k) => Ok(Some(k)),
        None if dev => secrets::ensure_dev_key(&config.data_dir, dev_file)
            .map(Some)
            .map_err(invalid),
        None => Ok(None),
    }
}

/// The configured KEKs: the current one first, then earlier versions still
/// needed to read data keys not yet re-wrapped (development secrets among
/// them only when `dev`).
pub fn kek_entries(
    config: &Config,
    current: secrecy::SecretBox<[u8; 32]>,
    dev: bool,
) -> Result<Vec<(KekVersion, Kek)>, StartupError> {
    let mut keys = vec![(KekVersion::new(config.vault.kek_version), Kek::new(current))];
    for previous in &config.vault.previous_kek_files {
        let k = secrets::read_pepper_file(
            &previous.file,
            "vault.previous_kek_files",
            DevSecrets::new(dev, &config.data_dir),
        )
        .map_err(|e| StartupError::Invalid(e.to_string()))?;
        keys.push((KekVersion::new(previous.version), Kek::new(k)));
    }
    Ok(keys)
}

/// The current KEK from configuration (or, in dev mode, the generated one).
pub fn current_kek(config: &Config, dev: bool) -> Result<Option<secrecy::SecretBox<[u8; 32]>>, StartupError> {
    vault_key(
        config.vault.kek.as_ref(),
        config.vault.kek_file.as_deref(),
        "vault.kek",
        "kek-v1",
        config,
        dev,
    )
}

/// The keyring (current KEK plus earlier ones), fingerprinter and CVC holder.
fn build_vault(
    config: &Config,
    kek: secrecy::SecretBox<[u8; 32]>,
    fingerprint_key: secrecy::SecretBox<[u8; 32]>,
    dev: bool,
) -> Result<Vault, StartupError> {
    let current = KekVersion::new(config.vault.kek_version);
    let keyring = StaticKeyring::new(current, kek_entries(config, kek, dev)?)
        .map_err(|e| StartupError::Invalid(format!("vault keyring: {e}")))?;
    Ok(Vault::new(
        Arc::new(keyring),
        Fingerprinter::new(fingerprint_key),
        cvc_store(config)?,
    ))
}

/// The CVC holder: its TTL, capacity and shares (`vault.cvc_*`).
fn cvc_store(config: &Config) -> Result<CvcStore, StartupError> {
    let v = &config.vault;
    let ttl = parse_duration(&v.cvc_ttl).map_err(|e| StartupError::Invalid(format!("vault.cvc_ttl: {e}")))?;
    if ttl > crate::vault::cvc::MAX_TTL {
        return Err(StartupError::Invalid("vault.cvc_ttl may be at most 1h".into()));
    }
    let limits = CvcLimits::new(v.cvc_capacity, v.cvc_per_merchant, v.cvc_per_publishable_key)
        .map_err(|e| StartupError::Invalid(format!("vault.{e}")))?;
    CvcStore::with_limits(ttl, limits).map_err(|e| StartupError::Invalid(e.to_string()))
}

/// The webhook delivery settings; outside dev mode the retry window is at
/// least 3 days and the lease outlasts an attempt by at least 10 s.
pub fn webhooks(config: &Config, dev: bool) -> Result<WebhookSettings, StartupError> {
    let w = &config.webhooks;
    let duration = |name: &str, value: &str| {
        parse_duration(value).map_err(|e| StartupError::Invalid(format!("webhooks.{name}: {e}")))
    };
    let retry = RetrySchedule {
        initial: duration("retry_initial", &w.retry_initial)?,
        max_interval: duration("retry_max_interval", &w.retry_max_interval)?,
        window: duration("retry_window", &w.retry_window)?,
    };
    let poll_interval = duration("poll_interval", &w.poll_interval)?;
    let lease = duration("lease", &w.lease)?;
    if retry.initial.is_zero() || poll_interval.is_zero() || lease.is_zero() {
        return Err(StartupError::Invalid("webhooks: durations must be positive".into()));
    }
    if !dev && retry.window < webhook_settings::MIN_RETRY_WINDOW {
        return Err(StartupError::Invalid(
            "webhooks.retry_window must be at least 3d (shorter only with --dev)".into(),
        ));
    }
    if !dev && lease < webhook_settings::MIN_LEASE {
        return Err(StartupError::Invalid(
            "webhooks.lease must be at least 15s, longer than one attempt (shorter only with --dev)".into(),
        ));
    }
    let attempt_timeout = duration("attempt_timeout", &w.attempt_timeout)?;
    if attempt_timeout.is_zero() || attempt_timeout > webhook_settings::MAX_ATTEMPT_TIMEOUT {
        return Err(StartupError::Invalid(
            "webhooks.attempt_timeout must be positive and at most 60s".into(),
        ));
    }
    if !dev && lease < attempt_timeout.saturating_add(webhook_settings::LEASE_OVER_ATTEMPT) {
        return Err(StartupError::Invalid(
            "webhooks.lease must be at least 10s longer than webhooks.attempt_timeout (shorter only with --dev)".into(),
        ));
    }
    if w.max_in_flight_per_endpoint == 0 || w.max_in_flight < w.max_in_flight_per_endpoint {
        return Err(StartupError::Invalid(
            "webhooks.max_in_flight_per_endpoint must be at least 1 and at most webhooks.max_in_flight".into(),
        ));
    }
    let ca = match &w.extra_root_ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| StartupError::Invalid(format!("webhooks.extra_root_ca_file {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let mut settings = WebhookSettings::new(dev, ca.as_deref(), retry, poll_interval, lease)
        .map_err(|e| StartupError::Invalid(e.to_string()))?;
    settings.attempt_timeout = attempt_timeout;
    settings.max_in_flight_per_endpoint = usize::try_from(w.max_in_flight_per_endpoint).unwrap_or(usize::MAX);
    settings.max_in_flight = usize::try_from(w.max_in_flight).unwrap_or(usize::MAX);
    Ok(settings)
}

pub fn key_policy(config: &Config) -> Result<KeyPolicy, StartupError> {
    let max = parse_duration(&config.keys.max_live_lifetime)
        .map_err(|e| StartupError::Invalid(format!("keys.max_live_lifetime: {e}")))?;
    Ok(KeyPolicy { max_live_lifetime: max })
}

fn lockout_policy(config: &Config) -> Result<LockoutPolicy, StartupError> {
    let window =
        parse_duration(&config.lockout.window).map_err(|e| StartupError::Invalid(format!("lockout.window: {e}")))?;
    let duration = parse_duration(&config.lockout.duration)
        .map_err(|e| StartupError::Invalid(format!("lockout.duration: {e}")))?;
    if config.lockout.threshold < 1 {
        return Err(StartupError::Invalid("lockout.threshold must be at least 1".into()));
    }
    Ok(LockoutPolicy {
        threshold: config.lockout.threshold,
        window,
        duration,
    })
}

/// Payment limits; the challenge lifetime between 1 minute and 1 day.
pub fn payment_policy(config: &Config) -> Result<PaymentPolicy, StartupError> {
    let ttl = parse_duration(&config.payments.challenge_ttl)
        .map_err(|e| StartupError::Invalid(format!("payments.challenge_ttl: {e}")))?;
    if ttl < Duration::from_secs(60) || ttl > Duration::from_secs(86_400) {
        return Err(StartupError::Invalid(
            "payments.challenge_ttl must be between 1m and 24h".into(),
        ));
    }
    if config.payments.max_amount < 1 {
        return Err(StartupError::Invalid("payments.max_amount must be positive".into()));
    }
    let public_url = match &config.payments.public_url {
        Some(u) => {
            let parsed = url::Url::parse(u)
                .map_err(|_| StartupError::Invalid("payments.public_url must be an absolute URL".into()))?;
            if parsed.scheme() != "https" && !config.plain_http {
                return Err(StartupError::Invalid("payments.public_url must be https".into()));
            }
            u.trim_end_matches('/').to_owned()
        }
        None => String::new(),
    };
    Ok(PaymentPolicy {
        max_amount: config.payments.max_amount,
        challenge_ttl: ttl,
        public_url,
        ..PaymentPolicy::default()
    })
}

/// Records live at least [`idempotency::MIN_TTL`]; the lock lasts between
/// one second and the record's lifetime.
pub fn idempotency_policy(config: &Config) -> Result<IdempotencyPolicy, StartupError> {
    let ttl =
        parse_duration(&config.idempotency.ttl).map_err(|e| StartupError::Invalid(format!("idempotency.ttl: {e}")))?;
    let lock_timeout = parse_duration(&config.idempotency.lock_timeout)
        .map_err(|e| StartupError::Invalid(format!("idempotency.lock_timeout: {e}")))?;
    if ttl < idempotency::MIN_TTL {
        return Err(StartupError::Invalid(
            "idempotency.ttl must be at least 24h: clients may retry for a day".into(),
        ));
    }
    if lock_timeout < Duration::from_secs(1) || lock_timeout > ttl {
        return Err(StartupError::Invalid(
            "idempotency.lock_timeout must be at least 1s and at most idempotency.ttl".into(),
        ));
    }
    Ok(IdempotencyPolicy { ttl, lock_timeout })
}

/// The running services behind the router.
pub struct Gateway {
    pub state: AppState,
    audit_writer: AuditWriter,
    maintenance: JoinHandle<()>,
    payment_upkeep: JoinHandle<()>,
    /// Keeps the store's health (readiness) current.
    watch: JoinHandle<()>,
    webhooks: DeliveryWorker,
}

/// What a shutdown could not finish within its drain.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Abandoned {
    /// Audit entries still queued (or being written) when the drain ended.
    pub audit_entries: usize,
    /// The database connections were still in use when the drain ended.
    pub database_connections: bool,
}

impl Abandoned {
    pub fn nothing(&self) -> bool {
        self.audit_entries == 0 && !self.database_connections
    }
}

/// What `Gateway::start` needs besides the store.
pub struct GatewayOptions {
    pub pepper: Pepper,
    pub vault: Arc<Vault>,
    pub lockout: LockoutPolicy,
    pub idempotency: IdempotencyPolicy,
    pub payments: PaymentPolicy,
    pub trusted_proxies: Vec<IpNet>,
    pub body_limit: usize,
    pub webhooks: WebhookSettings,
    /// Tokenization rate limits.
    pub rate_limits: TokenizationPolicy,
    /// The processors payments may be routed to, by name:
    /// [`Connectors::builtin`] in production; tests add doubles of
    /// third-party processors.
    pub connectors: Connectors,
}

impl Gateway {
    pub fn start(store: Store, options: GatewayOptions) -> Self {
        let (audit, audit_writer) = AuditWriter::spawn(store.clone());
        let audit_sink_for_throttles = audit.clone();
        let mac_key = RequestMacKey::derive(&options.pepper);
        let hasher = Arc::new(KeyHasher::new(options.pepper));
        let auth = Authenticator::new(store.clone(), hasher, options.lockout, audit.clone());
        let idempotency = Idempotency::new(store.clone(), Arc::clone(&options.vault), mac_key, options.idempotency);
        let payments = Payments::new(
            store.clone(),
            Arc::clone(&options.vault),
            options.connectors,
            options.payments,
        );
        let payment_upkeep = tokio::spawn(expire_challenges(payments.clone()));
        let dev_mode = options.webhooks.dev;
        let webhooks = DeliveryWorker::spawn(store.clone(), options.vault.keyring_arc(), options.webhooks);
        let state = AppState::new(AppServices {
            store,
            auth,
            audit,
            vault: options.vault,
            idempotency,
            payments,
            tokenization: Tokenization::local(&options.rate_limits),
            throttles: ThrottleLog::new(audit_sink_for_throttles, THROTTLE_AUDIT_WINDOW),
            trusted_proxies: options.trusted_proxies.into(),
            body_limit: options.body_limit,
            dev_mode,
        });
        let maintenance = tokio::spawn(maintain(state.clone()));
        let watch = tokio::spawn(state.store.clone().watch());
        Gateway {
            state,
            audit_writer,
            maintenance,
            payment_upkeep,
            watch,
            webhooks,
        }
    }

    pub fn router(&self) -> Router {
        api::router(self.state.clone())
    }

    /// Stops background work and writes every queued audit entry, within
    /// `drain`; returns what it had to abandon (e.g. entries it could not
    /// write while the database was down). Call after the listener has
    /// stopped, so no request can queue another.
    pub async fn shutdown(self, drain: Duration) -> Abandoned {
        let deadline = tokio::time::Instant::now() + drain;
        self.maintenance.abort();
        self.watch.abort();
        // Throttled requests of windows still open get their summary entry.
        let _ = tokio::time::timeout_at(deadline, self.state.throttles.flush_all()).await;
        self.payment_upkeep.abort();
        let _ = tokio::time::timeout_at(deadline, self.webhooks.shutdown()).await;
        let store = self.state.store.clone();
        drop(self.state);
        let audit_entries = self.audit_writer.shutdown(deadline).await;
        let closed = tokio::time::timeout_at(deadline, store.close()).await.is_ok();
        Abandoned {
            audit_entries,
            database_connections: !closed,
        }
    }
}

/// Periodic housekeeping: forget old authentication failures, expired CVCs,
/// expired idempotency records and idle rate-limit buckets; write the audit
/// summaries of closed throttle windows.
async fn maintain(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        state.vault.purge_expired();
        state.tokenization.forget_idle();
        state.throttles.flush().await;
        if let Err(e) = state.auth.prune().await {
            tracing::warn!(error = %e, "pruning authentication failures failed");
        }
        if let Err(e) = state.idempotency.sweep().await {
            tracing::warn!(error = %e, "deleting expired idempotency records failed");
        }
    }
}

/// Cancels payments whose 3-D Secure challenge went unanswered.
async fn expire_challenges(payments: Payments) {
    let mut tick = tokio::time::interval(payments.policy().sweep_interval);
    loop {
        tick.tick().await;
        match payments.expire_challenges().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(payments = n, "expired unanswered 3-D Secure challenges"),
            Err(e) => tracing::warn!(error = %e, "expiring 3-D Secure challenges failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ttl: &str, lock_timeout: &str) -> Result<IdempotencyPolicy, StartupError> {
        let mut config = Config::default();
        config.idempotency.ttl = ttl.into();
        config.idempotency.lock_timeout = lock_timeout.into();
        idempotency_policy(&config)
    }

    #[test]
    fn connection_limits_come_from_the_limits_section_with_every_deadline_at_least_a_second() {
        let defaults = conn_limits(&Config::default().limits);
        assert_eq!(defaults.max_connections, 4096);
        assert_eq!(defaults.tls_handshake_timeout, Duration::from_secs(10));
        assert_eq!(defaults.first_request_timeout, Duration::from_secs(10));
        assert_eq!(defaults.header_read_timeout, Duration::from_secs(10));
        assert_eq!(defaults.keep_alive_timeout, Duration::from_secs(60));
        assert_eq!(defaults.http2_keep_alive_interval, Duration::from_secs(20));
        assert_eq!(defaults.http2_keep_alive_timeout, Duration::from_secs(10));
        let limits = config::LimitsConfig {
            max_connections: 0,
            first_request_timeout_secs: 0,
            keep_alive_timeout_secs: 5,
            http2_keep_alive_interval_secs: 7,
            ..config::LimitsConfig::default()
        };
        let limits = conn_limits(&limits);
        assert_eq!(limits.max_connections, 1);
        assert_eq!(limits.first_request_timeout, Duration::from_secs(1));
        assert_eq!(limits.keep_alive_timeout, Duration::from_secs(5));
        assert_eq!(limits.http2_keep_alive_interval, Duration::from_secs(7));
    }

    #[test]
    fn the_cvc_holder_is_sized_from_configuration() {
        let defaults = cvc_store(&Config::default()).unwrap().limits();
        assert_eq!(defaults, CvcLimits::default());
        let mut config = Config::default();
        config.vault.cvc_capacity = 50_000;
        config.vault.cvc_per_merchant = Some(40_000);
        let big = cvc_store(&config).unwrap().limits();
        assert_eq!(
            (big.capacity(), big.per_merchant(), big.per_publishable_key()),
            (50_000, 40_000, 2_500)
        );
        config.vault.cvc_per_merchant = Some(50_001);
        let err = cvc_store(&config).unwrap_err().to_string();
        assert!(err.contains("vault.cvc_per_merchant"), "{err}");
        config.vault.cvc_per_merchant = None;
        config.vault.cvc_per_publishable_key = Some(0);
        let err = cvc_store(&config).unwrap_err().to_string();
        assert!(err.contains("vault.cvc_per_publishable_key"), "{err}");
    }

    #[test]
    fn idempotency_records_live_at_least_a_day() {
        let defaults = idempotency_policy(&Config::default()).unwrap();
        assert_eq!(defaults.ttl, Duration::from_secs(86_400));
        assert_eq!(defaults.lock_timeout, Duration::from_secs(60));
        assert_eq!(policy("7d", "5m").unwrap().ttl, Duration::from_secs(7 * 86_400));
        for (ttl, lock) in [
            ("23h", "60s"),
            ("1h", "60s"),
            ("24h", "0s"),
            ("24h", "25h"),
            ("soon", "60s"),
        ] {
            assert!(policy(ttl, lock).is_err(), "{ttl} {lock}");
        }
        let err = policy("12h", "60s").unwrap_err().to_string();
        assert!(err.contains("idempotency.ttl"), "{err}");
    }

    #[test]
    fn webhook_attempts_are_timed_capped_and_end_before_their_lease() {
        let defaults = webhooks(&Config::default(), false).unwrap();
        assert_eq!(defaults.attempt_timeout, Duration::from_secs(5));
        assert_eq!(defaults.attempt_deadline(), Duration::from_secs(5));
        assert_eq!((defaults.max_in_flight_per_endpoint, defaults.max_in_flight), (8, 256));
        let mut config = Config::default();
        config.webhooks.attempt_timeout = "30s".into();
        config.webhooks.max_in_flight_per_endpoint = 2;
        let settings = webhooks(&config, false).unwrap();
        assert_eq!(settings.attempt_timeout, Duration::from_secs(30));
        assert_eq!(settings.max_in_flight_per_endpoint, 2);
        let refused = |edit: &dyn Fn(&mut Config), dev: bool| {
            let mut config = Config::default();
            edit(&mut config);
            webhooks(&config, dev).unwrap_err().to_string()
        };
        let err = refused(&|c| c.webhooks.attempt_timeout = "61s".into(), true);
        assert!(err.contains("webhooks.attempt_timeout"), "{err}");
        let err = refused(&|c| c.webhooks.attempt_timeout = "0s".into(), true);
        assert!(err.contains("positive"), "{err}");
        // The lease outlasts an attempt by 10 s outside dev mode.
        let err = refused(&|c| c.webhooks.attempt_timeout = "55s".into(), false);
        assert!(err.contains("webhooks.lease"), "{err}");
        let err = refused(&|c| c.webhooks.max_in_flight_per_endpoint = 0, false);
        assert!(err.contains("max_in_flight_per_endpoint"), "{err}");
        let err = refused(&|c| c.webhooks.max_in_flight = 4, false);
        assert!(err.contains("webhooks.max_in_flight"), "{err}");
        // In dev mode a short lease is allowed; the attempt still ends first.
        let mut config = Config::default();
        config.webhooks.lease = "3s".into();
        let dev = webhooks(&config, true).unwrap();
        assert!(dev.attempt_deadline() < Duration::from_secs(3));
    }
}
