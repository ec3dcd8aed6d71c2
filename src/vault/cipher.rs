//! AES-256-GCM (RustCrypto `aes-gcm`) with a fresh random 96-bit nonce per
//! message: the one primitive every layer of the vault uses.
//!
//! Layout of a sealed message: `nonce (12) || ciphertext || tag (16)`.
//! Invariants: every encryption draws its nonce from the OS CSPRNG, so a key is
//! safe for about 2^32 messages; decrypted bytes are returned only inside
//! `Zeroizing` and only after the tag has been verified.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::{Zeroize, Zeroizing};

use super::error::VaultError;
use crate::domain::random;

/// AES-256 key length.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Bytes a sealed message adds to its plaintext.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Encrypts `plaintext` under `key`, authenticating `aad` as well.
pub fn seal(key: &[u8; KEY_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| VaultError::Encrypt)?;
    let nonce = random::bytes::<NONCE_LEN>()?;
    // Sized up front so the buffer, which briefly holds plaintext, never reallocates.
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = match out.get_mut(NONCE_LEN..) {
        Some(body) => cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, body)
            .ok(),
        None => None,
    };
    match tag {
        Some(tag) => {
            out.extend_from_slice(&tag);
            Ok(out)
        }
        None => {
            out.zeroize();
            Err(VaultError::Encrypt)
        }
    }
}

/// Verifies and decrypts a message produced by [`seal`] with the same `aad`.
pub fn open(key: &[u8; KEY_LEN], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let body_len = sealed
        .len()
        .checked_sub(OVERHEAD)
        .ok_or(VaultError::Malformed("too short"))?;
    let (nonce, rest) = sealed
        .split_at_checked(NONCE_LEN)
        .ok_or(VaultError::Malformed("too short"))?;
    let (body, tag) = rest
        .split_at_checked(body_len)
        .ok_or(VaultError::Malformed("too short"))?;
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| VaultError::Decrypt)?;
    let mut buf = Zeroizing::new(body.to_vec());
    cipher
        .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, &mut buf, Tag::from_slice(tag))
        .map_err(|_| VaultError::Decrypt)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fresh_nonces() {
        let key = [9u8; KEY_LEN];
        let a = seal(&key, b"ctx", b"hello").unwrap();
        let b = seal(&key, b"ctx", b"hello").unwrap();
        assert_eq!(a.len(), OVERHEAD + 5);
        assert_ne!(a, b);
        assert_eq!(open(&key, b"ctx", &a).unwrap().as_slice(), b"hello");
        assert!(matches!(open(&key, b"other", &a), Err(VaultError::Decrypt)));
        assert!(matches!(open(&[8u8; KEY_LEN], b"ctx", &a), Err(VaultError::Decrypt)));
        assert!(matches!(
            open(&key, b"ctx", &a[..OVERHEAD - 1]),
            Err(VaultError::Malformed(_))
        ));
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let key = [1u8; KEY_LEN];
        let sealed = seal(&key, b"", b"4242424242424242").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(open(&key, b"", &bad).is_err(), "byte {i}");
        }
    }

    #[test]
    fn empty_plaintext_is_fine() {
        let key = [2u8; KEY_LEN];
        let sealed = seal(&key, b"x", b"").unwrap();
        assert!(open(&key, b"x", &sealed).unwrap().is_empty());
    }
}
