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
//! or a lockout calls [`settle`] after its commit and before it answers;
//! `settle` empties this process's cache and waits [`SETTLE`], longer than any
//! copy anywhere may live. A request that starts after the answer therefore
//! reads the new state, whichever gateway serves it. Unknown keys are never
//! cached (a new key works at once), and the cache holds no key, only its
//! keyed hash.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::domain::api_key::ApiKey;
use crate::domain::merchant::Merchant;

/// How long a cached lookup may be used, from the moment its read began.
pub const TTL: Duration = Duration::from_millis(200);
/// How long a change of authentication state waits before it is answered:
/// [`TTL`] and a margin for clocks of other replicas running at another rate.
pub const SETTLE: Duration = Duration::from_millis(250);
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

/// Lookups by (keyed hash of the key, client address).
#[derive(Default)]
pub struct AuthCache {
    entries: Mutex<HashMap<(String, String), Entry>>,
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthCache")
    }
}

impl AuthCache {
    /// The key verified for `key_hash` from `client_ip`, if still fresh.
    pub fn get(&self, key_hash: &str, client_ip: &str) -> Option<Verified> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(&(key_hash.to_owned(), client_ip.to_owned()))?;
        entry.read.is_fresh().then(|| entry.verified.clone())
    }

    /// Keeps a key that passed every check for `client_ip` (the address was
    /// not locked out), read at `read`.
    pub fn put(&self, key_hash: &str, client_ip: &str, verified: &Verified, read: ReadStart) {
        if !read.is_fresh() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= CAPACITY {
            entries.retain(|_, e| e.read.is_fresh());
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            (key_hash.to_owned(), client_ip.to_owned()),
            Entry {
                verified: verified.clone(),
                read,
            },
        );
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    /// Empties the cache and waits until no copy of the state before a
    /// just-committed change can be used anywhere. Call it after committing
    /// a change of a key, a merchant or a lockout, before answering.
    pub async fn settle(&self) {
        self.clear();
        tokio::time::sleep(SETTLE).await;
        // Lookups that read the old state just before the commit and were
        // stored after the first clear have expired by now; drop them anyway.
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::api_key::ApiKey;
    use crate::domain::api_key::{KeyKind, Mode};
    use crate::domain::ids::{ApiKeyId, MerchantId};
    use crate::domain::merchant::{Merchant, MerchantName};
    use crate::domain::time::Timestamp;

    fn verified() -> Verified {
        let merchant = MerchantId::generate().unwrap();
        Verified {
            key: ApiKey {
                id: ApiKeyId::generate().unwrap(),
                merchant_id: merchant.clone(),
                kind: KeyKind::Secret,
                mode: Mode::Test,
                prefix: "sk_test_".into(),
                last4: "abcd".into(),
                permissions: Vec::new(),
                restrictions: Default::default(),
                description: None,
                created_at: Timestamp::now(),
                expires_at: None,
                revoked_at: None,
                last_used_at: None,
                rotated_to: None,
                lineage: ApiKeyId::generate().unwrap(),
            },
            merchant: Merchant {
                id: merchant,
                name: MerchantName::from_trusted("M".into()),
                created_at: Timestamp::now(),
                element_origins: Vec::new(),
                connector: "sandbox".into(),
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
}
