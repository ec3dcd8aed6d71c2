//! The in-process cache of each tenant's active rules, so that screening a
//! payment costs no database round trip in the common case, also for a
//! merchant without any rule set (its absence is cached too).
//!
//! An entry is the active version parsed once, with the values of every list
//! it refers to. It is dropped at once on this gateway when the tenant's
//! rules or lists change ([`RulesCache::invalidate`]), and reloaded by every
//! gateway once it is older than [`TTL`]: a change made through another
//! replica is in force here within that bound. The map holds at most
//! [`MAX_ENTRIES`] tenants; past that it is emptied (and refilled by use),
//! which bounds its memory without an eviction policy on the hot path.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::domain::fraud_rules::{Attribute, ListName, Lists, RuleSet, Thresholds};
use crate::domain::tenant::Tenant;

/// How long an entry is trusted before it is read again: the longest a rule
/// change made through another gateway takes to be in force here.
pub const TTL: Duration = Duration::from_secs(1);

/// The most tenants cached at once.
pub const MAX_ENTRIES: usize = 10_000;

/// A tenant's active rule set, ready to evaluate.
#[derive(Debug)]
pub struct ActiveRules {
    pub version: i64,
    pub rules: RuleSet,
    /// The values of every list the rules refer to that exists.
    pub lists: HashMap<String, HashSet<String>>,
    /// Some rule tests a velocity fact or `card.first_use` (the signals
    /// query is needed).
    pub needs_velocity: bool,
    /// Some rule tests `amount_vs_usual_pct`.
    pub needs_usual: bool,
    /// The score thresholds the version was saved with.
    pub thresholds: Thresholds,
}

impl ActiveRules {
    pub fn new(version: i64, rules: RuleSet, lists: HashMap<String, HashSet<String>>, thresholds: Thresholds) -> Self {
        let mut needs_velocity = false;
        let mut needs_usual = false;
        for rule in rules.rules() {
            rule.condition().visit_tests(&mut |test| {
                let attribute = test.attribute();
                needs_velocity |= attribute == Attribute::CardFirstUse || attribute.name().starts_with("velocity.");
                needs_usual |= attribute == Attribute::AmountVsUsualPct;
            });
        }
        Self {
            version,
            rules,
            lists,
            needs_velocity,
            needs_usual,
            thresholds,
        }
    }
}

impl Lists for ActiveRules {
    fn contains(&self, list: &ListName, value: &str) -> Option<bool> {
        self.lists.contains(list, value)
    }
}

#[derive(Debug)]
struct Entry {
    loaded_at: Instant,
    active: Option<Arc<ActiveRules>>,
}

/// The cache, shared by every request of one gateway.
#[derive(Debug, Default)]
pub struct RulesCache {
    /// A std lock: held only to look up or insert, never across an
    /// `.await`; look-ups (every confirm) share it, and allocate nothing.
    entries: RwLock<HashMap<Tenant, Entry>>,
}

impl RulesCache {
    /// The cached rules of `tenant` (`Some(None)`: it has none), unless the
    /// entry is missing or older than [`TTL`].
    pub fn get(&self, tenant: &Tenant) -> Option<Option<Arc<ActiveRules>>> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(tenant)?;
        (entry.loaded_at.elapsed() < TTL).then(|| entry.active.clone())
    }

    /// Caches what was read for `tenant` at `loaded_at` (taken before the read,
    /// so an entry is never trusted longer than [`TTL`] after its data).
    pub fn put(&self, tenant: &Tenant, loaded_at: Instant, active: Option<Arc<ActiveRules>>) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(tenant.clone(), Entry { loaded_at, active });
    }

    /// Forgets `tenant`'s entry: its rules or lists changed.
    pub fn invalidate(&self, tenant: &Tenant) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::api_key::Mode;
    use crate::domain::ids::MerchantId;

    #[test]
    fn entries_are_per_tenant_expire_and_are_invalidated() {
        let cache = RulesCache::default();
        let merchant = MerchantId::generate().unwrap();
        let test = Tenant::new(merchant.clone(), Mode::Test);
        let live = Tenant::new(merchant, Mode::Live);
        assert!(cache.get(&test).is_none());
        cache.put(&test, Instant::now(), None);
        assert!(matches!(cache.get(&test), Some(None)), "no rules is cached too");
        assert!(cache.get(&live).is_none(), "the other mode is another entry");
        cache.invalidate(&test);
        assert!(cache.get(&test).is_none());
        let old = Instant::now().checked_sub(TTL + Duration::from_millis(1)).unwrap();
        cache.put(&test, old, None);
        assert!(cache.get(&test).is_none(), "older than the TTL is read again");
    }
}
