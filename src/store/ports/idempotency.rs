//! The idempotency port: one record per tenant, API-key lineage and client
//! key, claimed by a request, then finished with its sealed answer or
//! released. The KEK rotation walks the stored answers not yet under the
//! target KEK and re-wraps each one's data key conditionally
//! (`services::kek_rotation`).

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::domain::time::Timestamp;
use crate::store::idempotency_keys::{Finished, IdempotencyRow, NewClaim, RecordKey, WrappedResponseRow};
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

    /// How many stored answers (records done) each KEK version wraps, by
    /// version; versions that wrap none are absent.
    fn idempotency_responses_by_kek_version(&self) -> impl Future<Output = Result<Vec<(i64, i64)>, StoreError>> + Send;

    /// Up to `limit` stored answers after the record `after` (in
    /// merchant, mode, lineage, key order; all four empty: from the start)
    /// whose data key is wrapped by a KEK other than `version`, in that
    /// order; an empty page past the last one.
    fn idempotency_responses_not_at_kek_version(
        &self,
        version: i64,
        after: RecordKey<'_>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<WrappedResponseRow>, StoreError>> + Send;

    /// Stages replacing the stored answer's wrapped data key by
    /// `wrapped_dek` under KEK `to`, only if the record is done and still
    /// holds `old_wrapped_dek`: `changed` is set at commit to whether it
    /// did; a record expired, reused or re-wrapped meanwhile (or missing) is
    /// skipped, never an error.
    fn rewrap_idempotency_response(
        &self,
        work: &mut UnitOfWork,
        record: RecordKey<'_>,
        old_wrapped_dek: &str,
        to: i64,
        wrapped_dek: &str,
        changed: Arc<AtomicBool>,
    );
}
