//! The SCA port on the double ([`ScaStore`]'s semantics).

use super::{stage, MemoryStore};
use crate::domain::sca::{LOW_VALUE_MAX_CONSECUTIVE, LOW_VALUE_MAX_CUMULATIVE};
use crate::domain::tenant::Tenant;
use crate::store::ports::ScaStore;
use crate::store::sca::ScaCounterRow;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

fn key(tenant: &Tenant, fingerprint: &str) -> (String, String, String) {
    (
        tenant.merchant_str().to_owned(),
        tenant.mode_str().to_owned(),
        fingerprint.to_owned(),
    )
}

fn cents(cents: u64) -> i64 {
    i64::try_from(cents).unwrap_or(i64::MAX)
}

impl ScaStore for MemoryStore {
    async fn get_sca_counters(&self, tenant: &Tenant, fingerprint: &str) -> Result<Option<ScaCounterRow>, StoreError> {
        let key = key(tenant, fingerprint);
        Ok(self.read(|t| t.sca_counters.get(&key).copied()))
    }

    fn count_low_value(&self, work: &mut UnitOfWork, tenant: &Tenant, fingerprint: &str, amount: u64, _at: i64) {
        let key = key(tenant, fingerprint);
        let amount = cents(amount);
        stage(work, move |t| {
            t.merchant_exists(&key.0)?;
            let row = t.sca_counters.entry(key).or_insert(ScaCounterRow {
                consecutive: 0,
                cumulative_cents: 0,
                authenticated_at: None,
            });
            let consecutive = row.consecutive.saturating_add(1);
            let cumulative = row.cumulative_cents.saturating_add(amount);
            if consecutive > i64::from(LOW_VALUE_MAX_CONSECUTIVE)
                || cumulative > cents(LOW_VALUE_MAX_CUMULATIVE.cents())
            {
                return Err(StoreError::Conflict);
            }
            row.consecutive = consecutive;
            row.cumulative_cents = cumulative;
            Ok(())
        });
    }

    fn count_exempt(&self, work: &mut UnitOfWork, tenant: &Tenant, fingerprint: &str, amount: u64, _at: i64) {
        let key = key(tenant, fingerprint);
        let amount = cents(amount);
        stage(work, move |t| {
            t.merchant_exists(&key.0)?;
            let row = t.sca_counters.entry(key).or_insert(ScaCounterRow {
                consecutive: 0,
                cumulative_cents: 0,
                authenticated_at: None,
            });
            row.consecutive = row.consecutive.saturating_add(1);
            row.cumulative_cents = row.cumulative_cents.saturating_add(amount);
            Ok(())
        });
    }

    fn reset_sca_counters(&self, work: &mut UnitOfWork, tenant: &Tenant, fingerprint: &str, at: i64) {
        let key = key(tenant, fingerprint);
        stage(work, move |t| {
            t.merchant_exists(&key.0)?;
            t.sca_counters.insert(
                key,
                ScaCounterRow {
                    consecutive: 0,
                    cumulative_cents: 0,
                    authenticated_at: Some(at),
                },
            );
            Ok(())
        });
    }
}
