//! The webhook deliveries port: what the delivery worker (`webhooks`) reads
//! and writes of the outbox's fan-out. A delivery is taken under a lease (a
//! token and an expiry) so that one worker, on any replica, owns its
//! attempt; its attempt and its outcome are written only while the lease is
//! still that token's, so a worker whose lease ran out cannot overwrite the
//! next owner's result.
//!
//! Writes of a round of claims or a batch of records are staged together
//! into one unit (on the SQL backend a few multi-row statements); the
//! counts they return are read once the unit is committed.

use std::future::Future;

use crate::store::unit_of_work::UnitOfWork;
use crate::store::webhook_attempts::AttemptRow;
use crate::store::webhook_deliveries::{AttemptOutcome, DeliveryKey, DeliveryRow, Finish};
use crate::store::write_op::RowCounts;
use crate::store::StoreError;

pub trait WebhookDeliveryStore: Send + Sync {
    /// Up to `limit` deliveries that are pending, due at `now`
    /// (`next_attempt_at <= now`), not leased (no lease, or one that ended
    /// before `now`) and whose endpoint is enabled, with at most
    /// `per_endpoint` per endpoint counting the ones leased now: each
    /// endpoint's due deliveries are numbered, leased ones first, then by
    /// `next_attempt_at` and event id, and only free ones numbered up to
    /// `per_endpoint` are returned, by number, then `next_attempt_at` (every
    /// endpoint's first before any endpoint's second). Candidates only: a
    /// claim decides. Empty if none.
    fn due_deliveries(
        &self,
        now: i64,
        per_endpoint: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<DeliveryRow>, StoreError>> + Send;

    /// Stages taking the leases of `keys` under `token` until `until`, each
    /// only if its delivery is still pending, due and not leased at `now`;
    /// never fails the unit. The counts say how many were taken, once the
    /// unit is committed (fewer than asked: another worker took some first;
    /// [`claimed_deliveries`](Self::claimed_deliveries) says which).
    fn claim_deliveries(
        &self,
        work: &mut UnitOfWork,
        keys: &[DeliveryKey<'_>],
        token: &str,
        now: i64,
        until: i64,
    ) -> RowCounts;

    /// Which of `keys` are leased under `token` now, as `(endpoint_id,
    /// event_id)`; keys of no delivery are left out.
    fn claimed_deliveries(
        &self,
        keys: &[DeliveryKey<'_>],
        token: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// Stages inserting each attempt only while its delivery is leased under
    /// the token beside it (stage it before the outcome, which gives the
    /// lease back); an attempt whose lease is gone is left out, never an
    /// error; an attempt id collision fails the unit with `Duplicate`.
    fn insert_attempts_if_leased(&self, work: &mut UnitOfWork, rows: &[(&AttemptRow, &str)]);

    /// Stages writing each attempt's outcome (status, one more attempt,
    /// next attempt time, last status code and error, `updated_at`) and
    /// giving its lease back, each only if its delivery is still leased
    /// under its token; never fails the unit. The counts say how many were
    /// written, once the unit is committed.
    fn finish_deliveries(&self, work: &mut UnitOfWork, rows: &[Finish<'_>]) -> RowCounts;

    /// Stages one attempt's outcome as [`finish_deliveries`](Self::finish_deliveries)
    /// does, except that a delivery no longer leased under `token` (or
    /// missing) fails the unit with `Conflict`.
    fn finish_leased_delivery(
        &self,
        work: &mut UnitOfWork,
        key: DeliveryKey<'_>,
        token: &str,
        outcome: &AttemptOutcome<'_>,
    );

    /// Stages giving a lease back unused (the attempt was not sent), so the
    /// delivery is due again at once; a lease that is no longer `token`'s is
    /// left alone, never an error.
    fn release_delivery(&self, work: &mut UnitOfWork, key: DeliveryKey<'_>, token: &str);

    /// Which of the attempt ids `ids` are stored; unknown ids are left out.
    fn recorded_attempts(&self, ids: &[&str]) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}
