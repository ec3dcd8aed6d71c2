//! PayPal's side of webhook signatures, for the tests: an RSA key (made once
//! per run with the `openssl` CLI, as ring cannot generate RSA keys), its
//! certificate for `messageverificationcerts.sandbox.paypal.com` from the test
//! CA (served by the fake at [`CERT_PATH`]), and deliveries signed as PayPal
//! documents: RSA PKCS#1 v1.5 with SHA-256 over
//! `transmission_id|transmission_time|webhook_id|crc32(body)`.

use std::process::Command;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::SigningKey;
use rustls::SignatureScheme;

use super::super::fake_stripe::certs::Certs;

/// Where the fake serves the signing certificate.
pub const CERT_PATH: &str = "/v1/notifications/certs/CERT-360caa42-fca2a594-fake";

pub struct Signer {
    key: Arc<dyn SigningKey>,
    /// The PEM the fake serves.
    pub cert_pem: String,
}

impl Signer {
    pub fn get() -> &'static Signer {
        static SIGNER: OnceLock<Signer> = OnceLock::new();
        SIGNER.get_or_init(|| {
            let out = Command::new("openssl")
                .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
                .output()
                .expect("openssl makes the test RSA key");
            assert!(out.status.success(), "openssl genpkey failed");
            // PEM output is PKCS#8 (DER output would be PKCS#1).
            let der = PrivatePkcs8KeyDer::from_pem_slice(&out.stdout)
                .unwrap()
                .secret_pkcs8_der()
                .to_vec();
            let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
                &PrivatePkcs8KeyDer::from(der.as_slice()),
                &rcgen::PKCS_RSA_SHA256,
            )
            .unwrap();
            let cert_pem = Certs::get().issue(vec!["messageverificationcerts.sandbox.paypal.com".to_owned()], &pair);
            let key =
                rustls::crypto::ring::sign::any_supported_type(&PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)))
                    .unwrap();
            Signer { key, cert_pem }
        })
    }

    /// The headers of a delivery of `body` to the subscription `webhook_id`,
    /// sent at `time` (RFC 3339), its certificate at `cert_url`.
    pub fn headers(&self, webhook_id: &str, time: &str, cert_url: &str, body: &[u8]) -> Vec<(String, String)> {
        let id = format!("{:08x}-d67a-11e5-baa3-778b53f4ae55", crc32fast::hash(body));
        let message = format!("{id}|{time}|{webhook_id}|{}", crc32fast::hash(body));
        let signer = self.key.choose_scheme(&[SignatureScheme::RSA_PKCS1_SHA256]).unwrap();
        let signature = signer.sign(message.as_bytes()).unwrap();
        vec![
            ("PAYPAL-TRANSMISSION-ID".into(), id),
            ("PAYPAL-TRANSMISSION-TIME".into(), time.to_owned()),
            (
                "PAYPAL-TRANSMISSION-SIG".into(),
                base64::engine::general_purpose::STANDARD.encode(signature),
            ),
            ("PAYPAL-CERT-URL".into(), cert_url.to_owned()),
            ("PAYPAL-AUTH-ALGO".into(), "SHA256withRSA".into()),
        ]
    }
}
