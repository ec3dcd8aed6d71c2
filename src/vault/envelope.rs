//! Envelope encryption of card data with AES-256-GCM.
//!
//! Each record gets its own random 256-bit data key (DEK) that encrypts the
//! plaintext; the DEK is itself encrypted ("wrapped") by the current
//! key-encryption key (KEK). Both layers authenticate the record's identity as
//! associated data (`paywarden/v1/card/{merchant}/{token}`, and
//! `paywarden/v1/card-dek/…` for the key), so ciphertext copied into another
//! row, or between the two columns, fails to decrypt. Each kind of record has
//! its own label ([`Aad`] for cards, [`ResponseAad`] for stored idempotent
//! responses), so one kind can never be opened as another.
//!
//! Invariants: a DEK encrypts exactly one plaintext and exists unwrapped only in
//! zeroizing memory for the duration of one call; plaintext is returned only
//! after both layers authenticated.
//!
//! KEK rotation is online: make the new KEK current, then [`rewrap`] each
//! record (only the 60-byte wrapped key changes; the ciphertext does not), then
//! retire the old KEK.
//!
//! Crypto-shredding: to destroy a record irrecoverably, the caller deletes (or
//! overwrites) its wrapped DEK; without it the ciphertext is undecryptable,
//! even with the KEK. Copies of the wrapped DEK in backups stay usable until
//! the backups expire or the KEK that wrapped them is destroyed; destroying a
//! KEK version shreds every record still wrapped under it.

use std::fmt;

use base64::Engine;
use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};
use zeroize::Zeroizing;

use super::cipher::{self, KEY_LEN, OVERHEAD};
use super::error::VaultError;
use super::kek::{KekProvider, KekVersion};
use crate::domain::random;

/// Length of a wrapped DEK: nonce + encrypted key + tag.
pub const WRAPPED_DEK_LEN: usize = OVERHEAD + KEY_LEN;

/// The identity of the record being sealed, bound into both layers as
/// associated data. Neither part may be empty or contain `/`, so that two
/// different identities can never produce the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aad<'a> {
    pub token_id: &'a str,
    pub merchant_id: &'a str,
}

/// The identity of a stored idempotent response (`services::idempotency`):
/// its merchant and its record (derived from the client's key and the request
/// MAC). Same rules as [`Aad`]; a different label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseAad<'a> {
    pub merchant_id: &'a str,
    pub record_id: &'a str,
}

/// The identity of a processor connection's sealed credentials
/// (`services::connections`): merchant, mode and connection id. Same rules
/// as [`Aad`]; a label of its own per mode, so credentials sealed for one
/// mode never open as the other's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionAad<'a> {
    pub merchant_id: &'a str,
    pub mode: crate::domain::api_key::Mode,
    pub connection_id: &'a str,
}

/// The identity of an operator's sealed TOTP secret (`services::operators`):
/// the operator id under the fixed namespace `operators` (operators belong
/// to no merchant). Same rules as [`Aad`]; a label of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorAad<'a> {
    pub operator_id: &'a str,
}

/// A record identity that [`seal`], [`open`] and [`rewrap`] bind as associated
/// data. Implemented only in this module ([`Aad`], [`ResponseAad`]), so every
/// kind of record has its own label.
pub trait RecordIdentity: private::Encode + Copy {}

impl RecordIdentity for Aad<'_> {}
impl RecordIdentity for ResponseAad<'_> {}
impl RecordIdentity for ConnectionAad<'_> {}
impl RecordIdentity for OperatorAad<'_> {}

mod private {
    use super::VaultError;

    pub trait Encode {
        /// The associated data of the ciphertext (`dek == false`) or of the
        /// wrapped data key (`dek == true`).
        fn encode(&self, dek: bool) -> Result<Vec<u8>, VaultError>;
    }
}

fn encode_identity(layer: &str, merchant_id: &str, record_id: &str) -> Result<Vec<u8>, VaultError> {
    let valid = |s: &str| !s.is_empty() && !s.contains('/');
    if !valid(record_id) || !valid(merchant_id) {
        return Err(VaultError::InvalidAad);
    }
    Ok(["paywarden/v1/", layer, "/", merchant_id, "/", record_id]
        .concat()
        .into_bytes())
}

impl private::Encode for Aad<'_> {
    fn encode(&self, dek: bool) -> Result<Vec<u8>, VaultError> {
        let layer = if dek { "card-dek" } else { "card" };
        encode_identity(layer, self.merchant_id, self.token_id)
    }
}

impl private::Encode for ResponseAad<'_> {
    fn encode(&self, dek: bool) -> Result<Vec<u8>, VaultError> {
        let layer = if dek {
            "idempotent-response-dek"
        } else {
            "idempotent-response"
        };
        encode_identity(layer, self.merchant_id, self.record_id)
    }
}

impl private::Encode for ConnectionAad<'_> {
    fn encode(&self, dek: bool) -> Result<Vec<u8>, VaultError> {
        use crate::domain::api_key::Mode;
        let layer = match (self.mode, dek) {
            (Mode::Test, false) => "connection-credentials-test",
            (Mode::Test, true) => "connection-credentials-test-dek",
            (Mode::Live, false) => "connection-credentials-live",
            (Mode::Live, true) => "connection-credentials-live-dek",
        };
        encode_identity(layer, self.merchant_id, self.connection_id)
    }
}

impl private::Encode for OperatorAad<'_> {
    fn encode(&self, dek: bool) -> Result<Vec<u8>, VaultError> {
        let layer = if dek { "operator-totp-dek" } else { "operator-totp" };
        encode_identity(layer, "operators", self.operator_id)
    }
}

/// An encrypted record: what is stored, in three columns. Not secret, but
/// `Debug` shows only the version and lengths.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    kek_version: KekVersion,
    /// `nonce || encrypted DEK || tag`, under the KEK.
    wrapped_dek: Vec<u8>,
    /// `nonce || encrypted plaintext || tag`, under the DEK.
    ciphertext: Vec<u8>,
}

impl Sealed {
    /// Rebuilds a record read from storage as raw bytes; checks lengths only
    /// (authenticity is checked by [`open`]).
    pub fn from_bytes(kek_version: KekVersion, wrapped_dek: Vec<u8>, ciphertext: Vec<u8>) -> Result<Self, VaultError> {
        if wrapped_dek.len() != WRAPPED_DEK_LEN {
            return Err(VaultError::Malformed("wrapped data key has the wrong length"));
        }
        if ciphertext.len() < OVERHEAD {
            return Err(VaultError::Malformed("ciphertext is too short"));
        }
        Ok(Self {
            kek_version,
            wrapped_dek,
            ciphertext,
        })
    }

    /// Rebuilds a record read from storage as base64 text (standard alphabet,
    /// padded), as produced by [`Sealed::wrapped_dek_base64`] and
    /// [`Sealed::ciphertext_base64`].
    pub fn from_base64(kek_version: KekVersion, wrapped_dek: &str, ciphertext: &str) -> Result<Self, VaultError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let wrapped = b64
            .decode(wrapped_dek)
            .map_err(|_| VaultError::Malformed("wrapped data key is not base64"))?;
        let ct = b64
            .decode(ciphertext)
            .map_err(|_| VaultError::Malformed("ciphertext is not base64"))?;
        Self::from_bytes(kek_version, wrapped, ct)
    }

    pub fn kek_version(&self) -> KekVersion {
        self.kek_version
    }

    pub fn wrapped_dek(&self) -> &[u8] {
        &self.wrapped_dek
    }

    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    pub fn wrapped_dek_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.wrapped_dek)
    }

    pub fn ciphertext_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ciphertext)
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("kek_version", &self.kek_version)
            .field("wrapped_dek_len", &self.wrapped_dek.len())
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// Encrypts `plaintext` for the record `aad` under a fresh DEK, wrapped by the
/// provider's current KEK.
pub fn seal<P: KekProvider + ?Sized, A: RecordIdentity>(
    keyring: &P,
    aad: A,
    plaintext: &[u8],
) -> Result<Sealed, VaultError> {
    let (kek_version, kek) = keyring.current();
    let mut dek = SecretBox::new(Box::new([0u8; KEY_LEN]));
    random::fill(dek.expose_secret_mut())?;
    let ciphertext = cipher::seal(dek.expose_secret(), &aad.encode(false)?, plaintext)?;
    let wrapped_dek = cipher::seal(kek.expose(), &aad.encode(true)?, dek.expose_secret())?;
    Ok(Sealed {
        kek_version,
        wrapped_dek,
        ciphertext,
    })
}

/// Decrypts a record sealed for the same `aad`. Fails if the KEK version is
/// not held, if either layer was altered, or if the record belongs elsewhere.
pub fn open<P: KekProvider + ?Sized, A: RecordIdentity>(
    keyring: &P,
    aad: A,
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let dek = unwrap_dek(keyring, aad, sealed)?;
    cipher::open(as_key(&dek)?, &aad.encode(false)?, &sealed.ciphertext)
}

/// Re-wraps the record's DEK under KEK `to` (usually the new current version).
/// The ciphertext is carried over unchanged; afterwards the old KEK is no
/// longer needed for this record.
pub fn rewrap<P: KekProvider + ?Sized, A: RecordIdentity>(
    keyring: &P,
    aad: A,
    sealed: &Sealed,
    to: KekVersion,
) -> Result<Sealed, VaultError> {
    let new_kek = keyring.get(to).ok_or(VaultError::UnknownKekVersion(to))?;
    let dek = unwrap_dek(keyring, aad, sealed)?;
    let wrapped_dek = cipher::seal(new_kek.expose(), &aad.encode(true)?, as_key(&dek)?)?;
    Ok(Sealed {
        kek_version: to,
        wrapped_dek,
        ciphertext: sealed.ciphertext.clone(),
    })
}

fn unwrap_dek<P: KekProvider + ?Sized, A: RecordIdentity>(
    keyring: &P,
    aad: A,
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let kek = keyring
        .get(sealed.kek_version)
        .ok_or(VaultError::UnknownKekVersion(sealed.kek_version))?;
    cipher::open(kek.expose(), &aad.encode(true)?, &sealed.wrapped_dek)
}

fn as_key(bytes: &[u8]) -> Result<&[u8; KEY_LEN], VaultError> {
    <&[u8; KEY_LEN]>::try_from(bytes).map_err(|_| VaultError::Malformed("data key has the wrong length"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::kek::{Kek, StaticKeyring};

    const PAN: &[u8] = b"4242424242424242";
    const V1: KekVersion = KekVersion::new(1);
    const V2: KekVersion = KekVersion::new(2);

    fn aad<'a>(merchant_id: &'a str, token_id: &'a str) -> Aad<'a> {
        Aad { token_id, merchant_id }
    }

    fn ring(current: KekVersion, versions: &[KekVersion]) -> StaticKeyring {
        let keys = versions.iter().map(|&v| {
            let byte = u8::try_from(v.get()).unwrap();
            (v, Kek::new(SecretBox::new(Box::new([byte; KEY_LEN]))))
        });
        StaticKeyring::new(current, keys).unwrap()
    }

    #[test]
    fn round_trip_through_storage_encoding() {
        let keyring = ring(V1, &[V1]);
        let a = aad("mer_1", "tok_1");
        let sealed = seal(&keyring, a, PAN).unwrap();
        assert_eq!(sealed.kek_version(), V1);
        assert_eq!(sealed.wrapped_dek().len(), WRAPPED_DEK_LEN);
        let stored = Sealed::from_base64(
            sealed.kek_version(),
            &sealed.wrapped_dek_base64(),
            &sealed.ciphertext_base64(),
        )
        .unwrap();
        assert_eq!(stored, sealed);
        assert_eq!(open(&keyring, a, &stored).unwrap().as_slice(), PAN);
        // Same plaintext, different record key and nonces.
        let again = seal(&keyring, a, PAN).unwrap();
        assert_ne!(again.ciphertext(), sealed.ciphertext());
        assert_ne!(again.wrapped_dek(), sealed.wrapped_dek());
    }

    #[test]
    fn another_records_identity_does_not_open() {
        let keyring = ring(V1, &[V1]);
        let sealed = seal(&keyring, aad("mer_1", "tok_1"), PAN).unwrap();
        for other in [aad("mer_1", "tok_2"), aad("mer_2", "tok_1"), aad("mer_1/tok", "1")] {
            assert!(open(&keyring, other, &sealed).is_err(), "{other:?}");
        }
        assert!(matches!(
            seal(&keyring, aad("mer_1/x", "tok"), PAN),
            Err(VaultError::InvalidAad)
        ));
        assert!(matches!(
            seal(&keyring, aad("mer_1", ""), PAN),
            Err(VaultError::InvalidAad)
        ));
    }

    #[test]
    fn ciphertext_moved_to_another_row_does_not_open() {
        let keyring = ring(V1, &[V1]);
        let (a, b) = (aad("mer_1", "tok_a"), aad("mer_1", "tok_b"));
        let row_a = seal(&keyring, a, PAN).unwrap();
        let row_b = seal(&keyring, b, b"5555555555554444").unwrap();
        let spliced = Sealed::from_bytes(V1, row_b.wrapped_dek().to_vec(), row_a.ciphertext().to_vec()).unwrap();
        assert!(matches!(open(&keyring, b, &spliced), Err(VaultError::Decrypt)));
        assert!(matches!(open(&keyring, a, &spliced), Err(VaultError::Decrypt)));
    }

    #[test]
    fn tampering_with_either_layer_is_detected() {
        let keyring = ring(V1, &[V1]);
        let a = aad("mer_1", "tok_1");
        let sealed = seal(&keyring, a, PAN).unwrap();
        let mut ct = sealed.ciphertext().to_vec();
        ct[20] ^= 0x80;
        let bad_ct = Sealed::from_bytes(V1, sealed.wrapped_dek().to_vec(), ct).unwrap();
        assert!(matches!(open(&keyring, a, &bad_ct), Err(VaultError::Decrypt)));
        let mut wk = sealed.wrapped_dek().to_vec();
        wk[30] ^= 0x01;
        let bad_key = Sealed::from_bytes(V1, wk, sealed.ciphertext().to_vec()).unwrap();
        assert!(matches!(open(&keyring, a, &bad_key), Err(VaultError::Decrypt)));
        assert!(matches!(
            Sealed::from_bytes(V1, vec![0; WRAPPED_DEK_LEN - 1], sealed.ciphertext().to_vec()),
            Err(VaultError::Malformed(_))
        ));
        assert!(Sealed::from_base64(V1, "not base64", &sealed.ciphertext_base64()).is_err());
    }

    #[test]
    fn rewrap_moves_to_the_new_kek_and_the_old_one_can_be_retired() {
        let old_only = ring(V1, &[V1]);
        let a = aad("mer_1", "tok_1");
        let sealed = seal(&old_only, a, PAN).unwrap();

        let rotating = ring(V2, &[V1, V2]);
        let rewrapped = rewrap(&rotating, a, &sealed, rotating.current().0).unwrap();
        assert_eq!(rewrapped.kek_version(), V2);
        assert_eq!(rewrapped.ciphertext(), sealed.ciphertext());
        assert_ne!(rewrapped.wrapped_dek(), sealed.wrapped_dek());

        let new_only = ring(V2, &[V2]);
        assert_eq!(open(&new_only, a, &rewrapped).unwrap().as_slice(), PAN);
        assert!(matches!(open(&new_only, a, &sealed), Err(VaultError::UnknownKekVersion(v)) if v == V1));
        // Re-wrapping needs the record's identity too.
        assert!(rewrap(&rotating, aad("mer_1", "tok_2"), &sealed, V2).is_err());
    }

    #[test]
    fn unknown_kek_version_is_a_clear_error() {
        let keyring = ring(V1, &[V1]);
        let a = aad("mer_1", "tok_1");
        let sealed = seal(&keyring, a, PAN).unwrap();
        let err = rewrap(&keyring, a, &sealed, KekVersion::new(7)).unwrap_err();
        assert!(matches!(err, VaultError::UnknownKekVersion(v) if v.get() == 7));
        assert_eq!(err.to_string(), "key-encryption key version 7 is not in the keyring");
        let elsewhere = Sealed::from_bytes(
            KekVersion::new(7),
            sealed.wrapped_dek().to_vec(),
            sealed.ciphertext().to_vec(),
        );
        assert!(matches!(
            open(&keyring, a, &elsewhere.unwrap()),
            Err(VaultError::UnknownKekVersion(_))
        ));
    }

    #[test]
    fn a_card_and_a_stored_response_of_the_same_identity_do_not_open_as_each_other() {
        let keyring = ring(V1, &[V1]);
        let card = aad("mer_1", "tok_1");
        let response = ResponseAad {
            merchant_id: "mer_1",
            record_id: "tok_1",
        };
        let sealed_card = seal(&keyring, card, PAN).unwrap();
        let sealed_response = seal(&keyring, response, b"{}").unwrap();
        assert!(matches!(
            open(&keyring, response, &sealed_card),
            Err(VaultError::Decrypt)
        ));
        assert!(matches!(
            open(&keyring, card, &sealed_response),
            Err(VaultError::Decrypt)
        ));
        assert_eq!(open(&keyring, response, &sealed_response).unwrap().as_slice(), b"{}");
        let rotating = ring(V2, &[V1, V2]);
        assert!(rewrap(&rotating, card, &sealed_response, V2).is_err());
        let moved = rewrap(&rotating, response, &sealed_response, V2).unwrap();
        assert_eq!(open(&rotating, response, &moved).unwrap().as_slice(), b"{}");
        let slashed = ResponseAad {
            merchant_id: "mer_1",
            record_id: "a/b",
        };
        assert!(matches!(seal(&keyring, slashed, b"{}"), Err(VaultError::InvalidAad)));
    }

    #[test]
    fn works_through_a_trait_object() {
        let keyring: Box<dyn KekProvider> = Box::new(ring(V1, &[V1]));
        let a = aad("mer_1", "tok_1");
        let sealed = seal(keyring.as_ref(), a, PAN).unwrap();
        assert_eq!(open(keyring.as_ref(), a, &sealed).unwrap().as_slice(), PAN);
        assert!(!format!("{sealed:?}").contains(&sealed.ciphertext_base64()));
    }
}
