//! The in-memory CVC holder: a CVC collected at tokenization waits here, for at
//! most a short TTL, until the first payment with that token takes it.
//!
//! Invariants: a CVC is never written to disk or database (PCI DSS 3.2.2
//! forbids storing it after authorization); in memory it is held encrypted
//! (AES-256-GCM under a random per-process key, the token id as associated
//! data), so a heap dump or core file shows no CVC in the clear, and a restart
//! forgets them all. Each CVC can be taken at most once; expired entries are
//! never returned; the holder never holds more than its capacity.
//!
//! # Shares
//!
//! The holder is shared fairly ([`CvcLimits`], [`CvcOwner`]): each merchant
//! (per mode, so test traffic never evicts live CVCs) may hold at most its
//! share, and each publishable key at most its own, smaller share inside its
//! merchant's. A publishable key is public, so it is where a flood comes from;
//! secret and restricted keys are the merchant's servers and draw on the
//! merchant's share. When an owner's share is full, its expired entries go
//! first, then its own oldest (its key's, else its merchant's): a flood
//! through a publishable key evicts that key's own CVCs (another of its
//! merchant's only while the key holds none and the merchant's share is
//! full), never another merchant's. Evicting a CVC means the first payment
//! with that token goes without one, as after expiry. The capacity stays a
//! hard bound: when the whole holder is full, a newcomer evicts its own
//! oldest in the same way, and is refused ([`VaultError::CvcStoreFull`], a
//! `503`) only if its merchant holds none.
//!
//! Sizing: shares are ceilings, not reservations, and may add up to more than
//! the capacity. The defaults (a tenth of the capacity per merchant, a
//! twentieth per publishable key) suit many merchants of similar size; a
//! gateway with one large merchant raises `vault.cvc_per_merchant` (up to the
//! capacity), which lets that merchant fill that much and leaves the others
//! the rest. The bookkeeping is in [`ledger`]: every operation O(log n), the
//! only full scan the periodic [`CvcStore::purge_expired`].

mod ledger;
mod shares;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};
use zeroize::Zeroize;

use super::cipher::{self, KEY_LEN};
use super::error::VaultError;
use crate::domain::card::Cvc;
use crate::domain::random::{self, RandomError};
use ledger::Ledger;
pub use shares::{CvcLimits, CvcLimitsError, CvcOwner, DEFAULT_CAPACITY};

/// How long an untaken CVC is kept by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10 * 60);
/// Longest TTL accepted; longer settings are capped to it.
pub const MAX_TTL: Duration = Duration::from_secs(60 * 60);

/// One held CVC: `nonce || ciphertext || tag` under the process key.
struct SealedCvc(Vec<u8>);

impl Drop for SealedCvc {
    fn drop(&mut self) {
        // Ciphertext only, but nothing of a CVC should outlive its entry.
        self.0.zeroize();
    }
}

/// Holds CVCs by token id. Safe to share between threads (`Arc<CvcStore>`).
pub struct CvcStore {
    /// Random per process, never exported: a restart makes old entries moot.
    key: SecretBox<[u8; KEY_LEN]>,
    /// A std `Mutex` is enough: critical sections are a few map operations,
    /// never held across an `.await` or a cipher call.
    ledger: Mutex<Ledger<SealedCvc>>,
    ttl: Duration,
    limits: CvcLimits,
}

impl CvcStore {
    /// An empty store with a fresh random key, holding at most `capacity` CVCs
    /// (shares derived from it: [`CvcLimits::with_capacity`]) for `ttl` each
    /// (capped at [`MAX_TTL`]).
    pub fn new(ttl: Duration, capacity: usize) -> Result<Self, RandomError> {
        Self::with_limits(ttl, CvcLimits::with_capacity(capacity))
    }

    /// An empty store with a fresh random key and the given limits.
    pub fn with_limits(ttl: Duration, limits: CvcLimits) -> Result<Self, RandomError> {
        let mut key = SecretBox::new(Box::new([0u8; KEY_LEN]));
        random::fill(key.expose_secret_mut())?;
        Ok(Self {
            key,
            ledger: Mutex::new(Ledger::new()),
            ttl: ttl.min(MAX_TTL),
            limits,
        })
    }

    /// Holds `cvc` for `token_id` until taken or expired, replacing any CVC
    /// already held for that token, within `owner`'s shares: when one is
    /// full, the owner's expired and then oldest CVCs make room. Fails with
    /// [`VaultError::CvcStoreFull`] only when the whole store is full and
    /// `owner`'s merchant holds nothing to give up.
    pub fn put(&self, token_id: &str, owner: &CvcOwner, cvc: Cvc) -> Result<(), VaultError> {
        self.put_at(token_id, owner, cvc, Instant::now())
    }

    /// Removes and returns the CVC held for `token_id`, if any and not expired.
    /// A second call returns `None`.
    pub fn take(&self, token_id: &str) -> Result<Option<Cvc>, VaultError> {
        self.take_at(token_id, Instant::now())
    }

    /// Drops every expired entry; returns how many were dropped. Call it
    /// periodically; `put` also drops a full share's expired entries.
    pub fn purge_expired(&self) -> usize {
        self.lock().purge_expired(Instant::now())
    }

    /// Number of entries held, expired or not.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn limits(&self) -> CvcLimits {
        self.limits
    }

    fn put_at(&self, token_id: &str, owner: &CvcOwner, cvc: Cvc, now: Instant) -> Result<(), VaultError> {
        let sealed = SealedCvc(cipher::seal(
            self.key.expose_secret(),
            token_id.as_bytes(),
            cvc.expose().as_bytes(),
        )?);
        drop(cvc);
        // Cannot overflow with ttl ≤ MAX_TTL; if it did, expire at once.
        let expires_at = now.checked_add(self.ttl).unwrap_or(now);
        self.lock()
            .insert(token_id, owner, sealed, expires_at, &self.limits, now)
            .map_err(|ledger::Full| VaultError::CvcStoreFull)
    }

    fn take_at(&self, token_id: &str, now: Instant) -> Result<Option<Cvc>, VaultError> {
        // Removed before use: whatever happens next, it cannot be taken twice.
        let Some(held) = self.lock().remove(token_id) else {
            return Ok(None);
        };
        if now >= held.expires_at {
            return Ok(None);
        }
        let plain = cipher::open(self.key.expose_secret(), token_id.as_bytes(), &held.value.0)?;
        let digits = std::str::from_utf8(&plain).map_err(|_| VaultError::Decrypt)?;
        Cvc::from_parsed(digits).map(Some).ok_or(VaultError::Decrypt)
    }

    fn lock(&self) -> MutexGuard<'_, Ledger<SealedCvc>> {
        // Ledger operations are map inserts and removes, none of which panics
        // part-way, so a lock poisoned by a panic elsewhere is still sound.
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for CvcStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CvcStore")
            .field("len", &self.len())
            .field("limits", &self.limits)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}
