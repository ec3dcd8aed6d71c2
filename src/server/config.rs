//! Configuration: defaults → `paywarden.toml` (or `--config`) → `PAYWARDEN_*`
//! environment variables (nested keys with `__`, e.g. `PAYWARDEN_TLS__CERT_FILE`)
//! → command-line flags. Unknown keys are rejected. (`PAYWARDEN_LOG` is the log
//! filter, read by `telemetry`, not a configuration key.)
//!
//! Secrets may be given inline or as `*_file` paths (preferred: the value then
//! never sits in the environment). Secret fields print as `***`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use ipnet::IpNet;
use secrecy::SecretString;
use serde::Deserialize;

pub use super::rate_limit_config::{RateLimitsConfig, RedisConfig};

/// The default HTTPS address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./paywarden-data";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    /// The operator listener (`/metrics`, `/readyz`): TLS with the same
    /// certificate, never the public address. Unset: off, except in `--dev`
    /// (a free loopback port, logged at start).
    pub operator_listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to `<data_dir>/paywarden.db`.
    pub database_url: Option<SecretString>,
    pub tls: TlsConfig,
    /// Serve plain HTTP (only behind a TLS-terminating proxy). Logged loudly.
    pub plain_http: bool,
    /// Proxies whose `X-Forwarded-For` header is believed.
    pub trusted_proxies: Vec<IpNet>,
    pub secrets: SecretsConfig,
    pub vault: VaultConfig,
    pub limits: LimitsConfig,
    pub keys: KeysConfig,
    pub lockout: LockoutConfig,
    pub idempotency: IdempotencyConfig,
    pub payments: PaymentsConfig,
    pub database: DatabaseConfig,
    pub webhooks: WebhooksConfig,
    pub rate_limits: RateLimitsConfig,
    /// The shared rate-limit store; unset: each replica limits on its own.
    pub redis: RedisConfig,
    /// Where merchants' processor connections reach their processors.
    pub connectors: super::connector_settings::ConnectorsConfig,
    /// Strong Customer Authentication (`server::sca_config`).
    pub sca: super::sca_config::ScaConfig,
    /// The anomaly detectors' thresholds and responses.
    pub anomaly: super::anomaly_config::AnomalyConfig,
    /// `text` or `json`.
    pub log_format: LogFormat,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8443))),
            operator_listen: None,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database_url: None,
            tls: TlsConfig::default(),
            plain_http: false,
            trusted_proxies: Vec::new(),
            secrets: SecretsConfig::default(),
            vault: VaultConfig::default(),
            limits: LimitsConfig::default(),
            keys: KeysConfig::default(),
            lockout: LockoutConfig::default(),
            idempotency: IdempotencyConfig::default(),
            payments: PaymentsConfig::default(),
            database: DatabaseConfig::default(),
            webhooks: WebhooksConfig::default(),
            rate_limits: RateLimitsConfig::default(),
            redis: RedisConfig::default(),
            connectors: Default::default(),
            sca: Default::default(),
            anomaly: Default::default(),
            log_format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// 32 random bytes, base64: the pepper of API-key hashes.
    pub api_key_pepper: Option<SecretString>,
    pub api_key_pepper_file: Option<PathBuf>,
}

/// The vault's key material: the key-encryption key (KEK) that wraps every
/// card's data key, and the secret behind card fingerprints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaultConfig {
    /// 32 random bytes, base64 (`paywarden secrets generate`).
    pub kek: Option<SecretString>,
    pub kek_file: Option<PathBuf>,
    /// The version stamped on data keys wrapped by `kek`.
    pub kek_version: u32,
    /// Earlier KEKs still needed to read data keys not yet re-wrapped.
    pub previous_kek_files: Vec<PreviousKek>,
    pub fingerprint_key: Option<SecretString>,
    pub fingerprint_key_file: Option<PathBuf>,
    /// How long a CVC waits in memory for its first authorization, e.g. `10m`.
    pub cvc_ttl: String,
    /// Most CVCs held in memory at once, all merchants together.
    pub cvc_capacity: usize,
    /// Most held for one merchant (per mode); default a tenth of `cvc_capacity`.
    pub cvc_per_merchant: Option<usize>,
    /// Most held for one publishable key; default a twentieth of `cvc_capacity`.
    pub cvc_per_publishable_key: Option<usize>,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            kek: None,
            kek_file: None,
            kek_version: 1,
            previous_kek_files: Vec::new(),
            fingerprint_key: None,
            fingerprint_key_file: None,
            cvc_ttl: "10m".into(),
            cvc_capacity: crate::vault::cvc::DEFAULT_CAPACITY,
            cvc_per_merchant: None,
            cvc_per_publishable_key: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousKek {
    pub version: u32,
    pub file: PathBuf,
}

/// `[limits]`: request size, connection count and the deadlines of a
/// connection (see `server::deadlines`). Every deadline is at least 1 s.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub body_limit_bytes: usize,
    /// From the TCP connection to a completed TLS handshake.
    pub tls_handshake_timeout_secs: u64,
    /// From the connection (after TLS) to the first request's head.
    pub first_request_timeout_secs: u64,
    /// From the first byte of a later request's head to its end (HTTP/1.1).
    pub header_read_timeout_secs: u64,
    /// How long a connection may stay open with no request in flight
    /// (HTTP/1.1 keep-alive and HTTP/2).
    pub keep_alive_timeout_secs: u64,
    /// From a request's head to the end of its body (a slow upload).
    pub body_read_timeout_secs: u64,
    /// How often an HTTP/2 connection is pinged, and how long the answer
    /// may take before the connection is closed.
    pub http2_keep_alive_interval_secs: u64,
    pub http2_keep_alive_timeout_secs: u64,
    /// Open connections at most (kept below the open-files limit); past it
    /// new connections are closed at once.
    pub max_connections: usize,
    /// How long in-flight requests may run after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// How long, after the listener stopped, queued audit entries and
    /// background work may take to finish; past it the process exits
    /// non-zero, saying what it abandoned.
    pub shutdown_drain_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 64 * 1024,
            tls_handshake_timeout_secs: 10,
            first_request_timeout_secs: 10,
            header_read_timeout_secs: 10,
            keep_alive_timeout_secs: 60,
            body_read_timeout_secs: 10,
            http2_keep_alive_interval_secs: 20,
            http2_keep_alive_timeout_secs: 10,
            max_connections: 4096,
            shutdown_grace_secs: 30,
            shutdown_drain_secs: 30,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Longest (and default) lifetime of a live key, e.g. `365d`.
    pub max_live_lifetime: String,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            max_live_lifetime: "365d".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    pub threshold: i64,
    pub window: String,
    pub duration: String,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            threshold: 10,
            window: "15m".into(),
            duration: "30m".into(),
        }
    }
}

/// `Idempotency-Key` records: how long they live (at least 24h, so a client
/// can retry for a day) and how long a running request holds its key before a
/// retry may take it over (its gateway is presumed dead).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencyConfig {
    pub ttl: String,
    pub lock_timeout: String,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            ttl: "24h".into(),
            lock_timeout: "60s".into(),
        }
    }
}

/// `[payments]`: limits of payments and the customer-facing address.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentsConfig {
    /// Largest amount of one payment, in minor units.
    pub max_amount: i64,
    /// How long a customer has to answer a 3-D Secure challenge, e.g. `10m`.
    pub challenge_ttl: String,
    /// The public base URL customers' browsers reach the gateway at, e.g.
    /// `https://pay.example.com` (default: the listening address).
    pub public_url: Option<String>,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            max_amount: crate::services::payments::DEFAULT_MAX_AMOUNT,
            challenge_ttl: "10m".into(),
            public_url: None,
        }
    }
}

/// `[database]`: connections, timeouts and deadlines (durations such as
/// `5s` or `500ms`), and the free-space floor of an SQLite database.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    /// Longest wait for a pooled connection (opening one included).
    pub acquire_timeout: String,
    /// Longest wait for a new connection of a write committer.
    pub connect_timeout: String,
    /// PostgreSQL's `statement_timeout` for the gateway's sessions (an idle
    /// transaction is ended after twice this).
    pub statement_timeout: String,
    /// Client-side bound of one write batch, `BEGIN` to `COMMIT`'s answer.
    pub write_deadline: String,
    /// Client-side bound of one read (PostgreSQL).
    pub read_deadline: String,
    /// SQLite: writes are refused below this much free space on the
    /// database's file system, in MiB (0: no floor).
    pub min_free_space_mb: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: "5s".into(),
            connect_timeout: "5s".into(),
            statement_timeout: "10s".into(),
            write_deadline: "10s".into(),
            read_deadline: "10s".into(),
            min_free_space_mb: 256,
        }
    }
}

/// Outbound webhooks. The retry window may be shortened below 3 days and the
/// lease below 15 s only in `--dev` mode (tests).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// A PEM file of CA certificates trusted for webhook URLs in addition to
    /// the system's (e.g. a private CA). Verification is never turned off.
    pub extra_root_ca_file: Option<PathBuf>,
    /// How often due deliveries are looked for, e.g. `1s`.
    pub poll_interval: String,
    /// Delay after the first failed attempt; doubles after each, e.g. `1m`.
    pub retry_initial: String,
    /// Longest delay between attempts, e.g. `6h`.
    pub retry_max_interval: String,
    /// How long after the event a delivery is retried, e.g. `3d`.
    pub retry_window: String,
    /// How long a claimed delivery belongs to one replica, e.g. `60s`.
    pub lease: String,
    /// How long one attempt may take, connecting included, e.g. `5s` (at
    /// most `60s`; outside `--dev` at least 10 s shorter than `lease`).
    pub attempt_timeout: String,
    /// Requests in flight to one endpoint from one replica at most. A replica
    /// claims as many of its deliveries ahead of their requests (4 times as
    /// many while it answers within 500 ms, one while it fails); its leases in
    /// all replicas together are at most 8 times this.
    pub max_in_flight_per_endpoint: u32,
    /// Attempts in flight from one replica at most.
    pub max_in_flight: u32,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            extra_root_ca_file: None,
            poll_interval: "1s".into(),
            retry_initial: "1m".into(),
            retry_max_interval: "6h".into(),
            retry_window: "3d".into(),
            lease: "60s".into(),
            attempt_timeout: "5s".into(),
            max_in_flight_per_endpoint: 8,
            max_in_flight: 256,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Values given on the command line, which override everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub database_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads the layered configuration. `file` defaults to `paywarden.toml` if it exists.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError(format!(
                    "configuration file {} does not exist",
                    f.display()
                )));
            }
        }
        let file = file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("paywarden.toml"));
        let mut figment = Figment::new()
            .merge(Toml::file(&file))
            .merge(Env::prefixed("PAYWARDEN_").ignore(&["log"]).split("__"));
        if let Some(d) = &overrides.data_dir {
            figment = figment.merge(Serialized::default("data_dir", d));
        }
        if let Some(l) = &overrides.listen {
            figment = figment.merge(Serialized::default("listen", l.to_string()));
        }
        if let Some(u) = &overrides.database_url {
            figment = figment.merge(Serialized::default("database_url", u));
        }
        figment.extract::<Config>().map_err(|e| ConfigError(e.to_string()))
    }

    /// The database URL, defaulting to SQLite in the data directory.
    pub fn database_url(&self) -> String {
        use secrecy::ExposeSecret;
        match &self.database_url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("paywarden.db").display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected_and_known_ones_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\n[limits]\nbody_limit_bytes = 1024\nkeep_alive_timeout_secs = 30\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), &Overrides::default()).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.limits.body_limit_bytes, 1024);
        assert_eq!(c.limits.keep_alive_timeout_secs, 30);
        std::fs::write(
            &path,
            "[connectors.stripe]\nbase_url = \"https://stripe-mock.internal:12111\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), &Overrides::default()).unwrap();
        assert_eq!(c.connectors.stripe.base_url, "https://stripe-mock.internal:12111");
        std::fs::write(&path, "[connectors.stripe]\nbase_ur = \"https://x\"\n").unwrap();
        assert!(Config::load(Some(&path), &Overrides::default()).is_err());
        std::fs::write(&path, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        assert!(Config::load(Some(&path), &Overrides::default()).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config {
            database_url: Some(SecretString::from("postgres://u:hunter2@h/db")),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
