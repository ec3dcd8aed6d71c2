//! Keyed hashing of API keys: HMAC-SHA-256 under a server-side pepper.
//!
//! A stolen database therefore yields no usable keys and cannot be brute-forced
//! offline without the pepper. Hash comparison is constant-time.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::api_key::ApiKeySecret;

/// Pepper length in bytes.
pub const PEPPER_LEN: usize = 32;

/// Holds the pepper; `Debug` prints nothing of it.
pub struct KeyHasher {
    pepper: SecretBox<[u8; PEPPER_LEN]>,
}

impl std::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHasher(***)")
    }
}

impl KeyHasher {
    pub fn new(pepper: SecretBox<[u8; PEPPER_LEN]>) -> Self {
        Self { pepper }
    }

    /// Hex HMAC-SHA-256 of the key's plaintext under the pepper.
    pub fn hash(&self, key: &ApiKeySecret) -> String {
        // new_from_slice only fails for invalid key lengths, which HMAC has none of.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.pepper.expose_secret()) else {
            return String::new();
        };
        mac.update(key.expose().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Constant-time equality of two hashes.
    pub fn same(a: &str, b: &str) -> bool {
        !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::api_key::{KeyKind, Mode};

    #[test]
    fn hash_depends_on_pepper_and_key() {
        let a = KeyHasher::new(SecretBox::new(Box::new([1u8; 32])));
        let b = KeyHasher::new(SecretBox::new(Box::new([2u8; 32])));
        let key = ApiKeySecret::generate(KeyKind::Secret, Mode::Test).unwrap();
        let other = ApiKeySecret::generate(KeyKind::Secret, Mode::Test).unwrap();
        assert_eq!(a.hash(&key).len(), 64);
        assert!(KeyHasher::same(&a.hash(&key), &a.hash(&key)));
        assert!(!KeyHasher::same(&a.hash(&key), &b.hash(&key)));
        assert!(!KeyHasher::same(&a.hash(&key), &a.hash(&other)));
        assert!(!a.hash(&key).contains(&key.expose()[8..]));
    }
}
