//! The fraud port: a merchant's rule-set versions and the active one, and
//! the lists its rules refer to, per tenant (merchant and mode). Another
//! merchant's or mode's rows are exactly like missing ones.

use std::future::Future;

use crate::domain::tenant::Tenant;
use crate::store::fraud::{ListRow, RuleSetRow};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

pub trait FraudStore: Send + Sync {
    /// The tenant's active rule set; `None` if it has none.
    fn get_active_rule_set(
        &self,
        tenant: &Tenant,
    ) -> impl Future<Output = Result<Option<RuleSetRow>, StoreError>> + Send;

    /// The tenant's version `version`; `None` if there is none.
    fn get_rule_set(
        &self,
        tenant: &Tenant,
        version: i64,
    ) -> impl Future<Output = Result<Option<RuleSetRow>, StoreError>> + Send;

    /// Up to `limit` of the tenant's versions, newest first.
    fn list_rule_sets(
        &self,
        tenant: &Tenant,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<RuleSetRow>, StoreError>> + Send;

    /// The tenant's list `name`; `None` if there is none.
    fn get_fraud_list(
        &self,
        tenant: &Tenant,
        name: &str,
    ) -> impl Future<Output = Result<Option<ListRow>, StoreError>> + Send;

    /// Stages a new version; a version the tenant already has fails the
    /// unit with `Duplicate`.
    fn insert_rule_set(&self, work: &mut UnitOfWork, tenant: &Tenant, row: &RuleSetRow);

    /// Stages making `version` the tenant's active one (replacing any); a
    /// version the tenant does not have (staged earlier in the same unit
    /// counts) fails the unit with `Constraint`.
    fn activate_rule_set(&self, work: &mut UnitOfWork, tenant: &Tenant, version: i64, at: i64);

    /// Stages replacing (or creating) the tenant's list `row.name`; a
    /// merchant that does not exist fails the unit with `Constraint`.
    fn put_fraud_list(&self, work: &mut UnitOfWork, tenant: &Tenant, row: &ListRow);
}
