//! The fake processor's certificates, made with rcgen: a test CA the
//! connector is told to trust, and leaves that it must accept (for
//! `127.0.0.1`) or refuse (expired; for another host; from a CA nobody
//! trusts).

use std::sync::{Arc, OnceLock};

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

/// Which certificate the fake presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// For 127.0.0.1, from the trusted test CA.
    Valid,
    /// From the trusted CA, but its validity ended in 2021.
    Expired,
    /// From the trusted CA, for `api.stripe.com` only.
    WrongHost,
    /// For 127.0.0.1, from a CA the connector does not trust.
    UntrustedCa,
}

pub struct Certs {
    /// The PEM of the CA the connector trusts.
    pub ca_pem: String,
    valid: Arc<ServerConfig>,
    expired: Arc<ServerConfig>,
    wrong_host: Arc<ServerConfig>,
    untrusted: Arc<ServerConfig>,
    /// The test CA itself, to issue other certificates (the fake PayPal's
    /// webhook signing certificate).
    ca: Certificate,
    ca_key: KeyPair,
}

impl Certs {
    pub fn get() -> &'static Certs {
        static CERTS: OnceLock<Certs> = OnceLock::new();
        CERTS.get_or_init(|| {
            let (ca, ca_key) = new_ca("paywarden fake Stripe CA");
            let (other, other_key) = new_ca("an untrusted CA");
            let local = || vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
            Certs {
                ca_pem: ca.pem(),
                valid: server(leaf(local(), false, &ca, &ca_key)),
                expired: server(leaf(local(), true, &ca, &ca_key)),
                wrong_host: server(leaf(vec!["api.stripe.com".to_owned()], false, &ca, &ca_key)),
                untrusted: server(leaf(local(), false, &other, &other_key)),
                ca,
                ca_key,
            }
        })
    }

    /// A PEM certificate for `names` and `key`'s public key, from the test CA.
    pub fn issue(&self, names: Vec<String>, key: &KeyPair) -> String {
        CertificateParams::new(names)
            .unwrap()
            .signed_by(key, &self.ca, &self.ca_key)
            .unwrap()
            .pem()
    }

    pub fn config(&self, presented: Presented) -> Arc<ServerConfig> {
        Arc::clone(match presented {
            Presented::Valid => &self.valid,
            Presented::Expired => &self.expired,
            Presented::WrongHost => &self.wrong_host,
            Presented::UntrustedCa => &self.untrusted,
        })
    }
}

fn new_ca(name: &str) -> (Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    (params.self_signed(&key).unwrap(), key)
}

fn leaf(names: Vec<String>, expired: bool, ca: &Certificate, ca_key: &KeyPair) -> (Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(names).unwrap();
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    (params.signed_by(&key, ca, ca_key).unwrap(), key)
}

fn server((cert, key): (Certificate, KeyPair)) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    // HTTP/1.1 with `Connection: close`: every call is a connection of its
    // own, so a fault can cut exactly one.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}
