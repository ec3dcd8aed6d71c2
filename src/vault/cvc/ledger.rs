//! The bookkeeping behind [`super::CvcStore`]: which entry belongs to whom,
//! in which order entries arrived, and which one makes room when a share is
//! full. It knows nothing of cryptography: an entry's value is opaque here.
//!
//! Every entry is indexed, oldest first (by a sequence number given when it
//! is inserted), three times: in the whole holder, in its merchant's share
//! (merchant and mode) and, when a publishable key put it, in that key's
//! share. The indexes are `BTreeMap`s, so inserting, removing and finding the
//! oldest entry of a share are O(log n); every removal (take, eviction,
//! purge) goes through [`Ledger::remove`], which updates all of them, so they
//! never disagree with the entries.
//!
//! Making room for an owner's new entry, share by share (its publishable
//! key's, its merchant's, the whole holder's): expired entries at the front of
//! that share go first, then the owner's own oldest entry, taken from the
//! narrowest share that holds one (its publishable key's, else its
//! merchant's). Another merchant's live entry is never removed; when the
//! holder is full and the owner's merchant holds nothing, the new entry is
//! refused.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use super::shares::{CvcLimits, CvcOwner};
use crate::domain::ids::ApiKeyId;
use crate::domain::tenant::Tenant;

/// One share's entries, oldest first: sequence number → token id.
type Order = BTreeMap<u64, Arc<str>>;

/// An entry as the ledger holds it.
pub(super) struct Held<V> {
    pub value: V,
    pub expires_at: Instant,
    seq: u64,
    owner: CvcOwner,
}

/// The holder is full and the owner has nothing of its own to give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Full;

/// The entries and their indexes.
pub(super) struct Ledger<V> {
    entries: HashMap<Arc<str>, Held<V>>,
    all: Order,
    merchants: HashMap<Tenant, Order>,
    keys: HashMap<ApiKeyId, Order>,
    next_seq: u64,
}

/// A set of entries that share one limit.
#[derive(Clone, Copy)]
enum Share<'a> {
    All,
    Merchant(&'a Tenant),
    Key(&'a ApiKeyId),
}

impl<V> Ledger<V> {
    pub fn new() -> Self {
        Self {
            entries: HashMap::new(),
            all: Order::new(),
            merchants: HashMap::new(),
            keys: HashMap::new(),
            next_seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Holds `value` for `token`, replacing what was held for it, after
    /// making room within `limits` for `owner` (see the module comment).
    /// On `Err`, nothing of another owner was removed.
    pub fn insert(
        &mut self,
        token: &str,
        owner: &CvcOwner,
        value: V,
        expires_at: Instant,
        limits: &CvcLimits,
        now: Instant,
    ) -> Result<(), Full> {
        // A replaced entry is gone whatever follows; a new one is the newest.
        self.remove(token);
        if let Some(key) = owner.publishable_key() {
            self.make_room(Share::Key(key), limits.per_publishable_key(), owner, now)?;
        }
        self.make_room(Share::Merchant(owner.tenant()), limits.per_merchant(), owner, now)?;
        self.make_room(Share::All, limits.capacity(), owner, now)?;
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let token: Arc<str> = Arc::from(token);
        self.all.insert(seq, Arc::clone(&token));
        self.merchants
            .entry(owner.tenant().clone())
            .or_default()
            .insert(seq, Arc::clone(&token));
        if let Some(key) = owner.publishable_key() {
            self.keys
                .entry(key.clone())
                .or_default()
                .insert(seq, Arc::clone(&token));
        }
        self.entries.insert(
            token,
            Held {
                value,
                expires_at,
                seq,
                owner: owner.clone(),
            },
        );
        Ok(())
    }

    /// Removes `token`'s entry from the entries and every index.
    pub fn remove(&mut self, token: &str) -> Option<Held<V>> {
        let held = self.entries.remove(token)?;
        self.all.remove(&held.seq);
        let tenant = held.owner.tenant();
        if let Some(order) = self.merchants.get_mut(tenant) {
            order.remove(&held.seq);
            if order.is_empty() {
                self.merchants.remove(tenant);
            }
        }
        if let Some(key) = held.owner.publishable_key() {
            if let Some(order) = self.keys.get_mut(key) {
                order.remove(&held.seq);
                if order.is_empty() {
                    self.keys.remove(key);
                }
            }
        }
        Some(held)
    }

    /// Removes every expired entry (a full scan: for the periodic purge).
    pub fn purge_expired(&mut self, now: Instant) -> usize {
        let expired: Vec<Arc<str>> = self
            .entries
            .iter()
            .filter(|(_, held)| now >= held.expires_at)
            .map(|(token, _)| Arc::clone(token))
            .collect();
        for token in &expired {
            self.remove(token);
        }
        expired.len()
    }

    /// Brings `share` below `limit`: its expired entries at the front first,
    /// then `owner`'s own oldest entries.
    fn make_room(&mut self, share: Share<'_>, limit: usize, owner: &CvcOwner, now: Instant) -> Result<(), Full> {
        if self.count(share) < limit {
            return Ok(());
        }
        self.purge_front(share, now);
        while self.count(share) >= limit {
            // The owner's entries lie within every share it makes room in,
            // so each eviction shrinks `share`.
            let victim = self.oldest_of_own(owner).ok_or(Full)?;
            self.remove(&victim);
        }
        Ok(())
    }

    /// Removes expired entries from the front of `share`, up to the first
    /// live one. Entries expire in about the order they arrive (one TTL), so
    /// this finds nearly all of them without a scan; the periodic purge gets
    /// any left behind.
    fn purge_front(&mut self, share: Share<'_>, now: Instant) {
        while let Some(token) = self.oldest(share) {
            if self.entries.get(&token).is_some_and(|held| now < held.expires_at) {
                return;
            }
            self.remove(&token);
        }
    }

    /// The oldest entry `owner` may give up: its publishable key's oldest,
    /// else its merchant's oldest.
    fn oldest_of_own(&self, owner: &CvcOwner) -> Option<Arc<str>> {
        owner
            .publishable_key()
            .and_then(|key| self.oldest(Share::Key(key)))
            .or_else(|| self.oldest(Share::Merchant(owner.tenant())))
    }

    fn oldest(&self, share: Share<'_>) -> Option<Arc<str>> {
        self.order(share)
            .and_then(|order| order.first_key_value())
            .map(|(_, token)| Arc::clone(token))
    }

    fn count(&self, share: Share<'_>) -> usize {
        self.order(share).map_or(0, BTreeMap::len)
    }

    fn order(&self, share: Share<'_>) -> Option<&Order> {
        match share {
            Share::All => Some(&self.all),
            Share::Merchant(tenant) => self.merchants.get(tenant),
            Share::Key(key) => self.keys.get(key),
        }
    }
}

#[cfg(test)]
impl<V> Ledger<V> {
    /// How many entries `owner`'s merchant and publishable key hold.
    pub fn held_by(&self, owner: &CvcOwner) -> (usize, usize) {
        (
            self.count(Share::Merchant(owner.tenant())),
            owner.publishable_key().map_or(0, |key| self.count(Share::Key(key))),
        )
    }

    /// Every entry's token, owner and expiry.
    pub fn snapshot(&self) -> HashMap<String, (CvcOwner, Instant)> {
        self.entries
            .iter()
            .map(|(token, held)| (token.to_string(), (held.owner.clone(), held.expires_at)))
            .collect()
    }

    pub fn value_mut(&mut self, token: &str) -> Option<&mut V> {
        self.entries.get_mut(token).map(|held| &mut held.value)
    }

    /// Panics unless every index holds exactly the entries it should and no
    /// share is above its limit.
    pub fn assert_consistent(&self, limits: &CvcLimits) {
        assert!(self.len() <= limits.capacity(), "{} > capacity", self.len());
        assert_eq!(self.all.len(), self.entries.len());
        let mut per_merchant: HashMap<&Tenant, usize> = HashMap::new();
        let mut per_key: HashMap<&ApiKeyId, usize> = HashMap::new();
        for (token, held) in &self.entries {
            assert_eq!(self.all.get(&held.seq), Some(token));
            let tenant = held.owner.tenant();
            assert_eq!(self.merchants.get(tenant).and_then(|o| o.get(&held.seq)), Some(token));
            *per_merchant.entry(tenant).or_default() += 1;
            if let Some(key) = held.owner.publishable_key() {
                assert_eq!(self.keys.get(key).and_then(|o| o.get(&held.seq)), Some(token));
                *per_key.entry(key).or_default() += 1;
            }
        }
        assert_eq!(
            self.merchants.len(),
            per_merchant.len(),
            "no empty or stale merchant index"
        );
        assert_eq!(self.keys.len(), per_key.len(), "no empty or stale key index");
        for (tenant, n) in per_merchant {
            assert_eq!(self.merchants.get(tenant).map(BTreeMap::len), Some(n));
            assert!(n <= limits.per_merchant(), "{tenant}: {n} held");
        }
        for (key, n) in per_key {
            assert_eq!(self.keys.get(key).map(BTreeMap::len), Some(n));
            assert!(n <= limits.per_publishable_key(), "{key}: {n} held");
        }
    }
}
