//! TLS for the listener: rustls with TLS 1.2 and 1.3 only and AEAD suites with
//! forward secrecy only (ECDHE key exchange; AES-GCM or ChaCha20-Poly1305).
//! rustls implements no TLS 1.0/1.1, no compression and no renegotiation.
//! In development, a self-signed certificate is generated under the data dir;
//! its key is marked as a development secret, which a start without `--dev`
//! refuses, as it refuses a key file that group or others may access.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring as provider;
use rustls::{ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::secret_files::{self as files, DevSecrets, SecretFileError};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("cannot read the TLS private key {path}: {reason}")]
    PrivateKey { path: PathBuf, reason: String },
    #[error(transparent)]
    KeyFile(#[from] SecretFileError),
    #[error("TLS configuration rejected: {0}")]
    Config(String),
    #[error("cannot create the development certificate: {0}")]
    DevCertificate(String),
}

/// The cipher suites we offer: every suite of the provider that is an AEAD
/// with ECDHE (all of rustls' suites are; the filter keeps the claim checked).
fn allowed_suites() -> Vec<SupportedCipherSuite> {
    provider::ALL_CIPHER_SUITES
        .iter()
        .copied()
        .filter(|s| {
            let name = format!("{:?}", s.suite());
            name.starts_with("TLS13_")
                || (name.starts_with("TLS_ECDHE_") && (name.contains("_GCM_") || name.contains("CHACHA20")))
        })
        .collect()
}

/// Builds the server configuration from PEM files. The key file must be
/// owner-only, and a development key is accepted only if `dev` allows it.
pub fn server_config(cert_file: &Path, key_file: &Path, dev: DevSecrets<'_>) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificate {
            path: cert_file.into(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            path: cert_file.into(),
            reason: "no certificate in file".into(),
        });
    }
    // The key file's content is never put into an error message.
    let pem = files::read_secret(key_file, "tls.key_file", dev)?;
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| TlsError::PrivateKey {
        path: key_file.into(),
        reason: "not a PEM private key".into(),
    })?;
    let crypto = rustls::crypto::CryptoProvider {
        cipher_suites: allowed_suites(),
        ..provider::default_provider()
    };
    let mut config = ServerConfig::builder_with_provider(Arc::new(crypto))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Paths of the development certificate and key under `data_dir`.
pub fn dev_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("dev-tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// Creates a self-signed certificate for `localhost` and `127.0.0.1` unless one
/// exists. Returns the paths.
pub fn ensure_dev_certificate(data_dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert_path, key_path) = dev_paths(data_dir);
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()])
            .map_err(|e| TlsError::DevCertificate(e.to_string()))?;
    let dir = data_dir.join("dev-tls");
    files::create_private_dir(&dir).map_err(|e| TlsError::DevCertificate(e.to_string()))?;
    let key_pem = zeroize::Zeroizing::new(certified.key_pair.serialize_pem());
    files::write_dev_secret(&key_path, key_pem.as_bytes()).map_err(|e| TlsError::DevCertificate(e.to_string()))?;
    files::write_private(&cert_path, certified.cert.pem().as_bytes())
        .map_err(|e| TlsError::DevCertificate(e.to_string()))?;
    Ok((cert_path, key_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_aead_forward_secret_suites_are_offered() {
        let suites = allowed_suites();
        assert!(suites.len() >= 6);
        for s in suites {
            let name = format!("{:?}", s.suite());
            assert!(name.contains("GCM") || name.contains("CHACHA20_POLY1305"), "{name}");
            assert!(!name.contains("CBC") && !name.starts_with("TLS_RSA_"), "{name}");
            assert!(name.starts_with("TLS13_") || name.starts_with("TLS_ECDHE_"), "{name}");
        }
    }

    #[test]
    fn dev_certificate_loads_into_a_server_config() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = ensure_dev_certificate(dir.path()).unwrap();
        assert!(server_config(&cert, &key, DevSecrets::Allowed).is_ok());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        let production = DevSecrets::Refused { data_dir: dir.path() };
        let copy = tempfile::tempdir().unwrap();
        let copied = copy.path().join("key.pem");
        std::fs::copy(&key, &copied).unwrap();
        for key in [&key, &copied] {
            let err = server_config(&cert, key, production).unwrap_err();
            assert!(
                matches!(err, TlsError::KeyFile(SecretFileError::DevGenerated { .. })),
                "{err}"
            );
        }
        std::fs::set_permissions(&copied, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = server_config(&cert, &copied, DevSecrets::Allowed)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("0644") && err.contains(&copied.display().to_string()),
            "{err}"
        );
    }
}
