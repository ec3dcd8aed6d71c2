//! The lockouts port on the double ([`LockoutStore`]'s semantics).

use super::{stage, MemoryStore};
use crate::domain::time::Timestamp;
use crate::store::ports::LockoutStore;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

impl LockoutStore for MemoryStore {
    fn record_auth_failure(&self, work: &mut UnitOfWork, ip: &str, at: Timestamp) {
        let ip = ip.to_owned();
        stage(work, move |t| {
            t.auth_failures.push((ip, at.as_millis()));
            Ok(())
        });
    }

    async fn auth_failures_since(&self, ip: &str, since: Timestamp) -> Result<i64, StoreError> {
        let since = since.as_millis();
        Ok(self.read(|t| {
            let n = t.auth_failures.iter().filter(|(a, at)| a == ip && *at >= since).count();
            i64::try_from(n).unwrap_or(i64::MAX)
        }))
    }

    async fn prune_auth_failures(&self, before: Timestamp) -> Result<u64, StoreError> {
        let before = before.as_millis();
        Ok(self.with_tables(|t| {
            let was = t.auth_failures.len();
            t.auth_failures.retain(|(_, at)| *at >= before);
            u64::try_from(was - t.auth_failures.len()).unwrap_or(u64::MAX)
        }))
    }

    fn lock_address(&self, work: &mut UnitOfWork, ip: &str, until: Timestamp) {
        let ip = ip.to_owned();
        stage(work, move |t| {
            let until = until.as_millis();
            let locked = t.lockouts.entry(ip).or_insert(until);
            *locked = (*locked).max(until);
            Ok(())
        });
    }

    fn clear_lockout(&self, work: &mut UnitOfWork, ip: &str) {
        let ip = ip.to_owned();
        stage(work, move |t| {
            t.lockouts.remove(&ip);
            t.auth_failures.retain(|(a, _)| *a != ip);
            Ok(())
        });
    }

    async fn lockout_recorded(&self, ip: &str) -> Result<(bool, i64), StoreError> {
        Ok(self.read(|t| {
            let failures = t.auth_failures.iter().filter(|(a, _)| a == ip).count();
            (t.lockouts.contains_key(ip), i64::try_from(failures).unwrap_or(i64::MAX))
        }))
    }
}
