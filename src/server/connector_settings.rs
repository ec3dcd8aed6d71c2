//! `[connectors.stripe]` and `[connectors.paypal]`: where the gateway reaches
//! Stripe and PayPal for merchants' processor connections. The operator's setting, never a merchant's: a
//! merchant's (or a thief's) API key cannot make the gateway send card
//! numbers to another host. `https://` only; an extra CA is trusted in
//! addition to Mozilla's roots, never instead of verification. A live-mode
//! connection additionally needs the host to resolve to public addresses
//! (checked when its connector is built).

use std::path::PathBuf;

use serde::Deserialize;

use crate::connectors::http::HttpSettings;
use crate::connectors::stripe::DEFAULT_BASE_URL;
use crate::connectors::{PaypalSettings, StripeSettings};

use super::StartupError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectorsConfig {
    pub stripe: StripeConnectorConfig,
    pub paypal: PaypalConnectorConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaypalConnectorConfig {
    /// A double standing in for PayPal in staging, for both modes; by
    /// default each connection reaches PayPal's host of its mode
    /// (`api-m.sandbox.paypal.com` for test, `api-m.paypal.com` for live).
    pub base_url: Option<String>,
    /// A PEM file of CA certificates trusted in addition to Mozilla's roots.
    pub extra_root_ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StripeConnectorConfig {
    /// Stripe's API host, or a sandbox standing in for it in staging.
    pub base_url: String,
    /// A PEM file of CA certificates trusted for `base_url` in addition to
    /// Mozilla's roots (a staging double's private CA).
    pub extra_root_ca_file: Option<PathBuf>,
}

impl Default for StripeConnectorConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            extra_root_ca_file: None,
        }
    }
}

/// `base_url` of `[connectors.NAME]`, checked: `https://`, a host, no
/// credentials.
fn check_base_url(name: &str, base_url: &str) -> Result<(), StartupError> {
    let url =
        url::Url::parse(base_url).map_err(|e| StartupError::Invalid(format!("connectors.{name}.base_url: {e}")))?;
    if url.scheme() != "https" || url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(StartupError::Invalid(format!(
            "connectors.{name}.base_url must be an https:// URL without credentials"
        )));
    }
    Ok(())
}

/// The HTTP settings of `[connectors.NAME]` with its extra CA file read.
fn http_settings(name: &str, extra_root_ca_file: Option<&PathBuf>) -> Result<HttpSettings, StartupError> {
    let extra_root_ca_pem = match extra_root_ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            StartupError::Invalid(format!("connectors.{name}.extra_root_ca_file {}: {e}", path.display()))
        })?),
        None => None,
    };
    Ok(HttpSettings {
        extra_root_ca_pem,
        ..HttpSettings::default()
    })
}

/// The Stripe settings of `config`, checked.
pub fn stripe_settings(config: &ConnectorsConfig) -> Result<StripeSettings, StartupError> {
    let stripe = &config.stripe;
    check_base_url("stripe", &stripe.base_url)?;
    Ok(StripeSettings {
        base_url: stripe.base_url.clone(),
        http: http_settings("stripe", stripe.extra_root_ca_file.as_ref())?,
    })
}

/// The PayPal settings of `config`, checked.
pub fn paypal_settings(config: &ConnectorsConfig) -> Result<PaypalSettings, StartupError> {
    let paypal = &config.paypal;
    if let Some(base_url) = &paypal.base_url {
        check_base_url("paypal", base_url)?;
    }
    Ok(PaypalSettings {
        base_url: paypal.base_url.clone(),
        http: http_settings("paypal", paypal.extra_root_ca_file.as_ref())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base_url: &str, ca: Option<PathBuf>) -> ConnectorsConfig {
        ConnectorsConfig {
            stripe: StripeConnectorConfig {
                base_url: base_url.to_owned(),
                extra_root_ca_file: ca,
            },
            paypal: PaypalConnectorConfig::default(),
        }
    }

    #[test]
    fn stripe_is_reached_over_https_at_its_own_host_unless_the_operator_says_otherwise() {
        let default = stripe_settings(&ConnectorsConfig::default()).unwrap();
        assert_eq!(default.base_url, "https://api.stripe.com");
        assert!(default.http.extra_root_ca_pem.is_none());
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let staging = stripe_settings(&config("https://stripe-mock.internal:12111", Some(ca))).unwrap();
        assert_eq!(staging.base_url, "https://stripe-mock.internal:12111");
        assert!(staging.http.extra_root_ca_pem.is_some());
        for bad in [
            "http://api.stripe.com",
            "https://user:pw@api.stripe.com",
            "not a url",
            "file:///etc/passwd",
        ] {
            assert!(stripe_settings(&config(bad, None)).is_err(), "{bad}");
        }
        let missing = stripe_settings(&config("https://api.stripe.com", Some(dir.path().join("nope.pem"))));
        assert!(missing.is_err());
    }

    #[test]
    fn paypal_is_reached_at_its_host_of_each_mode_unless_the_operator_names_an_https_double() {
        let default = paypal_settings(&ConnectorsConfig::default()).unwrap();
        assert!(default.base_url.is_none() && default.http.extra_root_ca_pem.is_none());
        let mut staging = ConnectorsConfig::default();
        staging.paypal.base_url = Some("https://paypal-double.internal:8443".into());
        assert_eq!(
            paypal_settings(&staging).unwrap().base_url.as_deref(),
            Some("https://paypal-double.internal:8443")
        );
        staging.paypal.base_url = Some("http://api-m.paypal.com".into());
        assert!(paypal_settings(&staging).is_err());
    }
}
