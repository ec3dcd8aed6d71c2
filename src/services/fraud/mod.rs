//! The fraud engine's use cases: a merchant's rule sets (save a new version
//! and activate it, activate an older one, read them), the lists its rules
//! refer to (`@name`), and the active rules that screen every confirm
//! (through the in-process [`cache`]).
//!
//! What must hold: rules are tenant-scoped like everything else (a key of one
//! mode never reads or changes the other's); a text is stored only if it
//! parses and every list it names exists, so the active set always
//! evaluates; every change commits with its audit entry, which names the
//! set's SHA-256 and version, or a list's name and size, never list values
//! (they may be customers' e-mail addresses).

pub mod bins;
pub mod cache;
pub mod dry_run;
pub mod facts;
pub mod velocity;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::domain::audit::Outcome;
use crate::domain::fraud_rules::{ListName, RuleSet, Thresholds};
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::fraud::{ListRow, RuleSetRow};
use crate::store::ports::{Commit, FraudStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::{Store, StoreError};

use super::actor::Actor;
use super::ServiceError;
pub use cache::{ActiveRules, RulesCache};

/// How many versions `GET /v1/fraud/rules` lists, newest first.
pub const MAX_VERSIONS_LISTED: i64 = 100;
/// The most values in one list.
pub const MAX_LIST_ENTRIES: usize = 1000;
/// The longest value of a list, in bytes.
pub const MAX_ENTRY_BYTES: usize = 256;
/// The score from which the score alone holds a payment for review.
pub const REVIEW_AT: u8 = 65;
/// The score from which the score alone blocks a payment.
pub const BLOCK_AT: u8 = 85;

/// The thresholds a rule set's score is read with unless the merchant chose
/// others ([`REVIEW_AT`], [`BLOCK_AT`]; a test holds them valid).
pub fn thresholds() -> Result<Thresholds, ServiceError> {
    Thresholds::new(REVIEW_AT, BLOCK_AT)
        .map_err(|e| ServiceError::Store(StoreError::Corrupt(format!("fraud thresholds: {e}"))))
}

/// The thresholds a merchant asks for: `review_at` from 1 to 99 and
/// `block_at` above it, at most 100; anything else is refused naming the
/// field at fault.
pub fn parse_thresholds(review_at: i64, block_at: i64) -> Result<Thresholds, ServiceError> {
    let score = |name: &'static str, value: i64| {
        u8::try_from(value)
            .ok()
            .filter(|v| (1..=100).contains(v))
            .ok_or_else(|| ServiceError::invalid(name, "parameter_invalid", format!("{name} is a score from 1 to 100")))
    };
    let (review, block) = (score("review_at", review_at)?, score("block_at", block_at)?);
    if review >= block {
        return Err(ServiceError::invalid(
            "review_at",
            "parameter_invalid",
            "review_at must be below block_at",
        ));
    }
    Thresholds::new(review, block).map_err(|e| ServiceError::invalid("review_at", "parameter_invalid", e.to_string()))
}

/// The thresholds a stored version was saved with.
fn stored_thresholds(row: &RuleSetRow) -> Result<Thresholds, ServiceError> {
    let corrupt = || ServiceError::Store(StoreError::Corrupt("fraud_rule_sets thresholds".into()));
    let review = u8::try_from(row.review_at).map_err(|_| corrupt())?;
    let block = u8::try_from(row.block_at).map_err(|_| corrupt())?;
    Thresholds::new(review, block).map_err(|_| corrupt())
}

/// One saved version of a rule set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSetVersion {
    pub version: i64,
    pub rules: String,
    /// SHA-256 of `rules`, lower-case hex.
    pub sha256: String,
    pub created_at: Timestamp,
    /// The id of the API key that saved it.
    pub created_by: Option<String>,
    /// The score from which a payment is held for review.
    pub review_at: i64,
    /// The score from which a payment is blocked.
    pub block_at: i64,
}

impl From<RuleSetRow> for RuleSetVersion {
    fn from(row: RuleSetRow) -> Self {
        Self {
            version: row.version,
            rules: row.rules,
            sha256: row.sha256,
            created_at: Timestamp::from_millis(row.created_at),
            created_by: row.created_by,
            review_at: row.review_at,
            block_at: row.block_at,
        }
    }
}

/// A tenant's rules: the active version and the versions saved, newest first.
#[derive(Debug, Clone)]
pub struct RulesOverview {
    pub active: Option<RuleSetVersion>,
    pub versions: Vec<RuleSetVersion>,
}

/// A merchant's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FraudList {
    pub name: String,
    pub values: Vec<String>,
    pub updated_at: Timestamp,
}

/// The fraud service, shared by every request (and by the payments service,
/// which screens with it): cheap to clone, every clone shares the cache.
#[derive(Clone)]
pub struct Fraud<S = Store> {
    store: S,
    cache: Arc<RulesCache>,
    /// Merchants' usual amounts (`velocity`).
    usual: Arc<velocity::UsualAmounts>,
}

impl<S> std::fmt::Debug for Fraud<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fraud").finish_non_exhaustive()
    }
}

fn invalid_rules(message: String) -> ServiceError {
    ServiceError::invalid("rules", "invalid_rules", message)
}

/// The id of the key acting, if an API key acts.
fn key_of(actor: &Actor) -> Option<String> {
    match actor {
        Actor::Api { key, .. } => Some(key.to_string()),
        _ => None,
    }
}

fn audit(
    actor: &Actor,
    tenant: &Tenant,
    action: &str,
    resource: String,
    reason: String,
) -> crate::domain::audit::AuditEvent {
    let mut event = actor.event(action, Outcome::Success);
    event.merchant_id = Some(tenant.merchant_str().to_owned());
    event.mode = Some(tenant.mode());
    event.resource = Some(resource);
    event.reason = Some(reason);
    event
}

/// Lower-case hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl<S: FraudStore + Commit> Fraud<S> {
    pub fn new(store: S) -> Self {
        Self {
            store,
            cache: Arc::new(RulesCache::default()),
            usual: Arc::new(velocity::UsualAmounts::default()),
        }
    }

    /// The tenant's active version and its saved versions.
    pub async fn rules(&self, tenant: &Tenant) -> Result<RulesOverview, ServiceError> {
        let active = self.store.get_active_rule_set(tenant).await?.map(RuleSetVersion::from);
        let versions = self
            .store
            .list_rule_sets(tenant, MAX_VERSIONS_LISTED)
            .await?
            .into_iter()
            .map(RuleSetVersion::from)
            .collect();
        Ok(RulesOverview { active, versions })
    }

    /// Saves `text` as the tenant's next version and activates it. Refused
    /// (`invalid_rules`, naming `rules`) if it does not parse, with the line
    /// and column at fault, or if it names a list the tenant does not have.
    pub async fn save_rules(&self, actor: &Actor, tenant: &Tenant, text: &str) -> Result<RulesOverview, ServiceError> {
        self.save_rules_with(actor, tenant, text, None).await
    }

    /// Like [`Fraud::save_rules`], with the score `thresholds` the version
    /// is read with; without, those of the active version (or the defaults,
    /// [`REVIEW_AT`] and [`BLOCK_AT`]).
    pub async fn save_rules_with(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        text: &str,
        thresholds: Option<Thresholds>,
    ) -> Result<RulesOverview, ServiceError> {
        let rules = RuleSet::parse(text).map_err(|e| invalid_rules(format!("The rules do not parse: {e}")))?;
        self.check_lists(tenant, &rules).await?;
        let thresholds = match thresholds {
            Some(chosen) => chosen,
            None => self.current_thresholds(tenant).await?,
        };
        let latest = self.store.list_rule_sets(tenant, 1).await?;
        let version = latest.first().map_or(1, |row| row.version.saturating_add(1));
        let now = Timestamp::now();
        let row = RuleSetRow {
            version,
            rules: text.to_owned(),
            sha256: sha256_hex(text),
            created_at: now.as_millis(),
            created_by: key_of(actor),
            review_at: i64::from(thresholds.review_at()),
            block_at: i64::from(thresholds.block_at()),
        };
        let mut work = UnitOfWork::new();
        self.store.insert_rule_set(&mut work, tenant, &row);
        self.store
            .activate_rule_set(&mut work, tenant, version, now.as_millis());
        work.audit(audit(
            actor,
            tenant,
            "fraud.rules_saved",
            format!("fraud_rules/{version}"),
            format!(
                "version {version} sha256 {} saved and activated ({} rules, review at {}, block at {})",
                row.sha256,
                rules.rules().len(),
                row.review_at,
                row.block_at
            ),
        ));
        self.commit(tenant, work).await?;
        self.rules(tenant).await
    }

    /// Makes the tenant's saved `version` the active one; not found if the
    /// tenant has no such version.
    pub async fn activate(&self, actor: &Actor, tenant: &Tenant, version: i64) -> Result<RulesOverview, ServiceError> {
        let row = self
            .store
            .get_rule_set(tenant, version)
            .await?
            .ok_or(ServiceError::NotFound {
                resource: "fraud_rules_version",
                param: "version",
            })?;
        let rules = RuleSet::parse(&row.rules).map_err(|e| ServiceError::Conflict {
            code: "invalid_rules",
            message: format!("This version no longer parses: {e}"),
        })?;
        self.check_lists(tenant, &rules).await?;
        let now = Timestamp::now();
        let mut work = UnitOfWork::new();
        self.store
            .activate_rule_set(&mut work, tenant, version, now.as_millis());
        work.audit(audit(
            actor,
            tenant,
            "fraud.rules_activated",
            format!("fraud_rules/{version}"),
            format!(
                "version {version} sha256 {} activated (review at {}, block at {})",
                row.sha256, row.review_at, row.block_at
            ),
        ));
        self.commit(tenant, work).await?;
        self.rules(tenant).await
    }

    /// The tenant's list `name`; not found if it has none.
    pub async fn list(&self, tenant: &Tenant, name: &ListName) -> Result<FraudList, ServiceError> {
        let row = self
            .store
            .get_fraud_list(tenant, name.as_str())
            .await?
            .ok_or(ServiceError::NotFound {
                resource: "fraud_list",
                param: "name",
            })?;
        Ok(FraudList {
            name: row.name,
            values: row.entries,
            updated_at: Timestamp::from_millis(row.updated_at),
        })
    }

    /// Replaces (or creates) the tenant's list `name` with `values`: each
    /// trimmed and in lower case (the form rules compare with: e-mail
    /// addresses, domains, countries, IPs), duplicates dropped, sorted. At
    /// most [`MAX_LIST_ENTRIES`] values of 1 to [`MAX_ENTRY_BYTES`] bytes, no
    /// control characters; anything else is refused naming `values`.
    pub async fn put_list(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        name: &ListName,
        values: Vec<String>,
    ) -> Result<FraudList, ServiceError> {
        let entries = normalise(values)?;
        let now = Timestamp::now();
        let row = ListRow {
            name: name.as_str().to_owned(),
            entries,
            updated_at: now.as_millis(),
        };
        let mut work = UnitOfWork::new();
        self.store.put_fraud_list(&mut work, tenant, &row);
        work.audit(audit(
            actor,
            tenant,
            "fraud.list_replaced",
            format!("fraud_list/{}", row.name),
            format!("{} values", row.entries.len()),
        ));
        self.commit(tenant, work).await?;
        Ok(FraudList {
            name: row.name,
            values: row.entries,
            updated_at: now,
        })
    }

    /// The tenant's active rules for screening a payment: from the cache,
    /// or read (the set and its lists) and cached. `None`: no rule set.
    pub async fn active(&self, tenant: &Tenant) -> Result<Option<Arc<ActiveRules>>, ServiceError> {
        if let Some(cached) = self.cache.get(tenant) {
            return Ok(cached);
        }
        let started = Instant::now();
        let active = match self.store.get_active_rule_set(tenant).await? {
            None => None,
            Some(row) => {
                // Stored only once it parsed: a failure here is corruption.
                let rules = RuleSet::parse(&row.rules)
                    .map_err(|_| StoreError::Corrupt("fraud_rule_sets.rules does not parse".into()))?;
                let lists = self.load_lists(tenant, &rules).await?;
                let thresholds = stored_thresholds(&row)?;
                Some(Arc::new(ActiveRules::new(row.version, rules, lists, thresholds)))
            }
        };
        self.cache.put(tenant, started, active.clone());
        Ok(active)
    }

    /// The thresholds of the tenant's active version, or the defaults.
    async fn current_thresholds(&self, tenant: &Tenant) -> Result<Thresholds, ServiceError> {
        match self.store.get_active_rule_set(tenant).await? {
            Some(row) => stored_thresholds(&row),
            None => thresholds(),
        }
    }

    /// The values of every list `rules` name that the tenant has.
    async fn load_lists(
        &self,
        tenant: &Tenant,
        rules: &RuleSet,
    ) -> Result<HashMap<String, HashSet<String>>, ServiceError> {
        let mut lists = HashMap::new();
        for name in rules.list_names() {
            if let Some(list) = self.store.get_fraud_list(tenant, name.as_str()).await? {
                lists.insert(list.name, list.entries.into_iter().collect());
            }
        }
        Ok(lists)
    }

    /// Refuses rules naming a list the tenant does not have.
    async fn check_lists(&self, tenant: &Tenant, rules: &RuleSet) -> Result<(), ServiceError> {
        for name in rules.list_names() {
            if self.store.get_fraud_list(tenant, name.as_str()).await?.is_none() {
                return Err(invalid_rules(format!(
                    "The rules refer to @{name}, a list that does not exist; create it first \
                     (POST /v1/fraud/lists/{name})",
                    name = name.as_str()
                )));
            }
        }
        Ok(())
    }

    /// Commits a change of the tenant's rules or lists and forgets its
    /// cached rules. A concurrent save of the same version is a 409.
    async fn commit(&self, tenant: &Tenant, work: UnitOfWork) -> Result<(), ServiceError> {
        let result = self.store.commit(work).await;
        self.cache.invalidate(tenant);
        result.map_err(|e| match e {
            StoreError::Duplicate => ServiceError::Conflict {
                code: "fraud_rules_conflict",
                message: "The rules were changed by another request at the same time; read them and retry".into(),
            },
            other => other.into(),
        })
    }
}

/// A list's values as stored; see [`Fraud::put_list`].
fn normalise(values: Vec<String>) -> Result<Vec<String>, ServiceError> {
    if values.len() > MAX_LIST_ENTRIES {
        return Err(ServiceError::invalid(
            "values",
            "parameter_invalid",
            format!("A list holds at most {MAX_LIST_ENTRIES} values"),
        ));
    }
    let mut entries = BTreeSet::new();
    for (i, value) in values.into_iter().enumerate() {
        let value = value.trim().to_lowercase();
        if value.is_empty() || value.len() > MAX_ENTRY_BYTES || value.chars().any(char::is_control) {
            return Err(ServiceError::invalid(
                format!("values[{i}]"),
                "parameter_invalid",
                format!("Each value is 1 to {MAX_ENTRY_BYTES} bytes without control characters"),
            ));
        }
        entries.insert(value);
    }
    Ok(entries.into_iter().collect())
}

#[cfg(test)]
mod tests;
