//! The idempotency port: one record per tenant, API-key lineage and client
//! key, claimed by a request, then finished with its sealed answer or
//! released. (The KEK rotation of stored answers still reads and writes
//! through `store::idempotency_keys`.)

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::domain::time::Timestamp;
use crate::store::idempotency_keys::{Finished, IdempotencyRow, NewClaim, RecordKey};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

pub trait IdempotencyStore: Send + Sync {
    /// Stages claiming the record: a new in-progress record, or one that
    /// replaces the record holding the key if that expired (`expires_at` ≤
    /// the claim's `now`), or is in progress with an expired lock and the
    /// same request MAC. Any other record holding the key fails the unit
    /// with `Duplicate`; a merchant that does not exist with `Constraint`.
    fn claim_idempotency_key(&self, work: &mut UnitOfWork, claim: &NewClaim<'_>);

    /// The record, whatever its state or age; `None` if there is none.
    fn get_idempotency_record(
        &self,
        record: RecordKey<'_>,
    ) -> impl Future<Output = Result<Option<IdempotencyRow>, StoreError>> + Send;

    /// Stages storing the answer and marking the record done, only if
    /// `request_id` still holds it in progress; never fails the unit.
    /// `changed` is set at commit to whether it did (a takeover wins).
    fn finish_idempotency_record(
        &self,
        work: &mut UnitOfWork,
        record: RecordKey<'_>,
        request_id: &str,
        finished: &Finished<'_>,
        changed: Arc<AtomicBool>,
    );

    /// Stages deleting the record if `request_id` still holds it in
    /// progress; otherwise changes nothing and never fails the unit.
    fn release_idempotency_record(&self, work: &mut UnitOfWork, record: RecordKey<'_>, request_id: &str);

    /// Deletes every record that expired at or before `now`, at once (not
    /// staged: maintenance); returns how many.
    fn delete_expired_idempotency_records(
        &self,
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
