//! The fraud port on the double ([`FraudStore`]'s semantics).

use super::{limit, stage, MemoryStore};
use crate::domain::tenant::Tenant;
use crate::store::fraud::{ListRow, RuleSetRow};
use crate::store::ports::FraudStore;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

fn key(tenant: &Tenant) -> (String, String) {
    (tenant.merchant_str().to_owned(), tenant.mode_str().to_owned())
}

impl FraudStore for MemoryStore {
    async fn get_active_rule_set(&self, tenant: &Tenant) -> Result<Option<RuleSetRow>, StoreError> {
        let (merchant, mode) = key(tenant);
        Ok(self.read(|t| {
            let version = t.fraud_active.get(&(merchant.clone(), mode.clone()))?;
            t.fraud_sets.get(&(merchant, mode, *version)).cloned()
        }))
    }

    async fn get_rule_set(&self, tenant: &Tenant, version: i64) -> Result<Option<RuleSetRow>, StoreError> {
        let (merchant, mode) = key(tenant);
        Ok(self.read(|t| t.fraud_sets.get(&(merchant, mode, version)).cloned()))
    }

    async fn list_rule_sets(&self, tenant: &Tenant, page: i64) -> Result<Vec<RuleSetRow>, StoreError> {
        let (merchant, mode) = key(tenant);
        Ok(self.read(|t| {
            t.fraud_sets
                .iter()
                .rev()
                .filter(|((m, o, _), _)| *m == merchant && *o == mode)
                .take(limit(page))
                .map(|(_, row)| row.clone())
                .collect()
        }))
    }

    async fn get_fraud_list(&self, tenant: &Tenant, name: &str) -> Result<Option<ListRow>, StoreError> {
        let (merchant, mode) = key(tenant);
        Ok(self.read(|t| t.fraud_lists.get(&(merchant, mode, name.to_owned())).cloned()))
    }

    fn insert_rule_set(&self, work: &mut UnitOfWork, tenant: &Tenant, row: &RuleSetRow) {
        let (merchant, mode) = key(tenant);
        let row = row.clone();
        stage(work, move |t| {
            t.merchant_exists(&merchant)?;
            let id = (merchant, mode, row.version);
            if t.fraud_sets.contains_key(&id) {
                return Err(StoreError::Duplicate);
            }
            t.fraud_sets.insert(id, row);
            Ok(())
        });
    }

    fn activate_rule_set(&self, work: &mut UnitOfWork, tenant: &Tenant, version: i64, _at: i64) {
        let (merchant, mode) = key(tenant);
        stage(work, move |t| {
            if !t.fraud_sets.contains_key(&(merchant.clone(), mode.clone(), version)) {
                return Err(StoreError::Constraint(
                    "fraud_active_rules references no rule set".into(),
                ));
            }
            t.fraud_active.insert((merchant, mode), version);
            Ok(())
        });
    }

    fn put_fraud_list(&self, work: &mut UnitOfWork, tenant: &Tenant, row: &ListRow) {
        let (merchant, mode) = key(tenant);
        let row = row.clone();
        stage(work, move |t| {
            t.merchant_exists(&merchant)?;
            t.fraud_lists.insert((merchant, mode, row.name.clone()), row);
            Ok(())
        });
    }
}
