//! The vault's error type. No variant carries key material, plaintext or
//! ciphertext; messages are safe to log.

use super::kek_version::KekVersion;
use crate::domain::random::RandomError;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The record names a KEK version the keyring does not hold (retired too
    /// early, or a configuration missing an old key).
    #[error("key-encryption key version {0} is not in the keyring")]
    UnknownKekVersion(KekVersion),
    /// Authentication failed: wrong key, wrong record identity (AAD), or data
    /// altered at rest. Deliberately not more specific.
    #[error("decryption failed: the data was altered or does not belong to this record")]
    Decrypt,
    /// Stored bytes do not have the expected shape (encoding or length).
    #[error("sealed data is malformed: {0}")]
    Malformed(&'static str),
    /// The record identity cannot be bound unambiguously.
    #[error("record identity for associated data must be non-empty and must not contain '/'")]
    InvalidAad,
    #[error("encryption failed")]
    Encrypt,
    #[error("the in-memory CVC store is full")]
    CvcStoreFull,
    #[error(transparent)]
    Random(#[from] RandomError),
}
