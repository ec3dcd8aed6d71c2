//! The fraud engine's tables: `fraud_rule_sets` (every saved version of a
//! merchant's rules, per mode, never changed), `fraud_active_rules` (the
//! version in force per merchant and mode) and `fraud_lists` (the values of
//! each `@list`, a JSON array, replaced whole).
//!
//! Single-statement primitives, every one scoped by tenant (merchant and
//! mode): another merchant's or mode's rows read as absent.

use sqlx::{Any, Executor};

use super::unit_of_work::UnitOfWork;
use super::write_op::{Failure, WriteOp};
use super::{Store, StoreError};
use crate::domain::tenant::Tenant;

/// One saved version of a rule set.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RuleSetRow {
    pub version: i64,
    /// The text as the merchant wrote it.
    pub rules: String,
    /// SHA-256 of `rules`, lower-case hex.
    pub sha256: String,
    pub created_at: i64,
    /// The API key that saved it.
    pub created_by: Option<String>,
    /// The score from which a payment is held for review.
    pub review_at: i64,
    /// The score from which a payment is blocked.
    pub block_at: i64,
}

/// A merchant's list: its values (already normalised by the service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    pub name: String,
    pub entries: Vec<String>,
    pub updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct StoredList {
    name: String,
    entries: String,
    updated_at: i64,
}

impl TryFrom<StoredList> for ListRow {
    type Error = StoreError;
    fn try_from(row: StoredList) -> Result<Self, StoreError> {
        Ok(ListRow {
            entries: super::json_column("fraud_lists.entries", &row.entries)?,
            name: row.name,
            updated_at: row.updated_at,
        })
    }
}

const SET_COLUMNS: &str = "version, rules, sha256, created_at, created_by, review_at, block_at";

/// Adds a version; one that exists for the tenant fails the unit with `Duplicate`.
pub fn insert_rule_set(work: &mut UnitOfWork, tenant: &Tenant, row: &RuleSetRow) {
    work.push(WriteOp::new(
        "INSERT INTO fraud_rule_sets (merchant_id, mode, version, rules, sha256, created_at, created_by, \
         review_at, block_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        vec![
            tenant.merchant_str().into(),
            tenant.mode_str().into(),
            row.version.into(),
            row.rules.as_str().into(),
            row.sha256.as_str().into(),
            row.created_at.into(),
            (&row.created_by).into(),
            row.review_at.into(),
            row.block_at.into(),
        ],
    ));
}

/// Makes `version` the tenant's active one (it must exist: a missing one
/// fails the unit with a constraint error).
pub fn activate_rule_set(work: &mut UnitOfWork, tenant: &Tenant, version: i64, at: i64) {
    work.push(
        WriteOp::new(
            "INSERT INTO fraud_active_rules (merchant_id, mode, version, activated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (merchant_id, mode) DO UPDATE SET version = excluded.version, \
             activated_at = excluded.activated_at",
            vec![
                tenant.merchant_str().into(),
                tenant.mode_str().into(),
                version.into(),
                at.into(),
            ],
        )
        .expect_one(Failure::Conflict),
    );
}

/// Replaces (or creates) the tenant's list `row.name`.
pub fn put_list(work: &mut UnitOfWork, tenant: &Tenant, row: &ListRow) {
    work.push(WriteOp::new(
        "INSERT INTO fraud_lists (merchant_id, mode, name, entries, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (merchant_id, mode, name) DO UPDATE SET entries = excluded.entries, \
         updated_at = excluded.updated_at",
        vec![
            tenant.merchant_str().into(),
            tenant.mode_str().into(),
            row.name.as_str().into(),
            super::to_json_column(&row.entries).into(),
            row.updated_at.into(),
        ],
    ));
}

/// The tenant's active version, if it has one.
pub async fn get_active<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
) -> Result<Option<RuleSetRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT s.version, s.rules, s.sha256, s.created_at, s.created_by, s.review_at, s.block_at \
         FROM fraud_active_rules a \
         JOIN fraud_rule_sets s ON s.merchant_id = a.merchant_id AND s.mode = a.mode AND s.version = a.version \
         WHERE a.merchant_id = $1 AND a.mode = $2",
    )
    .bind(tenant.merchant_str())
    .bind(tenant.mode_str())
    .fetch_optional(db)
    .await?)
}

/// The tenant's version `version`, if it exists.
pub async fn get_version<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    version: i64,
) -> Result<Option<RuleSetRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SET_COLUMNS} FROM fraud_rule_sets WHERE merchant_id = $1 AND mode = $2 AND version = $3"
    ))
    .bind(tenant.merchant_str())
    .bind(tenant.mode_str())
    .bind(version)
    .fetch_optional(db)
    .await?)
}

/// Up to `limit` of the tenant's versions, newest first.
pub async fn list_versions<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    limit: i64,
) -> Result<Vec<RuleSetRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SET_COLUMNS} FROM fraud_rule_sets WHERE merchant_id = $1 AND mode = $2 \
         ORDER BY version DESC LIMIT $3"
    ))
    .bind(tenant.merchant_str())
    .bind(tenant.mode_str())
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// The tenant's list `name`, if it exists.
pub async fn get_list<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    name: &str,
) -> Result<Option<ListRow>, StoreError> {
    let row: Option<StoredList> = sqlx::query_as(
        "SELECT name, entries, updated_at FROM fraud_lists WHERE merchant_id = $1 AND mode = $2 AND name = $3",
    )
    .bind(tenant.merchant_str())
    .bind(tenant.mode_str())
    .bind(name)
    .fetch_optional(db)
    .await?;
    row.map(ListRow::try_from).transpose()
}

impl super::ports::FraudStore for Store {
    async fn get_active_rule_set(&self, tenant: &Tenant) -> Result<Option<RuleSetRow>, StoreError> {
        get_active(self.reader(), tenant).await
    }

    async fn get_rule_set(&self, tenant: &Tenant, version: i64) -> Result<Option<RuleSetRow>, StoreError> {
        get_version(self.reader(), tenant, version).await
    }

    async fn list_rule_sets(&self, tenant: &Tenant, limit: i64) -> Result<Vec<RuleSetRow>, StoreError> {
        list_versions(self.reader(), tenant, limit).await
    }

    async fn get_fraud_list(&self, tenant: &Tenant, name: &str) -> Result<Option<ListRow>, StoreError> {
        get_list(self.reader(), tenant, name).await
    }

    fn insert_rule_set(&self, work: &mut UnitOfWork, tenant: &Tenant, row: &RuleSetRow) {
        insert_rule_set(work, tenant, row);
    }

    fn activate_rule_set(&self, work: &mut UnitOfWork, tenant: &Tenant, version: i64, at: i64) {
        activate_rule_set(work, tenant, version, at);
    }

    fn put_fraud_list(&self, work: &mut UnitOfWork, tenant: &Tenant, row: &ListRow) {
        put_list(work, tenant, row);
    }
}
