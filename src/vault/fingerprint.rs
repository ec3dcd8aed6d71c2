//! Card fingerprints: a short, stable identifier of a card number, for spotting
//! the same card twice without decrypting anything.
//!
//! `fingerprint = base62(HMAC-SHA-256(k_t, digits))[..16]`, where the
//! per-tenant key is `k_t = HMAC-SHA-256(server secret, "fingerprint/" ||
//! merchant id)` in live mode and `HMAC-SHA-256(server secret,
//! "fingerprint/test/" || merchant id)` in test mode (merchant ids start with
//! `mer_`, so the two labels never meet).
//!
//! Invariants: the same card always gives the same fingerprint for one
//! merchant and mode, and unrelated fingerprints for two merchants or for the
//! two modes of one merchant, so fingerprints cannot be correlated across
//! tenants: test mode takes any Luhn-valid number, and a test key must not be
//! able to compute the fingerprints that live tokens carry. Without the server secret a fingerprint
//! cannot be brute-forced back to a card number (the PAN space is small enough
//! that an unkeyed hash could be).

use std::fmt;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::domain::api_key::Mode;
use crate::domain::card::CardNumber;
use crate::domain::random::BASE62;
use crate::domain::tenant::Tenant;

/// Length of the server secret in bytes.
pub const FINGERPRINT_SECRET_LEN: usize = 32;
/// Characters in a fingerprint: 16 base62 characters carry ≈95 bits.
pub const FINGERPRINT_LEN: usize = 16;

/// A card fingerprint, e.g. `j3pLPVaulffPkWVc`. Not secret.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Rebuilds a fingerprint read back from our own storage.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.0)
    }
}

/// Holds the server-wide fingerprint secret; `Debug` prints nothing of it.
pub struct Fingerprinter {
    secret: SecretBox<[u8; FINGERPRINT_SECRET_LEN]>,
}

impl Fingerprinter {
    pub fn new(secret: SecretBox<[u8; FINGERPRINT_SECRET_LEN]>) -> Self {
        Self { secret }
    }

    /// The fingerprint of `card` as seen by `tenant` (a merchant's mode).
    pub fn fingerprint(&self, tenant: &Tenant, card: &CardNumber) -> Fingerprint {
        let tenant_key = self.tenant_key(tenant);
        let tag = hmac(tenant_key.as_slice(), &[card.expose_digits().as_bytes()]);
        Fingerprint(encode(&tag))
    }

    /// A keyed hash of a customer's attribute (`label` names which, e.g.
    /// `ip` or `email`) for the fraud signals: 128 bits of HMAC-SHA-256,
    /// hex, under a key of the tenant and label (derived from the server
    /// secret under labels no card fingerprint key uses), so the values
    /// cannot be recovered by hashing guesses without the secret, nor
    /// matched across merchants, modes or labels.
    pub fn signal_key(&self, tenant: &Tenant, label: &str, value: &[u8]) -> String {
        let key = Zeroizing::new(hmac(
            self.secret.expose_secret(),
            &[
                b"fraud-signal/",
                tenant.mode_str().as_bytes(),
                b"/",
                label.as_bytes(),
                b"/",
                tenant.merchant_str().as_bytes(),
            ],
        ));
        let tag = hmac(key.as_slice(), &[value]);
        hex::encode(tag.get(..16).unwrap_or_default())
    }

    fn tenant_key(&self, tenant: &Tenant) -> Zeroizing<[u8; 32]> {
        // Live keeps the label fingerprints were first made with.
        let label: &[u8] = match tenant.mode() {
            Mode::Live => b"fingerprint/",
            Mode::Test => b"fingerprint/test/",
        };
        Zeroizing::new(hmac(
            self.secret.expose_secret(),
            &[label, tenant.merchant_str().as_bytes()],
        ))
    }
}

impl fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fingerprinter(***)")
    }
}

/// HMAC-SHA-256 of the concatenated `parts` under `key`.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // new_from_slice only fails for invalid key lengths, which HMAC has none of.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The first 16 bytes of `tag` as a big-endian number, written as its 16 lowest
/// base62 digits, least significant first (≈95 of the 128 bits survive).
fn encode(tag: &[u8; 32]) -> String {
    let mut head = [0u8; 16];
    head.iter_mut().zip(tag.iter()).for_each(|(h, t)| *h = *t);
    let mut value = u128::from_be_bytes(head);
    let mut out = String::with_capacity(FINGERPRINT_LEN);
    for _ in 0..FINGERPRINT_LEN {
        let digit = usize::try_from(value % 62).unwrap_or(0);
        out.push(BASE62.get(digit).map_or('0', |&b| char::from(b)));
        value /= 62;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::MerchantId;
    use crate::domain::random::is_base62;

    fn live(merchant: &MerchantId) -> Tenant {
        Tenant::new(merchant.clone(), Mode::Live)
    }

    fn test(merchant: &MerchantId) -> Tenant {
        Tenant::new(merchant.clone(), Mode::Test)
    }

    fn fingerprinter(byte: u8) -> Fingerprinter {
        Fingerprinter::new(SecretBox::new(Box::new([byte; FINGERPRINT_SECRET_LEN])))
    }

    #[test]
    fn stable_per_tenant_and_different_across_merchants_and_modes() {
        let fp = fingerprinter(1);
        let (m1, m2) = (MerchantId::generate().unwrap(), MerchantId::generate().unwrap());
        let card = CardNumber::parse("4242424242424242").unwrap();
        let same_card = CardNumber::parse("4242 4242 4242 4242").unwrap();
        let other_card = CardNumber::parse("5555555555554444").unwrap();

        let a = fp.fingerprint(&live(&m1), &card);
        assert_eq!(a.as_str().len(), FINGERPRINT_LEN);
        assert!(is_base62(a.as_str()));
        assert_eq!(a, fp.fingerprint(&live(&m1), &same_card));
        assert_ne!(a, fp.fingerprint(&live(&m2), &card));
        assert_ne!(a, fp.fingerprint(&live(&m1), &other_card));
        assert_ne!(a, fingerprinter(2).fingerprint(&live(&m1), &card));
        assert!(!a.as_str().contains("4242"));
        // A test key cannot compute what a live token's fingerprint is.
        let t = fp.fingerprint(&test(&m1), &card);
        assert_ne!(a, t);
        assert_eq!(t, fp.fingerprint(&test(&m1), &same_card));
        assert_ne!(t, fp.fingerprint(&test(&m2), &card));
    }

    #[test]
    fn known_answer_pins_the_construction() {
        // Guards against an accidental change, which would silently break
        // duplicate detection for every stored card.
        let fp = fingerprinter(7);
        let merchant = MerchantId::from_trusted("mer_000000000000000000000000".into());
        let card = CardNumber::parse("4242424242424242").unwrap();
        // Computed independently (Python `hmac`/`hashlib`, base62 little-end first).
        assert_eq!(fp.fingerprint(&live(&merchant), &card).as_str(), "j3pLPVaulffPkWVc");
        assert_eq!(fp.fingerprint(&test(&merchant), &card).as_str(), "eWfDsBazm0ZFbBAe");
        assert_eq!(format!("{fp:?}"), "Fingerprinter(***)");
    }
}
