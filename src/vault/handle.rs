//! The vault as the rest of the gateway holds it: the KEK keyring, the
//! fingerprint key and the in-memory CVC holder, shared by every request.
//! `Debug` prints nothing of them.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{CvcStore, Fingerprinter, KekProvider, ResponseAad, Sealed, VaultError};

/// The vault's keys and in-memory state, shared by every request.
pub struct Vault {
    keyring: Arc<dyn KekProvider>,
    fingerprinter: Fingerprinter,
    cvcs: CvcStore,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(***)")
    }
}

impl Vault {
    pub fn new(keyring: Arc<dyn KekProvider>, fingerprinter: Fingerprinter, cvcs: CvcStore) -> Self {
        Self {
            keyring,
            fingerprinter,
            cvcs,
        }
    }

    /// The KEK keyring (webhook signing secrets are sealed under it too).
    pub fn keyring(&self) -> &dyn KekProvider {
        self.keyring.as_ref()
    }

    /// The keyring, shared (for the webhook delivery worker).
    pub fn keyring_arc(&self) -> Arc<dyn KekProvider> {
        Arc::clone(&self.keyring)
    }

    /// Card fingerprints, keyed per merchant.
    pub fn fingerprinter(&self) -> &Fingerprinter {
        &self.fingerprinter
    }

    /// The in-memory CVC holder.
    pub fn cvcs(&self) -> &CvcStore {
        &self.cvcs
    }

    /// Drops expired CVCs (called periodically).
    pub fn purge_expired(&self) -> usize {
        self.cvcs.purge_expired()
    }

    /// Seals a stored idempotent response under the current KEK
    /// (`services::idempotency`): responses can hold secrets too.
    pub fn seal_response(&self, aad: ResponseAad<'_>, plaintext: &[u8]) -> Result<Sealed, VaultError> {
        super::seal(self.keyring.as_ref(), aad, plaintext)
    }

    /// Opens a response sealed by [`Vault::seal_response`] for the same record.
    pub fn open_response(&self, aad: ResponseAad<'_>, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        super::open(self.keyring.as_ref(), aad, sealed)
    }
}
