//! The certificates PayPal signs webhook deliveries with, fetched from a
//! delivery's `PAYPAL-CERT-URL` and cached by URL.
//!
//! Invariants: a certificate is fetched only over `https://` from one of
//! PayPal's API hosts of the connection's mode (or the operator's configured
//! base host, a staging double), never from any other address a delivery
//! names (no SSRF, no attacker-supplied key); it is kept only once its chain
//! verifies against Mozilla's roots (plus the operator's extra CA), at the
//! current time, for PayPal's message-verification host name
//! ([`SIGNER_NAMES`]); the cache is bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::RootCertStore;

use crate::connectors::http::HttpClient;
use crate::domain::api_key::Mode;

/// The names PayPal's webhook signing certificates are issued for.
pub const SIGNER_NAMES: [&str; 2] = [
    "messageverificationcerts.paypal.com",
    "messageverificationcerts.sandbox.paypal.com",
];

/// Certificates kept at most (PayPal rotates them rarely).
const CAPACITY: usize = 64;

/// PayPal's hosts a certificate URL may name, by mode.
fn paypal_hosts(mode: Mode) -> &'static [&'static str] {
    match mode {
        Mode::Live => &["api.paypal.com", "api-m.paypal.com"],
        Mode::Test => &["api.sandbox.paypal.com", "api-m.sandbox.paypal.com"],
    }
}

pub struct Certs {
    http: HttpClient,
    /// PayPal's hosts of the mode, and the configured base URL's host.
    hosts: Vec<String>,
    roots: Arc<RootCertStore>,
    cache: Mutex<HashMap<String, CertificateDer<'static>>>,
}

impl Certs {
    pub fn new(http: HttpClient, mode: Mode, base: &str, extra_root_ca_pem: Option<&[u8]>) -> Self {
        let mut hosts: Vec<String> = paypal_hosts(mode).iter().map(|h| (*h).to_owned()).collect();
        if let Some(host) = url::Url::parse(base).ok().as_ref().and_then(url::Url::host_str) {
            hosts.push(host.to_owned());
        }
        let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in extra_root_ca_pem
            .map(CertificateDer::pem_slice_iter)
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = roots.add(cert);
        }
        Self {
            http,
            hosts,
            roots: Arc::new(roots),
            cache: Mutex::default(),
        }
    }

    /// `url` if a certificate may be fetched from it: `https://`, one of the
    /// allowed hosts, PayPal's certificate path.
    pub fn allowed(&self, url: &str) -> Option<url::Url> {
        let parsed = url::Url::parse(url).ok()?;
        let host_ok = parsed.host_str().is_some_and(|h| self.hosts.iter().any(|a| a == h));
        let path_ok = parsed.path().starts_with("/v1/notifications/certs/");
        (parsed.scheme() == "https"
            && host_ok
            && path_ok
            && parsed.username().is_empty()
            && parsed.password().is_none()
            && parsed.query().is_none())
        .then_some(parsed)
    }

    /// The verified certificate of `url`, if fetched already.
    pub fn get(&self, url: &str) -> Option<CertificateDer<'static>> {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(url)
            .cloned()
    }

    /// Fetches and verifies the certificate of `url` unless it is cached or
    /// not allowed; a failure leaves nothing cached (the delivery is then
    /// refused, and PayPal delivers it again later).
    pub async fn fetch(&self, url: &str) {
        if self.get(url).is_some() {
            return;
        }
        let Some(allowed) = self.allowed(url) else {
            return;
        };
        let request = self
            .http
            .request(reqwest::Method::GET, allowed.as_str())
            .header(reqwest::header::ACCEPT, "application/x-pem-file, text/plain");
        let Ok(response) = self.http.send(request).await else {
            tracing::warn!("PayPal's webhook certificate could not be fetched");
            return;
        };
        if response.status != 200 {
            tracing::warn!(
                status = response.status,
                "PayPal's webhook certificate could not be fetched"
            );
            return;
        }
        match self.verified(&response.body) {
            Some(leaf) => {
                let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                if cache.len() >= CAPACITY {
                    cache.clear();
                }
                cache.insert(url.to_owned(), leaf);
            }
            None => tracing::warn!("PayPal's webhook certificate did not verify"),
        }
    }

    /// The leaf of a PEM chain whose path to a trusted root verifies now,
    /// for one of [`SIGNER_NAMES`].
    fn verified(&self, pem: &[u8]) -> Option<CertificateDer<'static>> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem).filter_map(Result::ok).collect();
        let (leaf, intermediates) = chain.split_first()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::clone(&self.roots), provider)
            .build()
            .ok()?;
        let now = UnixTime::now();
        SIGNER_NAMES
            .iter()
            .filter_map(|name| ServerName::try_from(*name).ok())
            .any(|name| {
                verifier
                    .verify_server_cert(leaf, intermediates, &name, &[], now)
                    .is_ok()
            })
            .then(|| leaf.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::http::HttpSettings;

    #[test]
    fn certificates_come_only_from_paypals_hosts_of_the_mode_or_the_configured_one() {
        let base = "https://paypal-double.internal:8443";
        let certs = Certs::new(
            HttpClient::new(&HttpSettings::default()).unwrap(),
            Mode::Test,
            base,
            None,
        );
        for ok in [
            "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
            "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
            "https://paypal-double.internal:8443/v1/notifications/certs/CERT-1",
        ] {
            assert!(certs.allowed(ok).is_some(), "{ok}");
        }
        for bad in [
            "http://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-1",
            "https://api-m.paypal.com/v1/notifications/certs/CERT-1",
            "https://evil.example/v1/notifications/certs/CERT-1",
            "https://api-m.sandbox.paypal.com.evil.example/v1/notifications/certs/CERT-1",
            "https://api-m.sandbox.paypal.com/v1/oauth2/token",
            "https://u:p@api-m.sandbox.paypal.com/v1/notifications/certs/CERT-1",
            "https://169.254.169.254/v1/notifications/certs/CERT-1",
            "not a url",
        ] {
            assert!(certs.allowed(bad).is_none(), "{bad}");
        }
        assert!(certs.verified(b"not a certificate").is_none());
    }
}
