//! The posture of the deployment itself: the listener's TLS and
//! certificate, where the secrets come from and who may read their files,
//! the database transport and file, debug logging, and shared rate limits.
//! Development settings are a warning while only test mode is used and a
//! failure once live keys exist. The database's own findings are
//! `services::posture::data`'s.

use std::path::Path;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::domain::time::Timestamp;
use crate::secret_files::{self as files, DevSecrets, SecretFileError};
use crate::services::posture::{Finding, Status};

use super::config::Config;
use super::database::check_transport;
use super::tls;

/// Certificates expiring sooner than this are worth a warning.
pub const CERTIFICATE_WARNING: Duration = Duration::from_secs(30 * 86_400);

/// What the deployment checks look at beyond the configuration.
pub struct Deployment<'a> {
    pub config: &'a Config,
    /// The configuration file, if one was read.
    pub config_file: Option<&'a Path>,
    /// `PAYWARDEN_LOG`, the log filter.
    pub log_filter: Option<&'a str>,
    /// Whether live mode is in use (any live key was ever issued).
    pub live_in_use: bool,
    pub now: Timestamp,
}

impl Deployment<'_> {
    /// A development setting: a failure once live mode is in use.
    fn development(&self, check: &'static str, detail: String) -> Finding {
        if self.live_in_use {
            Finding::fail(check, format!("{detail}, and live keys exist"))
        } else {
            Finding::warn(check, format!("{detail} (acceptable while only test mode is used)"))
        }
    }
}

/// Runs every deployment check.
pub fn check(d: &Deployment<'_>) -> Vec<Finding> {
    let mut out = vec![listener(d), certificate(d), tls_key(d)];
    let secrets = &d.config.secrets;
    let vault = &d.config.vault;
    out.push(secret(
        d,
        "secrets.api_key_pepper",
        secrets.api_key_pepper.is_some(),
        secrets.api_key_pepper_file.as_deref(),
    ));
    out.push(secret(d, "vault.kek", vault.kek.is_some(), vault.kek_file.as_deref()));
    out.push(secret(
        d,
        "vault.fingerprint_key",
        vault.fingerprint_key.is_some(),
        vault.fingerprint_key_file.as_deref(),
    ));
    out.extend(
        vault
            .previous_kek_files
            .iter()
            .map(|p| secret(d, "vault.previous_kek_files", false, Some(&p.file))),
    );
    out.extend([config_file(d), database(d), logging(d), shared_limits(d)]);
    out
}

fn listener(d: &Deployment<'_>) -> Finding {
    if d.config.plain_http {
        Finding::fail(
            "tls.listener",
            "plain_http is on: API keys and card data would cross the network in clear",
        )
    } else {
        Finding::pass(
            "tls.listener",
            "HTTPS only, TLS 1.2 and 1.3 with forward-secret AEAD suites (rustls)",
        )
    }
}

fn certificate(d: &Deployment<'_>) -> Finding {
    const CHECK: &str = "tls.certificate";
    let Some(path) = d.config.tls.cert_file.as_deref() else {
        return d.development(
            CHECK,
            "no tls.cert_file: the self-signed development certificate is used".into(),
        );
    };
    if path.starts_with(tls::dev_paths(&d.config.data_dir).0.parent().unwrap_or(path)) {
        return d.development(CHECK, format!("{} is the development certificate", path.display()));
    }
    let der = match CertificateDer::pem_file_iter(path).map(|mut it| it.next()) {
        Ok(Some(Ok(der))) => der,
        _ => return Finding::fail(CHECK, format!("cannot read a certificate from {}", path.display())),
    };
    let not_after = match x509_parser::parse_x509_certificate(&der) {
        Ok((_, cert)) => cert.validity().not_after.timestamp(),
        Err(_) => return Finding::fail(CHECK, format!("{} is not a valid X.509 certificate", path.display())),
    };
    let expires = Timestamp::from_millis(not_after.saturating_mul(1000));
    let when = expires.to_rfc3339();
    if expires <= d.now {
        Finding::fail(CHECK, format!("{} expired on {when}", path.display()))
    } else if expires <= d.now.saturating_add(CERTIFICATE_WARNING) {
        Finding::warn(
            CHECK,
            format!("{} expires on {when}, within 30 days: renew it", path.display()),
        )
    } else {
        Finding::pass(CHECK, format!("{} valid until {when}", path.display()))
    }
}

fn tls_key(d: &Deployment<'_>) -> Finding {
    match d.config.tls.key_file.as_deref() {
        Some(path) => secret_file(d, "tls.key_file", path),
        None => d.development("tls.key_file", "no tls.key_file: the development key is used".into()),
    }
}

/// A secret given inline (environment or configuration file), in a file,
/// or not at all (the development secret under the data dir).
fn secret(d: &Deployment<'_>, check: &'static str, inline: bool, file: Option<&Path>) -> Finding {
    match (inline, file) {
        (_, Some(path)) => secret_file(d, check, path),
        (true, None) => Finding::pass(check, "set inline (environment or configuration file)"),
        (false, None) => d.development(
            check,
            "not configured: the development secret in the data dir is used".into(),
        ),
    }
}

/// A secret file must be readable by its owner only and not be a
/// development secret.
fn secret_file(d: &Deployment<'_>, check: &'static str, path: &Path) -> Finding {
    let refused = DevSecrets::Refused {
        data_dir: &d.config.data_dir,
    };
    match files::read_secret(path, check, refused) {
        Ok(_) => Finding::pass(check, format!("{} is readable by its owner only", path.display())),
        Err(SecretFileError::DevGenerated { .. }) => {
            d.development(check, format!("{} is a development secret", path.display()))
        }
        Err(e) => Finding::fail(check, e.to_string()),
    }
}

fn config_file(d: &Deployment<'_>) -> Finding {
    match d.config_file {
        Some(path) if files::too_open(path) => Finding::warn(
            "files.config",
            format!(
                "{} may be read by group or others; it may hold secrets: chmod 600",
                path.display()
            ),
        ),
        Some(path) => Finding::pass(
            "files.config",
            format!("{} is readable by its owner only", path.display()),
        ),
        None => Finding::pass("files.config", "no configuration file"),
    }
}

fn database(d: &Deployment<'_>) -> Finding {
    let url = d.config.database_url();
    if let Err(problem) = check_transport(&url) {
        return Finding::fail("database.transport", problem);
    }
    let Some(file) = url.strip_prefix("sqlite://") else {
        return Finding::pass("database.transport", "PostgreSQL on this machine or over verified TLS");
    };
    let file = Path::new(file.split('?').next().unwrap_or(file));
    if files::too_open(file) {
        Finding::fail(
            "database.transport",
            format!(
                "the SQLite database {} may be read by group or others: chmod 600",
                file.display()
            ),
        )
    } else {
        Finding::pass("database.transport", "SQLite database file readable by its owner only")
    }
}

fn logging(d: &Deployment<'_>) -> Finding {
    let filter = d.log_filter.unwrap_or("info");
    let verbose = filter.split(',').any(|directive| {
        let level = directive.rsplit('=').next().unwrap_or(directive).trim();
        level.eq_ignore_ascii_case("debug") || level.eq_ignore_ascii_case("trace")
    });
    if !verbose {
        return Finding::pass("logging.level", format!("PAYWARDEN_LOG={filter}"));
    }
    let finding = d.development(
        "logging.level",
        format!("PAYWARDEN_LOG={filter} enables debug logging, which records request details"),
    );
    Finding::new("logging.level", finding.status.max(Status::Warn), finding.detail)
}

fn shared_limits(d: &Deployment<'_>) -> Finding {
    let postgres = d.config.database_url().starts_with("postgres");
    match (postgres, d.config.redis.url.is_some()) {
        (_, true) => Finding::pass("redis.shared_limits", "rate limits are shared through Redis"),
        (true, false) => Finding::warn(
            "redis.shared_limits",
            "PostgreSQL without redis.url: several replicas would each keep their own rate limits, multiplying them",
        ),
        (false, false) => Finding::pass(
            "redis.shared_limits",
            "one replica (SQLite): local rate limits are whole",
        ),
    }
}
