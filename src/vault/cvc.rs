//! The in-memory CVC holder: a CVC collected at tokenization waits here, for at
//! most a short TTL, until the first payment with that token takes it.
//!
//! Invariants: a CVC is never written to disk or database (PCI DSS 3.2.2
//! forbids storing it after authorization); in memory it is held encrypted
//! (AES-256-GCM under a random per-process key, the token id as associated
//! data), so a heap dump or core file shows no CVC in the clear, and a restart
//! forgets them all. Each CVC can be taken at most once; expired entries are
//! never returned; the store never holds more than its capacity.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};
use zeroize::Zeroize;

use super::cipher::{self, KEY_LEN};
use super::error::VaultError;
use crate::domain::card::Cvc;
use crate::domain::random::{self, RandomError};

/// How long an untaken CVC is kept by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10 * 60);
/// Longest TTL accepted; longer settings are capped to it.
pub const MAX_TTL: Duration = Duration::from_secs(60 * 60);
/// Default maximum number of CVCs held at once.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// One held CVC: `nonce || ciphertext || tag` under the process key.
struct Entry {
    sealed: Vec<u8>,
    expires_at: Instant,
}

impl Drop for Entry {
    fn drop(&mut self) {
        // Ciphertext only, but nothing of a CVC should outlive its entry.
        self.sealed.zeroize();
    }
}

/// Holds CVCs by token id. Safe to share between threads (`Arc<CvcStore>`).
pub struct CvcStore {
    /// Random per process, never exported: a restart makes old entries moot.
    key: SecretBox<[u8; KEY_LEN]>,
    /// A std `Mutex` is enough: critical sections are a map operation, never
    /// held across an `.await` or a cipher call.
    entries: Mutex<HashMap<String, Entry>>,
    ttl: Duration,
    capacity: usize,
}

impl CvcStore {
    /// An empty store with a fresh random key, holding at most `capacity` CVCs
    /// for `ttl` each (capped at [`MAX_TTL`]).
    pub fn new(ttl: Duration, capacity: usize) -> Result<Self, RandomError> {
        let mut key = SecretBox::new(Box::new([0u8; KEY_LEN]));
        random::fill(key.expose_secret_mut())?;
        Ok(Self {
            key,
            entries: Mutex::new(HashMap::new()),
            ttl: ttl.min(MAX_TTL),
            capacity,
        })
    }

    /// Holds `cvc` for `token_id` until taken or expired, replacing any CVC
    /// already held for that token. When full, expired entries are purged
    /// first; if none were, fails with [`VaultError::CvcStoreFull`] rather
    /// than evicting another customer's CVC.
    pub fn put(&self, token_id: &str, cvc: Cvc) -> Result<(), VaultError> {
        self.put_at(token_id, cvc, Instant::now())
    }

    /// Removes and returns the CVC held for `token_id`, if any and not expired.
    /// A second call returns `None`.
    pub fn take(&self, token_id: &str) -> Result<Option<Cvc>, VaultError> {
        self.take_at(token_id, Instant::now())
    }

    /// Drops every expired entry; returns how many were dropped. Call it
    /// periodically; `put` also calls it when the store is full.
    pub fn purge_expired(&self) -> usize {
        purge(&mut self.lock(), Instant::now())
    }

    /// Number of entries held, expired or not.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn put_at(&self, token_id: &str, cvc: Cvc, now: Instant) -> Result<(), VaultError> {
        let sealed = cipher::seal(self.key.expose_secret(), token_id.as_bytes(), cvc.expose().as_bytes())?;
        drop(cvc);
        let entry = Entry {
            sealed,
            // Cannot overflow with ttl ≤ MAX_TTL; if it did, expire at once.
            expires_at: now.checked_add(self.ttl).unwrap_or(now),
        };
        let mut entries = self.lock();
        if !entries.contains_key(token_id) && entries.len() >= self.capacity {
            purge(&mut entries, now);
            if entries.len() >= self.capacity {
                return Err(VaultError::CvcStoreFull);
            }
        }
        entries.insert(token_id.to_owned(), entry);
        Ok(())
    }

    fn take_at(&self, token_id: &str, now: Instant) -> Result<Option<Cvc>, VaultError> {
        // Removed before use: whatever happens next, it cannot be taken twice.
        let Some(entry) = self.lock().remove(token_id) else {
            return Ok(None);
        };
        if now >= entry.expires_at {
            return Ok(None);
        }
        let plain = cipher::open(self.key.expose_secret(), token_id.as_bytes(), &entry.sealed)?;
        let digits = std::str::from_utf8(&plain).map_err(|_| VaultError::Decrypt)?;
        Cvc::from_parsed(digits).map(Some).ok_or(VaultError::Decrypt)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // A panic elsewhere cannot leave the map half-updated (each operation is
        // a single insert/remove/retain), so a poisoned lock is still sound.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn purge(entries: &mut HashMap<String, Entry>, now: Instant) -> usize {
    let before = entries.len();
    entries.retain(|_, e| now < e.expires_at);
    before - entries.len()
}

impl fmt::Debug for CvcStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CvcStore")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::card::CardBrand;

    fn cvc(s: &str) -> Cvc {
        Cvc::parse(s, if s.len() == 4 { CardBrand::Amex } else { CardBrand::Visa }).unwrap()
    }

    #[test]
    fn take_returns_the_cvc_once() {
        let store = CvcStore::new(DEFAULT_TTL, 10).unwrap();
        store.put("tok_1", cvc("123")).unwrap();
        store.put("tok_2", cvc("4567")).unwrap();
        assert_eq!(store.take("tok_1").unwrap().unwrap().expose(), "123");
        assert!(store.take("tok_1").unwrap().is_none());
        assert_eq!(store.take("tok_2").unwrap().unwrap().expose(), "4567");
        assert!(store.take("tok_3").unwrap().is_none());
        assert!(store.is_empty());
    }

    #[test]
    fn ttl_is_capped() {
        let store = CvcStore::new(Duration::MAX, 1).unwrap();
        assert_eq!(store.ttl, MAX_TTL);
        store.put("tok_1", cvc("123")).unwrap();
        assert!(store.take_at("tok_1", Instant::now() + MAX_TTL).unwrap().is_none());
    }

    #[test]
    fn putting_again_replaces() {
        let store = CvcStore::new(DEFAULT_TTL, 1).unwrap();
        store.put("tok_1", cvc("123")).unwrap();
        store.put("tok_1", cvc("999")).unwrap();
        assert_eq!(store.len(), 1);
        assert_eq!(store.take("tok_1").unwrap().unwrap().expose(), "999");
    }

    #[test]
    fn expired_entries_are_never_returned_and_are_purged() {
        let store = CvcStore::new(Duration::from_secs(600), 10).unwrap();
        let t0 = Instant::now();
        store.put_at("tok_1", cvc("123"), t0).unwrap();
        store.put_at("tok_2", cvc("456"), t0).unwrap();
        store
            .put_at("tok_3", cvc("789"), t0 + Duration::from_secs(300))
            .unwrap();
        assert!(store.take_at("tok_1", t0 + Duration::from_secs(600)).unwrap().is_none());
        assert_eq!(store.len(), 2, "an expired take still destroys the entry");
        assert_eq!(purge(&mut store.lock(), t0 + Duration::from_secs(601)), 1);
        assert_eq!(
            store
                .take_at("tok_3", t0 + Duration::from_secs(601))
                .unwrap()
                .unwrap()
                .expose(),
            "789"
        );
    }

    #[test]
    fn capacity_is_a_hard_bound_after_purging() {
        let store = CvcStore::new(Duration::from_secs(60), 2).unwrap();
        let t0 = Instant::now();
        store.put_at("tok_1", cvc("111"), t0).unwrap();
        store.put_at("tok_2", cvc("222"), t0 + Duration::from_secs(30)).unwrap();
        assert!(matches!(
            store.put_at("tok_3", cvc("333"), t0 + Duration::from_secs(1)),
            Err(VaultError::CvcStoreFull)
        ));
        assert_eq!(store.len(), 2);
        // Once tok_1 has expired, room is made by purging it.
        store.put_at("tok_3", cvc("333"), t0 + Duration::from_secs(61)).unwrap();
        assert_eq!(store.len(), 2);
        assert!(store.take_at("tok_1", t0 + Duration::from_secs(61)).unwrap().is_none());
    }

    #[test]
    fn held_encrypted_and_bound_to_the_token() {
        let store = CvcStore::new(DEFAULT_TTL, 10).unwrap();
        store.put("tok_1", cvc("123")).unwrap();
        store.put("tok_2", cvc("456")).unwrap();
        {
            let mut entries = store.lock();
            let sealed = entries.get("tok_1").unwrap().sealed.clone();
            assert!(!sealed.windows(3).any(|w| w == b"123"));
            // Moving one token's ciphertext under another's id does not decrypt.
            entries.get_mut("tok_2").unwrap().sealed = sealed;
        }
        assert!(matches!(store.take("tok_2"), Err(VaultError::Decrypt)));
        assert!(!format!("{store:?}").contains("123"));
    }

    #[test]
    fn shared_between_threads() {
        let store = Arc::new(CvcStore::new(DEFAULT_TTL, 1000).unwrap());
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let id = format!("tok_{t}_{i}");
                        store.put(&id, cvc("321")).unwrap();
                        assert_eq!(store.take(&id).unwrap().unwrap().expose(), "321");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(store.is_empty());
    }
}
