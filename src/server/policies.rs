//! The services' policies and secrets, resolved from the configuration and
//! checked at start: the vault and its KEKs, CVC holder, webhooks, keys,
//! lockouts, payments and idempotency.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::time::parse_duration;
use crate::services::api_keys::KeyPolicy;
use crate::services::auth::LockoutPolicy;
use crate::services::idempotency::{self, IdempotencyPolicy};
use crate::services::payments::PaymentPolicy;
use crate::vault::Vault;
use crate::vault::{CvcLimits, CvcStore, Fingerprinter, Kek, KekVersion, StaticKeyring};
use crate::webhooks::settings::{self as webhook_settings, RetrySchedule, WebhookSettings};

use super::config::Config;
use super::secrets::{self};
use crate::secret_files::DevSecrets;

use super::StartupError;

/// A configured 32-byte vault secret, or in dev mode the generated one.
pub(super) fn vault_key(
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
pub(super) fn build_vault(
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
pub(super) fn cvc_store(config: &Config) -> Result<CvcStore, StartupError> {
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

pub(super) fn lockout_policy(config: &Config) -> Result<LockoutPolicy, StartupError> {
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
        sca: super::sca_config::sca_policy(&config.sca)?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::config;
    use crate::server::settings::conn_limits;

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
