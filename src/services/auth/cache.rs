//! A short-lived cache of authentication lookups, and the rule that keeps it
//! exact: a change of authentication state is acknowledged only once no
//! cached copy of the state before it can still be used, on any replica.
//!
//! Every request needs its key, the key's merchant and its client address's
//! lockout; reading them is one indexed query, but on SQLite each read
//! transaction also takes and drops the WAL read locks (system calls and a
//! process-wide mutex) and, under write load, starts from an emptied page
//! cache. Here a caller whose key passed every check is kept for at most
//! [`TTL`], counted from before its read began (so the copy is never older
//! than that), on both the monotonic and the wall clock (a paused VM resumes
//! with expired copies). The authenticator uses a copy only if it passes every
//! check again; a key that is refused for any reason is read from the
//! database each time, exactly like an unknown key, so that timing tells no
//! more than the uniform 401 does.
//!
//! Invariant, which makes revocation take effect "from the very next request,
//! on every replica": whoever changes a key (revocation, rotation), a merchant
//! or a lockout calls `Store::auth_state_changed` after its commit and before
//! it answers. That moves the store's generation of authentication state
//! ([`AuthState`]) on, which empties this process's cache (it follows the
//! generation of its store), waits [`SETTLE`], longer than any copy anywhere
//! may live, and moves it on again. A request that starts after the answer
//! therefore reads the new state, whichever gateway serves it. Unknown keys
//! are never cached (a new key works at once), and the cache holds no key,
//! only its keyed hash.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::domain::api_key::ApiKey;
use crate::domain::merchant::Merchant;
pub use crate::store::auth_state::{AuthState, SETTLE};

/// How long a cached lookup may be used, from the moment its read began.
pub const TTL: Duration = Duration::from_millis(200);
// A change waits until every copy of the state before it has expired.
const _: () = assert!(SETTLE.as_nanos() > TTL.as_nanos());
/// Entries kept at most; when full, expired ones go, then everything.
const CAPACITY: usize = 16_384;

/// When a lookup's read began.
#[derive(Debug, Clone, Copy)]
pub struct ReadStart {
    monotonic: Instant,
    wall: SystemTime,
}

impl ReadStart {
    pub fn now() -> Self {
        Self {
            monotonic: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    fn is_fresh(&self) -> bool {
        let wall_age = SystemTime::now().duration_since(self.wall).unwrap_or(Duration::MAX);
        self.monotonic.elapsed() < TTL && wall_age < TTL
    }
}

/// A verified key and its merchant as read.
#[derive(Debug, Clone)]
pub struct Verified {
    pub key: ApiKey,
    pub merchant: Merchant,
}

struct Entry {
    verified: Verified,
    read: ReadStart,
}

/// The entries, and the generation of authentication state they were kept
/// under.
#[derive(Default)]
struct Entries {
    generation: u64,
    map: HashMap<(String, String), Entry>,
}

/// Lookups by (keyed hash of the key, client address).
#[derive(Default)]
pub struct AuthCache {
    /// The store's generation of authentication state (on its own, for a
    /// cache that follows no store).
    state: Arc<AuthState>,
    entries: Mutex<Entries>,
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthCache")
    }
}

impl AuthCache {
    /// A cache emptied whenever `state` moves on (the store's:
    /// `Store::auth_state`).
    pub fn following(state: Arc<AuthState>) -> Self {
        Self {
            state,
            entries: Mutex::default(),
        }
    }

    /// The entries, emptied first if authentication state changed since
    /// they were kept.
    fn entries(&self) -> Option<MutexGuard<'_, Entries>> {
        let mut entries = self.entries.lock().ok()?;
        let generation = self.state.generation();
        if entries.generation != generation {
            entries.map.clear();
            entries.generation = generation;
        }
        Some(entries)
    }

    /// The key verified for `key_hash` from `client_ip`, if still fresh.
    pub fn get(&self, key_hash: &str, client_ip: &str) -> Option<Verified> {
        let entries = self.entries()?;
        let entry = entries.map.get(&(key_hash.to_owned(), client_ip.to_owned()))?;
        entry.read.is_fresh().then(|| entry.verified.clone())
    }

    /// Keeps a key that passed every check for `client_ip` (the address was
    /// not locked out), read at `read`.
    pub fn put(&self, key_hash: &str, client_ip: &str, verified: &Verified, read: ReadStart) {
        if !read.is_fresh() {
            return;
        }
        let Some(mut entries) = self.entries() else { return };
        if entries.map.len() >= CAPACITY {
            entries.map.retain(|_, e| e.read.is_fresh());
            if entries.map.len() >= CAPACITY {
                entries.map.clear();
            }
        }
        entries.map.insert(
            (key_hash.to_owned(), client_ip.to_owned()),
            Entry {
                verified: verified.clone(),
                read,
            },
        );
    }

    pub fn clear(&self) {
        if let Some(mut entries) = self.entries() {
            entries.map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::api_key::ApiKey;
    use crate::domain::api_key::{KeyKind, Mode};
    use crate::domain::ids::MerchantId;
    use crate::domain::merchant::{Merchant, MerchantName};
    use crate::domain::time::Timestamp;

    fn verified() -> Verified {
        let merchant = MerchantId::generate().unwrap();
        Verified {
            key: ApiKey::for_test(merchant.clone(), KeyKind::Secret, Mode::Test),
            merchant: Merchant {
                id: merchant,
                name: MerchantName::from_trusted("M".into()),
                created_at: Timestamp::now(),
                element_origins: Vec::new(),
                connector: "sandbox".into(),
                live_connector: None,
                frozen: None,
            },
        }
    }

    #[test]
    fn copies_are_per_key_and_address_and_only_while_fresh() {
        let cache = AuthCache::default();
        cache.put("h1", "ip", &verified(), ReadStart::now());
        assert!(cache.get("h1", "ip").is_some());
        assert!(cache.get("h1", "other ip").is_none(), "per client address");
        assert!(cache.get("h2", "ip").is_none());
        let stale = ReadStart {
            monotonic: Instant::now().checked_sub(TTL).unwrap(),
            wall: SystemTime::now(),
        };
        cache.put("h3", "ip", &verified(), stale);
        assert!(cache.get("h3", "ip").is_none(), "a read older than the TTL is not kept");
        cache.clear();
        assert!(cache.get("h1", "ip").is_none());
    }

    #[test]
    fn a_copy_expires_on_either_clock() {
        let paused = ReadStart {
            monotonic: Instant::now(),
            wall: SystemTime::now().checked_sub(TTL).unwrap(),
        };
        assert!(
            !paused.is_fresh(),
            "the wall clock moved on while the monotonic one stood still"
        );
        assert!(ReadStart::now().is_fresh());
        assert!(SETTLE > TTL);
    }

    #[tokio::test]
    async fn a_change_of_authentication_state_empties_the_cache_before_it_is_answered() {
        let state = Arc::new(AuthState::default());
        let cache = AuthCache::following(Arc::clone(&state));
        cache.put("h1", "ip", &verified(), ReadStart::now());
        assert!(cache.get("h1", "ip").is_some());
        let changed = tokio::spawn({
            let state = Arc::clone(&state);
            async move { state.changed().await }
        });
        while state.generation() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(cache.get("h1", "ip").is_none(), "a fresh copy of the old state is gone");
        assert!(!changed.is_finished(), "the change is not answered yet");
        changed.await.unwrap();
        assert_eq!(state.generation(), 2, "moved on again after the wait");
    }
}
