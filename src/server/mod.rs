//! The gateway process: resolving configuration into what the server needs,
//! wiring services together, and running the listener until shutdown.

pub mod config;
pub mod dev;
pub mod files;
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

use crate::api::{self, AppState};
use crate::domain::time::parse_duration;
use crate::services::audit_writer::AuditWriter;
use crate::services::auth::{Authenticator, LockoutPolicy};
use crate::services::key_hasher::KeyHasher;
use crate::services::keys::KeyPolicy;
use crate::store::{PoolSettings, Store};

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
    pub key_policy: KeyPolicy,
    pub lockout: LockoutPolicy,
    pub limits: ConnLimits,
    pub body_limit: usize,
    pub trusted_proxies: Vec<IpNet>,
    pub pool: PoolSettings,
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
        let pepper = match secrets::configured_pepper(config).map_err(|e| StartupError::Invalid(e.to_string()))? {
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
        if !missing.is_empty() {
            return Err(StartupError::Missing(missing));
        }
        let (Some(pepper), tls) = (pepper, tls) else {
            return Err(StartupError::Invalid("secret material could not be loaded".into()));
        };
        let tls = match tls {
            Some((cert, key)) => {
                Some(tls::server_config(&cert, &key).map_err(|e| StartupError::Invalid(e.to_string()))?)
            }
            None => None,
        };
        Ok(Settings {
            listen: config.listen,
            data_dir: config.data_dir.clone(),
            database_url: config.database_url(),
            tls,
            pepper,
            key_policy: key_policy(config)?,
            lockout: lockout_policy(config)?,
            limits: ConnLimits {
                max_connections: config.limits.max_connections.max(1),
                header_read_timeout: Duration::from_secs(config.limits.header_read_timeout_secs.max(1)),
                tls_handshake_timeout: Duration::from_secs(config.limits.tls_handshake_timeout_secs.max(1)),
                shutdown_grace: Duration::from_secs(config.limits.shutdown_grace_secs),
            },
            body_limit: config.limits.body_limit_bytes,
            trusted_proxies: config.trusted_proxies.clone(),
            pool: PoolSettings {
                max_connections: config.database.max_connections.max(2),
                ..PoolSettings::default()
            },
            dev,
        })
    }
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

/// The running services behind the router.
pub struct Gateway {
    pub state: AppState,
    audit_writer: AuditWriter,
    maintenance: JoinHandle<()>,
}

/// What `Gateway::start` needs besides the store.
pub struct GatewayOptions {
    pub pepper: Pepper,
    pub lockout: LockoutPolicy,
    pub trusted_proxies: Vec<IpNet>,
    pub body_limit: usize,
}

impl Gateway {
    pub fn start(store: Store, options: GatewayOptions) -> Self {
        let (audit, audit_writer) = AuditWriter::spawn(store.clone());
        let hasher = Arc::new(KeyHasher::new(options.pepper));
        let auth = Authenticator::new(store.clone(), hasher, options.lockout, audit.clone());
        let maintenance = tokio::spawn(maintain(auth.clone()));
        let state = AppState {
            store,
            auth,
            audit,
            trusted_proxies: options.trusted_proxies.into(),
            body_limit: options.body_limit,
        };
        Gateway {
            state,
            audit_writer,
            maintenance,
        }
    }

    pub fn router(&self) -> Router {
        api::router(self.state.clone())
    }

    /// Stops background work and writes every queued audit entry. Call after
    /// the listener has stopped, so no request can queue another.
    pub async fn shutdown(self) {
        self.maintenance.abort();
        let store = self.state.store.clone();
        drop(self.state);
        self.audit_writer.shutdown().await;
        store.close().await;
    }
}

/// Periodic housekeeping: forget old authentication failures.
async fn maintain(auth: Authenticator) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tick.tick().await;
        if let Err(e) = auth.prune().await {
            tracing::warn!(error = %e, "pruning authentication failures failed");
        }
    }
}
