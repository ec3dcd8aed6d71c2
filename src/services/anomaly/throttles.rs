//! Subjects an anomaly policy throttled, as this replica knows them: its own
//! responses at once, and every replica's from the database, read every
//! `sync_interval` (the `throttle_until` of their alerts). Empty, a check
//! costs one atomic load: the request path pays nothing while nobody is
//! throttled.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use crate::domain::time::Timestamp;

/// Most subjects kept (a flood of distinct addresses cannot grow it for ever;
/// the database keeps every throttle anyway).
const CAPACITY: usize = 100_000;

#[derive(Debug, Default)]
pub struct Throttles {
    any: AtomicBool,
    until: RwLock<HashMap<String, i64>>,
}

impl Throttles {
    /// Whether anything is throttled (cheap).
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// How long `subject` is still refused at `now`, if it is.
    pub fn check(&self, subject: &str, now: Timestamp) -> Option<Duration> {
        if !self.any() {
            return None;
        }
        let map = self.until.read().unwrap_or_else(PoisonError::into_inner);
        let until = *map.get(subject)?;
        let left = until.saturating_sub(now.as_millis());
        (left > 0).then(|| Duration::from_millis(u64::try_from(left).unwrap_or(0)))
    }

    /// Refuses `subject` until `until` (never shortens a throttle).
    pub fn impose(&self, subject: &str, until: Timestamp) {
        let mut map = self.until.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= CAPACITY {
            let now = Timestamp::now().as_millis();
            map.retain(|_, u| *u > now);
        }
        let entry = map.entry(subject.to_owned()).or_insert(0);
        *entry = (*entry).max(until.as_millis());
        self.any.store(true, Ordering::Release);
    }

    /// Takes in the throttles in force on every replica and forgets expired
    /// ones.
    pub fn sync(&self, active: &[(String, Timestamp)], now: Timestamp) {
        let mut map = self.until.write().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, u| *u > now.as_millis());
        for (subject, until) in active {
            let entry = map.entry(subject.clone()).or_insert(0);
            *entry = (*entry).max(until.as_millis());
        }
        self.any.store(!map.is_empty(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_holds_until_its_end_and_sync_adds_and_forgets() {
        let t = Throttles::default();
        let now = Timestamp::from_millis(1_000_000);
        assert!(!t.any() && t.check("ip:a", now).is_none());
        t.impose("ip:a", Timestamp::from_millis(1_060_000));
        assert_eq!(t.check("ip:a", now), Some(Duration::from_secs(60)));
        assert!(t.check("ip:b", now).is_none());
        t.sync(&[("key_b".into(), Timestamp::from_millis(1_001_000))], now);
        assert_eq!(t.check("key_b", now), Some(Duration::from_secs(1)));
        let later = Timestamp::from_millis(1_070_000);
        assert!(t.check("ip:a", later).is_none());
        t.sync(&[], later);
        assert!(!t.any());
    }
}
