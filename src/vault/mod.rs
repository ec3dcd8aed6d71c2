//! The card vault: everything that touches card secrets after parsing.
//!
//! Invariants:
//! - A card number is only ever at rest as AES-256-GCM ciphertext under its own
//!   random data key (DEK), bound to its merchant and token id as associated
//!   data ([`envelope`]).
//! - DEKs are stored only wrapped by a versioned key-encryption key (KEK) from a
//!   [`KekProvider`] ([`kek`]); the record stores the version, so KEKs can be
//!   rotated online and retired once every record is re-wrapped.
//! - The CVC is never on disk: it waits, encrypted under a per-process key, in
//!   the bounded, expiring [`CvcStore`] and is handed out once; each merchant
//!   and each publishable key fills at most its own share of it ([`cvc`]).
//! - Card fingerprints are keyed per merchant ([`fingerprint`]), so they neither
//!   reveal the number nor link cards across merchants.
//! - Key material, DEKs and plaintext live in zeroizing memory; no `Debug`
//!   output or error contains them.
//!
//! All encryption goes through one AES-256-GCM helper (RustCrypto `aes-gcm`,
//! random 96-bit nonces from the OS CSPRNG); nothing here implements a cipher.

mod cipher;
pub mod cvc;
pub mod envelope;
mod error;
pub mod fingerprint;
mod handle;
pub mod kek;
mod kek_version;

pub use cvc::{CvcLimits, CvcOwner, CvcStore};
pub use envelope::{open, rewrap, seal, Aad, ConnectionAad, OperatorAad, RecordIdentity, ResponseAad, Sealed};
pub use error::VaultError;
pub use fingerprint::{Fingerprint, Fingerprinter};
pub use handle::Vault;
pub use kek::{Kek, KekError, KekProvider, KekVersion, StaticKeyring};
