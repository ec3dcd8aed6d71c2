//! The outbound HTTP client every processor connector uses: one builder, one
//! policy.
//!
//! Invariants:
//! - TLS is rustls with TLS 1.2 as the floor; certificates are always
//!   verified, against Mozilla's roots (`webpki-roots`, not the host's store,
//!   which may hold any local self-signed certificate) plus an optional extra
//!   CA bundle for sandboxes and tests. No setting turns verification off.
//! - `https://` only. The single exception is [`HttpClient::plain_loopback`],
//!   a constructor for a local test double (localstripe) that nothing in
//!   configuration reaches; see its doc.
//! - No redirects, no proxy from the environment, connect and whole-request
//!   timeouts, and a bounded response body: a processor (or something
//!   impersonating one) cannot make the gateway follow it elsewhere, hang a
//!   payment or fill its memory.
//! - In live mode ([`HttpSettings::public_addresses_only`]) names resolve
//!   through the webhooks' SSRF guard, so a processor host can only ever be a
//!   public address.
//! - Errors describe what failed, never a payload.

use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// Processor calls that take longer than this are cut ([`HttpSettings::default`]).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Time to open a TCP connection and finish the TLS handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response body read (a PaymentIntent is a few KiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

const USER_AGENT: &str = concat!("paywarden/", env!("CARGO_PKG_VERSION"));

/// How a connector's client is built.
#[derive(Clone)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    /// The whole call: connect, send, and read the response body.
    pub request_timeout: Duration,
    pub max_response_bytes: usize,
    /// PEM certificates trusted in addition to Mozilla's roots.
    pub extra_root_ca_pem: Option<Vec<u8>>,
    /// Resolve names only to public addresses (live mode).
    pub public_addresses_only: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            extra_root_ca_pem: None,
            public_addresses_only: false,
        }
    }
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("extra_root_ca", &self.extra_root_ca_pem.is_some())
            .field("public_addresses_only", &self.public_addresses_only)
            .finish()
    }
}

/// Why a client could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("the extra CA bundle is not usable: {0}")]
    RootCa(String),
    #[error("the HTTP client could not be built: {0}")]
    Client(String),
}

/// How a call failed below HTTP. Whether the processor may have acted on it
/// is [`TransportError::may_have_reached`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("no connection could be opened")]
    Connect,
    #[error("the processor's TLS certificate was refused")]
    Certificate,
    #[error("the call timed out")]
    Timeout,
    #[error("the connection failed during the call")]
    Interrupted,
    #[error("the response body is larger than the limit")]
    TooLarge,
}

impl TransportError {
    /// Whether the request may have been received (and acted upon): only a
    /// failure to connect proves it was not.
    pub fn may_have_reached(&self) -> bool {
        !matches!(self, TransportError::Connect | TransportError::Certificate)
    }

    /// The failure as a connector's: a timeout, or a POST that may have
    /// reached the processor, is an unknown outcome (`Timeout`, reconciled,
    /// never retried elsewhere); anything else is `Unavailable`.
    pub fn into_connector_error(self, post: bool) -> super::ConnectorError {
        match self {
            TransportError::Timeout => super::ConnectorError::Timeout,
            e if post && e.may_have_reached() => super::ConnectorError::Timeout,
            e => super::ConnectorError::Unavailable(e.to_string()),
        }
    }
}

/// A processor's response, its body read (within the limit).
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// `Retry-After` in seconds, when the processor sent one.
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

/// The connectors' HTTP client.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: reqwest::Client,
    max_response_bytes: usize,
}

impl HttpClient {
    /// A client for `https://` processors.
    pub fn new(settings: &HttpSettings) -> Result<Self, BuildError> {
        Self::build(settings, true)
    }

    /// A client that also speaks plain `http://`, for a processor double on
    /// this machine (localstripe serves only plain HTTP). The caller must
    /// restrict it to a loopback base URL and to test mode, as
    /// [`crate::connectors::stripe::Stripe::plain_loopback_for_tests`] does;
    /// no configuration path leads here.
    pub fn plain_loopback(settings: &HttpSettings) -> Result<Self, BuildError> {
        Self::build(settings, false)
    }

    fn build(settings: &HttpSettings, https_only: bool) -> Result<Self, BuildError> {
        let tls = tls_config(settings.extra_root_ca_pem.as_deref())?;
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(https_only)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .user_agent(USER_AGENT);
        if settings.public_addresses_only {
            builder = builder.dns_resolver(Arc::new(crate::webhooks::ssrf::GuardedResolver));
        }
        let inner = builder.build().map_err(|e| BuildError::Client(e.to_string()))?;
        Ok(Self {
            inner,
            max_response_bytes: settings.max_response_bytes,
        })
    }

    /// The underlying client, to build a request with.
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.inner.request(method, url)
    }

    /// Sends `request` and reads its body, at most the configured size.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<HttpResponse, TransportError> {
        let mut response = request.send().await.map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if response
            .content_length()
            .is_some_and(|len| len > self.max_response_bytes as u64)
        {
            return Err(TransportError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(TransportError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            retry_after,
            body,
        })
    }
}

/// rustls with TLS 1.2 and 1.3 only, Mozilla's roots and `extra_pem`.
fn tls_config(extra_pem: Option<&[u8]>) -> Result<ClientConfig, BuildError> {
    let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| BuildError::RootCa(e.to_string()))?;
            roots.add(cert).map_err(|e| BuildError::RootCa(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(BuildError::RootCa("no certificate in the bundle".into()));
        }
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| BuildError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Sorts a reqwest error into what the connector needs to know.
fn classify(error: &reqwest::Error) -> TransportError {
    if error.is_timeout() {
        return TransportError::Timeout;
    }
    if caused_by_certificate(error) {
        return TransportError::Certificate;
    }
    if error.is_connect() {
        return TransportError::Connect;
    }
    TransportError::Interrupted
}

/// Whether rustls refused the peer's certificate somewhere down the chain.
/// (`io::Error::source` skips the error it wraps, so that one is looked at
/// through `get_ref`.)
fn caused_by_certificate(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(current) = next {
        if is_certificate_error(current) {
            return true;
        }
        if let Some(inner) = current.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            if is_certificate_error(inner) || caused_by_certificate(inner) {
                return true;
            }
        }
        next = current.source();
    }
    false
}

fn is_certificate_error(error: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        error.downcast_ref::<rustls::Error>(),
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_effect_is_a_timeout_and_a_refused_connection_is_not() {
        use crate::connectors::ConnectorError;
        assert_eq!(
            TransportError::Interrupted.into_connector_error(true),
            ConnectorError::Timeout
        );
        assert_eq!(
            TransportError::TooLarge.into_connector_error(true),
            ConnectorError::Timeout
        );
        assert_eq!(
            TransportError::Timeout.into_connector_error(false),
            ConnectorError::Timeout
        );
        for (refused, post) in [
            (TransportError::Connect, true),
            (TransportError::Certificate, true),
            (TransportError::Interrupted, false),
        ] {
            assert!(matches!(
                refused.into_connector_error(post),
                ConnectorError::Unavailable(_)
            ));
        }
    }

    #[test]
    fn an_extra_ca_must_hold_a_certificate() {
        let settings = HttpSettings {
            extra_root_ca_pem: Some(b"not a certificate".to_vec()),
            ..HttpSettings::default()
        };
        assert!(matches!(HttpClient::new(&settings), Err(BuildError::RootCa(_))));
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let settings = HttpSettings {
            extra_root_ca_pem: Some(ca.cert.pem().into_bytes()),
            ..HttpSettings::default()
        };
        assert!(HttpClient::new(&settings).is_ok());
    }

    #[test]
    fn only_a_connect_failure_proves_the_request_was_not_received() {
        assert!(!TransportError::Connect.may_have_reached());
        assert!(!TransportError::Certificate.may_have_reached());
        assert!(TransportError::Timeout.may_have_reached());
        assert!(TransportError::Interrupted.may_have_reached());
        assert!(TransportError::TooLarge.may_have_reached());
    }

    #[tokio::test]
    async fn plain_http_is_refused_by_the_normal_client_before_connecting() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let settings = HttpSettings {
            request_timeout: Duration::from_secs(2),
            ..HttpSettings::default()
        };
        let client = HttpClient::new(&settings).unwrap();
        assert!(client.send(client.request(reqwest::Method::GET, &url)).await.is_err());
        // Nothing ever connected: the refusal came before the socket.
        assert_eq!(
            listener.accept().map(drop).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::WouldBlock)
        );
        // The plain-loopback client does connect (and, unanswered, times out).
        let client = HttpClient::plain_loopback(&HttpSettings {
            request_timeout: Duration::from_millis(300),
            ..HttpSettings::default()
        })
        .unwrap();
        assert_eq!(
            client
                .send(client.request(reqwest::Method::GET, &url))
                .await
                .unwrap_err(),
            TransportError::Timeout
        );
        assert!(listener.accept().is_ok());
    }

    #[test]
    fn settings_debug_shows_no_certificate_bytes() {
        let settings = HttpSettings {
            extra_root_ca_pem: Some(b"-----BEGIN CERTIFICATE-----".to_vec()),
            ..HttpSettings::default()
        };
        assert!(!format!("{settings:?}").contains("BEGIN"));
    }
}
