//! How a client address appears in alerts: as a subject, `ip:` and 128 bits
//! of an HMAC of its bucket address (IPv4 as is, IPv6 its /64) under a key
//! derived from the pepper, so the anomalies table and its events never hold
//! an address; as evidence, its network (IPv4 /24, IPv6 /48), which says as
//! much as a merchant needs to recognise its own traffic.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};
use sha2::Sha256;

use crate::domain::restrictions::canonical;
use crate::services::rate_limit::client_bucket_address;

/// The derivation label of the subject key.
pub const SUBJECT_KEY_LABEL: &[u8] = b"paywarden anomaly subject key v1";

/// The key of address subjects. Debug prints nothing.
pub struct SubjectKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubjectKey(***)")
    }
}

impl SubjectKey {
    pub fn derive(pepper: &SecretBox<[u8; 32]>) -> Self {
        let mut key = SecretBox::new(Box::new([0u8; 32]));
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(pepper.expose_secret()) {
            mac.update(SUBJECT_KEY_LABEL);
            key.expose_secret_mut().copy_from_slice(&mac.finalize().into_bytes());
        }
        Self(key)
    }

    /// The subject of `ip`'s alerts and throttles.
    pub fn address(&self, ip: IpAddr) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.expose_secret()) else {
            return "ip:".to_owned();
        };
        match client_bucket_address(ip) {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        let digest = mac.finalize().into_bytes();
        format!("ip:{}", hex::encode(digest.get(..16).unwrap_or_default()))
    }
}

/// The network of `ip` shown as evidence: IPv4 /24, IPv6 /48.
pub fn network(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let [a, b, c, ..] = v6.segments();
            let prefix = std::net::Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0);
            format!("{prefix}/48")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_hide_the_address_and_networks_truncate_it() {
        let key = SubjectKey::derive(&SecretBox::new(Box::new([1u8; 32])));
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let subject = key.address(a);
        assert!(subject.starts_with("ip:") && !subject.contains("203"));
        assert_eq!(subject.len(), 3 + 32);
        assert_eq!(subject, key.address("::ffff:203.0.113.7".parse().unwrap()));
        assert_ne!(subject, key.address("203.0.113.8".parse().unwrap()));
        assert_eq!(network(a), "203.0.113.0/24");
        assert_eq!(network("2001:db8:1:2::5".parse().unwrap()), "2001:db8:1::/48");
        assert!(!format!("{key:?}").contains('1'));
    }
}
