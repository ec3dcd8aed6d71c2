//! The PostgreSQL committers' own connections ([`super::pg_committer`]):
//! the pool's `database_url` read by `tokio-postgres`, and TLS over
//! `tokio-rustls`, with exactly the policy of the sqlx pool beside them (sqlx
//! 0.8 with `tls-rustls-ring-webpki`), so that a URL means the same thing to
//! both, and a parameter the committers would not honour is refused:
//!
//! * `sslmode=verify-full`: the chain must end in Mozilla's roots
//!   (`webpki-roots`) or in a certificate of `sslrootcert=FILE`, and the
//!   certificate must name the host;
//! * `verify-ca`: the same chain, any name;
//! * `prefer` (the default) and `require`: encrypted, the certificate not
//!   checked (as libpq and sqlx do). `server::database` refuses both for a
//!   remote host, so they only reach a database on this machine;
//! * `disable`: no TLS.
//!
//! Only glue: the handshake and every check are rustls' and webpki's (ring).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::Client;

use super::fault::{Fault, FaultKind};
use super::StoreError;

/// Where the committers connect: the pool's URL, read by `tokio-postgres`.
pub struct Target {
    config: tokio_postgres::Config,
    /// `None`: `sslmode=disable`.
    tls: Option<RustlsConnect>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Target")
    }
}

impl Target {
    /// Reads a `postgres://` URL as sqlx does: `sslmode` (default `prefer`)
    /// and `sslrootcert` as below, several `options` joined.
    /// A parameter the committers would not honour is refused by its name.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let mut parsed = url::Url::parse(url).map_err(|_| StoreError::UnsupportedUrl)?;
        let query: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        // The rest of the URL (user, password, host, port, database) as
        // `tokio-postgres` reads it; the query's parameters set one by one
        // (its reader takes a `+` literally, where a URL's query means a space).
        parsed.set_query(None);
        let mut config = tokio_postgres::Config::from_str(parsed.as_str())
            .map_err(|e| StoreError::Other(format!("database_url (committers): {e}")))?;
        let (mut mode, mut verify) = (SslMode::Prefer, Verify::Nothing);
        let mut root_cert: Option<String> = None;
        let mut options: Vec<String> = Vec::new();
        for (key, value) in query {
            match key.as_str() {
                "sslmode" => {
                    (mode, verify) = match value.as_str() {
                        "disable" => (SslMode::Disable, Verify::Nothing),
                        "allow" | "prefer" => (SslMode::Prefer, Verify::Nothing),
                        "require" => (SslMode::Require, Verify::Nothing),
                        "verify-ca" => (SslMode::Require, Verify::Chain),
                        "verify-full" => (SslMode::Require, Verify::Full),
                        _ => return Err(refused("sslmode")),
                    }
                }
                "sslrootcert" => root_cert = Some(value),
                "options" => options.push(value),
                "user" => {
                    config.user(value);
                }
                "password" => {
                    config.password(value);
                }
                "dbname" => {
                    config.dbname(value);
                }
                "application_name" => {
                    config.application_name(value);
                }
                other => return Err(refused(other)),
            }
        }
        if !options.is_empty() {
            config.options(options.join(" "));
        }
        config.ssl_mode(mode);
        let tls = if mode == SslMode::Disable {
            None
        } else {
            let root = root_cert.as_deref().map(std::path::Path::new);
            Some(RustlsConnect::new(verify, root).map_err(StoreError::Other)?)
        };
        Ok(Self { config, tls })
    }

    /// A new connection, within `within`, and the task that runs its socket
    /// (to abort when the connection is given up).
    pub(super) async fn connect(&self, within: Duration) -> Result<(Client, JoinHandle<()>), StoreError> {
        let connecting = async {
            match &self.tls {
                Some(tls) => {
                    let (client, conn) = self.config.connect(tls.clone()).await?;
                    Ok::<_, tokio_postgres::Error>((client, tokio::spawn(drive(conn))))
                }
                None => {
                    let (client, conn) = self.config.connect(tokio_postgres::NoTls).await?;
                    Ok((client, tokio::spawn(drive(conn))))
                }
            }
        };
        match tokio::time::timeout(within, connecting).await {
            Ok(Ok(connected)) => Ok(connected),
            Ok(Err(e)) => Err(pg_error(&e)),
            Err(_) => Err(StoreError::Unavailable(Fault::new(
                FaultKind::Timeout,
                "no database connection within database.connect_timeout",
            ))),
        }
    }
}

fn refused(key: &str) -> StoreError {
    StoreError::Other(format!(
        "database_url parameter {key}: not supported by the PostgreSQL committers"
    ))
}

/// Runs a connection's socket until it closes or fails.
async fn drive<S, T>(conn: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "a committer's PostgreSQL connection ended");
    }
}

/// How the server's certificate is checked (`sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// `verify-full`: chain and host name.
    Full,
    /// `verify-ca`: chain only.
    Chain,
    /// `prefer`, `require`: not checked (see the module doc).
    Nothing,
}

/// A TLS connector for `tokio-postgres`; cheap to clone.
#[derive(Clone)]
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
}

impl RustlsConnect {
    /// The client configuration for `verify`, trusting Mozilla's roots and
    /// the certificates of the PEM file `root_cert` (as sqlx does).
    pub fn new(verify: Verify, root_cert: Option<&std::path::Path>) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?;
        let config = match verify {
            Verify::Nothing => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unchecked { provider }))
                .with_no_client_auth(),
            Verify::Full | Verify::Chain => {
                let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                if let Some(path) = root_cert {
                    let unreadable = |e: &dyn std::fmt::Display| format!("sslrootcert {}: {e}", path.display());
                    for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
                        roots
                            .add(cert.map_err(|e| unreadable(&e))?)
                            .map_err(|e| unreadable(&e))?;
                    }
                }
                if verify == Verify::Full {
                    builder.with_root_certificates(roots).with_no_client_auth()
                } else {
                    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| format!("TLS configuration: {e}"))?;
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(AnyName { verifier }))
                        .with_no_client_auth()
                }
            }
        };
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsHost;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsHost, Self::Error> {
        Ok(RustlsHost {
            config: Arc::clone(&self.config),
            name: ServerName::try_from(domain.to_owned())?,
        })
    }
}

/// The connector for one host.
pub struct RustlsHost {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsHost
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move {
            let stream = connector.connect(self.name, stream).await?;
            Ok(RustlsStream(Box::new(stream)))
        })
    }
}

/// An established TLS stream.
pub struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    /// No SCRAM channel binding, as with sqlx (which offers none).
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

/// `prefer`/`require`: any certificate; the handshake's signatures are still
/// checked against it (sqlx's `DummyTlsVerifier`).
#[derive(Debug)]
struct Unchecked {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: webpki's verdict, except that a certificate for another name
/// is accepted (sqlx's `NoHostnameTlsVerifier`, which recent rustls reports
/// in either of two forms).
#[derive(Debug)]
struct AnyName {
    verifier: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .verifier
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier.supported_verify_schemes()
    }
}

/// Classifies a `tokio-postgres` error as sqlx's are ([`super::fault`]): by
/// SQLSTATE when the server answered; anything else (closed, I/O, TLS, a
/// garbled message) is the connection failing. The detail keeps the
/// server's message, never its DETAIL (which may quote row values).
pub(super) fn pg_error(e: &tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::classified(
            super::fault::postgres_class(db.code().code()),
            format!("postgres {}: {}", db.code().code(), db.message()),
        ),
        None => StoreError::Unavailable(Fault::new(FaultKind::Unavailable, format!("postgres: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_reads_as_the_pool_reads_it() {
        let target = Target::from_url(
            "postgres://pw:s%40cret@db.example:6432/pay?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem\
             &options=-c%20search_path%3Dx&options=-c+statement_timeout%3D5",
        );
        // The root file is read at once: a missing one is refused by name.
        let Err(StoreError::Other(e)) = target else {
            panic!("a missing sslrootcert must be refused")
        };
        assert!(e.contains("sslrootcert /nonexistent/ca.pem"), "{e}");
        assert!(!e.contains("s@cret") && !e.contains("s%40cret"), "{e}");

        let target = Target::from_url(
            "postgres://pw:s%40cret@db.example:6432/pay?options=-c%20search_path%3Dx&options=-c+statement_timeout%3D5",
        )
        .unwrap();
        let config = &target.config;
        assert_eq!(config.get_user(), Some("pw"));
        assert_eq!(config.get_password(), Some(&b"s@cret"[..]));
        assert_eq!(config.get_dbname(), Some("pay"));
        assert_eq!(config.get_ports(), [6432]);
        assert_eq!(config.get_ssl_mode(), SslMode::Prefer, "sqlx's default");
        assert!(target.tls.is_some());
        assert_eq!(
            config.get_options(),
            Some("-c search_path=x -c statement_timeout=5"),
            "every options parameter, a + read as a space"
        );

        let plain = Target::from_url("postgres://pw@127.0.0.1/pay?sslmode=disable").unwrap();
        assert!(plain.tls.is_none());
        assert_eq!(plain.config.get_ssl_mode(), SslMode::Disable);
        let verified = Target::from_url("postgres://pw@db.example/pay?sslmode=verify-ca").unwrap();
        assert_eq!(verified.config.get_ssl_mode(), SslMode::Require);

        let unknown = Target::from_url("postgres://pw@127.0.0.1/pay?sslcert=/x.pem");
        assert!(matches!(unknown, Err(StoreError::Other(e)) if e.contains("sslcert")));
    }
}
