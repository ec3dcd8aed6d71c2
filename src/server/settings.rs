//! What `serve` needs, resolved from the configuration and checked: the
//! listener, data dir, database and connection limits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

use crate::domain::time::parse_duration;
use crate::services::api_keys::KeyPolicy;
use crate::services::auth::LockoutPolicy;
use crate::services::idempotency::IdempotencyPolicy;
use crate::services::payments::PaymentPolicy;
use crate::services::rate_limit::RateLimitPolicy;
use crate::store::PoolSettings;
use crate::vault::Vault;
use crate::webhooks::settings::WebhookSettings;

use super::config::{self, Config};
use super::listener::ConnLimits;
use super::policies::*;
use super::rate_limit_config::RedisSettings;
use super::secrets::{self, Pepper};
use super::{database, tls};
use crate::secret_files::DevSecrets;

use super::StartupError;

/// Everything `serve` needs, resolved and checked.
pub struct Settings {
    pub listen: SocketAddr,
    /// The operator listener's address, if any (see [`operator_listen`]).
    pub operator_listen: Option<SocketAddr>,
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
    pub rate_limits: RateLimitPolicy,
    /// The shared rate-limit store (`redis.url`), if configured.
    pub redis: Option<RedisSettings>,
    /// Where merchants' Stripe connections reach Stripe.
    pub stripe: crate::connectors::StripeSettings,
    /// Where merchants' PayPal connections reach PayPal.
    pub paypal: crate::connectors::PaypalSettings,
    /// The anomaly detectors' thresholds and responses (`[anomaly]`).
    pub anomaly: crate::services::anomaly::AnomalyPolicy,
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
            operator_listen: operator_listen(config, dev)?,
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
            rate_limits: config.rate_limits.policy(),
            redis: config.redis.settings(dev)?,
            stripe: super::connector_settings::stripe_settings(&config.connectors)?,
            paypal: super::connector_settings::paypal_settings(&config.connectors)?,
            anomaly: config.anomaly.policy().map_err(StartupError::Invalid)?,
            dev,
        })
    }
}

/// The operator listener: as configured, or in `--dev` a free port on the
/// public listener's loopback address. Never the public address; in `--dev`
/// only on loopback.
pub fn operator_listen(config: &Config, dev: bool) -> Result<Option<SocketAddr>, StartupError> {
    let addr = match (config.operator_listen, dev) {
        (Some(addr), _) => addr,
        (None, true) => SocketAddr::new(config.listen.ip(), 0),
        (None, false) => return Ok(None),
    };
    let public = config.listen;
    let same_port = addr.port() != 0 && addr.port() == public.port();
    let overlapping = addr.ip() == public.ip() || addr.ip().is_unspecified() || public.ip().is_unspecified();
    if same_port && overlapping {
        return Err(StartupError::Invalid(format!(
            "operator_listen ({addr}) must not be the public listen address ({public}): metrics are for operators only"
        )));
    }
    if dev && !addr.ip().is_loopback() {
        return Err(StartupError::Invalid(
            "--dev may only serve the operator listener on a loopback address".into(),
        ));
    }
    Ok(Some(addr))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str, operator: Option<&str>) -> Config {
        Config {
            listen: listen.parse().unwrap(),
            operator_listen: operator.map(|o| o.parse().unwrap()),
            ..Config::default()
        }
    }

    #[test]
    fn the_operator_listener_is_never_the_public_address() {
        for (listen, operator) in [
            ("127.0.0.1:8443", "127.0.0.1:8443"),
            ("0.0.0.0:8443", "127.0.0.1:8443"),
            ("127.0.0.1:8443", "0.0.0.0:8443"),
        ] {
            assert!(
                operator_listen(&config(listen, Some(operator)), false).is_err(),
                "{listen} {operator}"
            );
        }
        let ok = operator_listen(&config("0.0.0.0:8443", Some("127.0.0.1:9443")), false).unwrap();
        assert_eq!(ok, Some("127.0.0.1:9443".parse().unwrap()));
    }

    #[test]
    fn off_by_default_and_a_free_loopback_port_in_dev() {
        assert_eq!(operator_listen(&config("127.0.0.1:8443", None), false).unwrap(), None);
        let dev = operator_listen(&config("127.0.0.1:8443", None), true).unwrap().unwrap();
        assert!(dev.ip().is_loopback());
        assert_eq!(dev.port(), 0);
        assert!(operator_listen(&config("127.0.0.1:8443", Some("10.0.0.5:9443")), true).is_err());
    }
}
