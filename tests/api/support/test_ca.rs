//! The tests' own CA, which signs the certificates of webhook receivers.

use std::path::PathBuf;

use super::fixtures::write_secret_file;

/// A CA of the tests' own that signs the certificates of webhook receivers
/// (`receiver.rs`); every test gateway trusts it through its webhook
/// settings, exactly as an operator's `webhooks.extra_root_ca_file` does.
pub struct TestCa {
    pub ca_pem: String,
    /// A leaf for `localhost` and `127.0.0.1`, signed by the CA.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The CA certificate as a file (for the real binary's configuration).
    pub ca_file: PathBuf,
}

pub fn test_ca() -> &'static TestCa {
    static CA: std::sync::OnceLock<TestCa> = std::sync::OnceLock::new();
    CA.get_or_init(|| {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "paywarden webhook test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let dir = std::env::temp_dir().join(format!(
            "paywarden-webhook-ca-{}-{}",
            std::process::id(),
            paywarden::domain::random::base62_string(8).unwrap()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert_file, key_file, ca_file) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("ca.pem"));
        std::fs::write(&cert_file, leaf.pem()).unwrap();
        write_secret_file(&key_file, &leaf_key.serialize_pem());
        std::fs::write(&ca_file, ca.pem()).unwrap();
        TestCa {
            ca_pem: ca.pem(),
            cert_file,
            key_file,
            ca_file,
        }
    })
}
