//! An in-memory double of every storage port (`store::ports`), compiled for
//! tests only: the services' unit tests run against it, and the contract
//! tests (`store::contract`) hold it to the same assertions as SQLite and
//! PostgreSQL.
//!
//! What must hold, as for the database: reads see committed state only; a
//! write is a [`Change`] staged into the unit of work and applied at
//! [`Commit::commit`], where the unit applies whole or not at all (the
//! changes run on a copy of the tables, which replaces them only if every
//! change succeeded); a change that finds its row missing or not in the
//! expected state fails the unit with `Conflict`, an insert colliding on a
//! unique value with `Duplicate`, a reference to a merchant that does not
//! exist with `Constraint`; tenant-scoped primitives match merchant and mode.
//! Audit entries are chained at commit exactly as the database chains them
//! (`domain::audit::chain_hash`), so the trail verifies.
//!
//! A unit holding SQL statements (staged through `store::<table>` functions
//! rather than a port) is refused with `Corrupt`: a service not yet written
//! against the ports cannot pass a test on the double by writing nothing.

mod api_keys;
mod auth;
mod connections;
mod events;
mod fraud;
mod fraud_signals;
mod idempotency;
mod lockouts;
mod merchants;
mod operators;
mod payments;
mod sca;
mod tokens;
mod webhook_deliveries;
mod webhook_endpoints;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::card_tokens::TokenRow;
use super::events::EventRow;
use super::ports::{AuditStore, Commit};
use super::unit_of_work::UnitOfWork;
use super::webhook_attempts::AttemptRow;
use super::webhook_deliveries::DeliveryRow;
use super::webhook_endpoints::EndpointRow;
use super::StoreError;
use crate::domain::api_key::ApiKey;
use crate::domain::audit::{chain_hash, AuditRecord, GENESIS_HASH};
use crate::domain::merchant::Merchant;
use crate::domain::payment::{Payment, Refund};

/// The double: cheap to clone, every clone sees the same tables.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    /// A std mutex: it is never held across an `.await`.
    tables: Arc<Mutex<Tables>>,
    /// The generation of authentication state, moved on at once by every
    /// [`Commit::auth_state_changed`] (no other process caches this state).
    auth_state: Arc<super::auth_state::AuthState>,
}

/// Every table of the double, as plain maps keyed like the database's.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    merchants: BTreeMap<String, Merchant>,
    /// Keys by id, with the keyed hash of their plaintext.
    api_keys: BTreeMap<String, (ApiKey, String)>,
    endpoints: BTreeMap<String, EndpointRow>,
    connections: BTreeMap<String, super::processor_connections::ConnectionRow>,
    /// Deliveries by (endpoint, event).
    deliveries: BTreeMap<(String, String), DeliveryRow>,
    /// Leases of deliveries by (endpoint, event): (token, until ms).
    leases: BTreeMap<(String, String), (String, i64)>,
    attempts: BTreeMap<String, AttemptRow>,
    tokens: BTreeMap<String, TokenRow>,
    /// Events by (merchant, id), as the database keys them.
    events: BTreeMap<(String, String), EventRow>,
    /// Payments by (merchant, id), refunds by id, as the database keys them.
    payments: BTreeMap<(String, String), Payment>,
    refunds: BTreeMap<String, Refund>,
    /// Idempotency records by (merchant, mode, lineage, key).
    idempotency: BTreeMap<idempotency::RecordId, super::idempotency_keys::IdempotencyRow>,
    /// Fraud rule sets by (merchant, mode, version); the active version by
    /// (merchant, mode); lists by (merchant, mode, name).
    fraud_sets: BTreeMap<(String, String, i64), super::fraud::RuleSetRow>,
    fraud_active: BTreeMap<(String, String), i64>,
    fraud_lists: BTreeMap<(String, String, String), super::fraud::ListRow>,
    /// SCA counters by (merchant, mode, fingerprint).
    sca_counters: BTreeMap<(String, String, String), super::sca::ScaCounterRow>,
    /// Fraud observations by (merchant, mode, payment, at).
    fraud_observations: BTreeMap<(String, String, String, i64), super::fraud_signals::ObservationRow>,
    /// Reveal allowances by key id: (window start, reveals used).
    reveal_allowances: BTreeMap<String, (i64, i64)>,
    /// Failed authentications: (client address, at ms), in insertion order.
    auth_failures: Vec<(String, i64)>,
    /// Lockouts by client address: locked until (ms).
    lockouts: BTreeMap<String, i64>,
    /// Operators by id; their failed codes: (operator id, at ms).
    operators: BTreeMap<String, super::operators::OperatorRow>,
    operator_failures: Vec<(String, i64)>,
    audit: Vec<AuditRecord>,
}

/// One staged write of the double: applied to the tables at commit, it
/// fails the whole unit by returning an error.
pub struct Change(Box<Apply>);

type Apply = dyn FnOnce(&mut Tables) -> Result<(), StoreError> + Send;

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Change")
    }
}

/// Stages `apply` into `work`.
fn stage(work: &mut UnitOfWork, apply: impl FnOnce(&mut Tables) -> Result<(), StoreError> + Send + 'static) {
    work.stage(Change(Box::new(apply)));
}

/// The row a write must change, or the unit fails with `Conflict`.
fn matched<T>(row: Option<T>) -> Result<T, StoreError> {
    row.ok_or(StoreError::Conflict)
}

/// A page size as the database takes it (a negative limit reads nothing).
fn limit(limit: i64) -> usize {
    usize::try_from(limit).unwrap_or(0)
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `read` on the committed tables.
    fn read<T>(&self, read: impl FnOnce(&Tables) -> T) -> T {
        read(&self.tables.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs `f` on the committed tables: a test's setup of state exactly as
    /// it wants it (a delivery in a given state, an attempt), or its look
    /// at them.
    pub fn with_tables<T>(&self, f: impl FnOnce(&mut Tables) -> T) -> T {
        f(&mut self.tables.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Tables {
    /// Adds a delivery as it is (test setup; the events port fans out).
    pub fn add_delivery(&mut self, row: DeliveryRow) {
        self.deliveries
            .insert((row.endpoint_id.clone(), row.event_id.clone()), row);
    }

    /// The delivery of `event_id` to `endpoint_id`.
    pub fn delivery(&self, endpoint_id: &str, event_id: &str) -> Option<&DeliveryRow> {
        self.deliveries.get(&(endpoint_id.to_owned(), event_id.to_owned()))
    }

    /// Adds an attempt (test setup).
    pub fn add_attempt(&mut self, row: AttemptRow) {
        self.attempts.insert(row.id.clone(), row);
    }

    fn merchant_exists(&self, id: &str) -> Result<(), StoreError> {
        if self.merchants.contains_key(id) {
            Ok(())
        } else {
            Err(StoreError::Constraint("merchant_id references no merchant".into()))
        }
    }
}

impl Commit for MemoryStore {
    async fn commit(&self, work: UnitOfWork) -> Result<(), StoreError> {
        let (staged, job) = work.into_staged();
        if !job.ops.is_empty() {
            return Err(StoreError::Corrupt(
                "an SQL statement was committed to the in-memory store".into(),
            ));
        }
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = tables.clone();
        for Change(apply) in staged {
            apply(&mut next)?;
        }
        for event in job.audit {
            let (seq, prev_hash) = next
                .audit
                .last()
                .map_or((1, GENESIS_HASH.to_owned()), |last| (last.seq + 1, last.hash.clone()));
            let hash = chain_hash(seq, &event, &prev_hash);
            next.audit.push(AuditRecord {
                seq,
                event,
                prev_hash,
                hash,
            });
        }
        *tables = next;
        Ok(())
    }

    async fn auth_state_changed(&self) {
        self.auth_state.moved_on();
    }
}

impl AuditStore for MemoryStore {
    async fn audit_head(&self) -> Result<(i64, String), StoreError> {
        Ok(self.read(|t| {
            t.audit
                .last()
                .map_or((0, GENESIS_HASH.to_owned()), |last| (last.seq, last.hash.clone()))
        }))
    }

    async fn audit_page(&self, after: i64, page: i64) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(self.read(|t| {
            t.audit
                .iter()
                .filter(|r| r.seq > after)
                .take(limit(page))
                .cloned()
                .collect()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::MerchantId;
    use crate::store::ports::MerchantStore;
    use crate::store::write_op::WriteOp;

    /// A unit is applied by the backend that staged it, never half by
    /// another: the double refuses SQL statements, the database the
    /// double's changes.
    #[tokio::test]
    async fn a_unit_staged_for_one_backend_is_refused_by_the_other() {
        let memory = MemoryStore::new();
        let merchant = crate::store::contract::new_merchant("Mixed");
        let mut work = UnitOfWork::new();
        memory.insert_merchant(&mut work, &merchant);
        work.push(WriteOp::new(
            "DELETE FROM merchants WHERE id = $1",
            vec!["mer_x".into()],
        ));
        let result = memory.commit(work).await;
        assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
        assert!(memory.get_merchant(&merchant.id).await.unwrap().is_none());

        let db = crate::store::contract::TestDb::sqlite().await;
        let mut work = UnitOfWork::new();
        memory.insert_merchant(&mut work, &merchant);
        let result = db.store.commit(work).await;
        assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
        assert!(db.store.get_merchant(&merchant.id).await.unwrap().is_none());
        db.finish().await;
    }

    /// Changes of one unit see the ones staged before them, and a failure
    /// late in the unit leaves the tables as they were.
    #[tokio::test]
    async fn a_unit_applies_in_order_and_all_or_nothing() {
        let store = MemoryStore::new();
        let id = MerchantId::generate().unwrap();
        let merchant = Merchant {
            id: id.clone(),
            ..crate::store::contract::new_merchant("Ordered")
        };
        let mut work = UnitOfWork::new();
        store.insert_merchant(&mut work, &merchant);
        store.rename_merchant(
            &mut work,
            &id,
            &crate::domain::merchant::MerchantName::parse("Renamed").unwrap(),
        );
        store.commit(work).await.unwrap();
        assert_eq!(store.get_merchant(&id).await.unwrap().unwrap().name.as_str(), "Renamed");

        let mut work = UnitOfWork::new();
        store.rename_merchant(
            &mut work,
            &id,
            &crate::domain::merchant::MerchantName::parse("Lost").unwrap(),
        );
        work.audit(crate::domain::audit::AuditEvent::new(
            "test.lost",
            crate::domain::audit::Outcome::Success,
        ));
        store.unfreeze_merchant(&mut work, &id);
        assert!(matches!(store.commit(work).await, Err(StoreError::Conflict)));
        assert_eq!(store.get_merchant(&id).await.unwrap().unwrap().name.as_str(), "Renamed");
        assert_eq!(store.audit_head().await.unwrap().0, 0);
    }
}
