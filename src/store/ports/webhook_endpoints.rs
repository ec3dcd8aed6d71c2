//! The webhook endpoints port: a merchant's endpoints, their subscriptions
//! and sealed signing secrets, and what the merchant sees of their
//! deliveries (giving up the pending ones, listing the attempts).
//!
//! A deleted endpoint (`status = 'deleted'`) has no secrets left and is
//! invisible to every tenant-scoped primitive, like a missing one.

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::domain::ids::{WebhookAttemptId, WebhookEndpointId};
use crate::domain::tenant::Tenant;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::webhook_attempts::AttemptRow;
use crate::store::webhook_endpoints::{EndpointRow, EndpointUpdate, Rotation};
use crate::store::StoreError;

pub trait WebhookEndpointStore: Send + Sync {
    /// The tenant's endpoint `id`; `None` if missing, deleted, another
    /// merchant's or of the other mode.
    fn get_endpoint(
        &self,
        tenant: &Tenant,
        id: &WebhookEndpointId,
    ) -> impl Future<Output = Result<Option<EndpointRow>, StoreError>> + Send;

    /// The endpoint `id` whatever its merchant, mode or status (the delivery
    /// worker, which reads ids from its own deliveries); `None` if missing.
    fn get_endpoint_any(&self, id: &str) -> impl Future<Output = Result<Option<EndpointRow>, StoreError>> + Send;

    /// Up to `limit` of the tenant's endpoints (not deleted) with ids after
    /// `after`, in id order.
    fn list_endpoints(
        &self,
        tenant: &Tenant,
        after: Option<&WebhookEndpointId>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<EndpointRow>, StoreError>> + Send;

    /// Stages a new endpoint; an id collision fails the unit with
    /// `Duplicate`, a merchant that does not exist with `Constraint`.
    fn insert_endpoint(&self, work: &mut UnitOfWork, row: &EndpointRow);

    /// Stages new url, subscriptions and status of the tenant's endpoint;
    /// one missing, deleted or not the tenant's at commit time fails the
    /// unit with `Conflict`.
    fn update_endpoint(
        &self,
        work: &mut UnitOfWork,
        tenant: &Tenant,
        id: &WebhookEndpointId,
        change: &EndpointUpdate<'_>,
    );

    /// Stages disabling an enabled endpoint (the delivery worker); one that
    /// is not enabled at commit time fails the unit with `Conflict`.
    fn disable_endpoint(&self, work: &mut UnitOfWork, id: &str, now: i64);

    /// Stages marking the tenant's endpoint deleted, destroying both sealed
    /// secrets; one missing, already deleted or not the tenant's at commit
    /// time fails the unit with `Conflict`.
    fn delete_endpoint(&self, work: &mut UnitOfWork, tenant: &Tenant, id: &WebhookEndpointId, now: i64);

    /// Stages a new secret, keeping the current one as the previous until
    /// `rotation.previous_expires_at`; conditional on the current secret's
    /// ciphertext being `rotation.expected_ciphertext`, so of two concurrent
    /// rotations one fails its unit with `Conflict` (as does an endpoint
    /// missing, deleted or not the tenant's).
    fn rotate_endpoint_secret(
        &self,
        work: &mut UnitOfWork,
        tenant: &Tenant,
        id: &WebhookEndpointId,
        rotation: &Rotation<'_>,
    );

    /// Up to `limit` endpoints of any merchant (not deleted) whose current or
    /// previous secret is wrapped under a KEK other than `version`, with ids
    /// after `after`, in id order (KEK rotation).
    fn endpoints_not_at_kek_version(
        &self,
        version: i64,
        after: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<EndpointRow>, StoreError>> + Send;

    /// Stages re-wrapped data keys for the endpoint (`previous` only when it
    /// has a previous secret), conditional on its current ciphertext still
    /// being `expected_ciphertext`: `changed` is set to whether it was, and a
    /// row that changed meanwhile (or is gone) is skipped, never an error.
    fn rewrap_endpoint_secrets(
        &self,
        work: &mut UnitOfWork,
        id: &str,
        expected_ciphertext: &str,
        current: (i64, &str),
        previous: Option<(i64, &str)>,
        changed: Arc<AtomicBool>,
    );

    /// How many sealed secrets (current and previous) are wrapped under each
    /// KEK version, by version.
    fn endpoint_secrets_by_kek_version(&self) -> impl Future<Output = Result<Vec<(i64, i64)>, StoreError>> + Send;

    /// Stages giving up every pending delivery to the endpoint (as failed,
    /// with `reason`); none pending is not an error.
    fn fail_pending_deliveries(&self, work: &mut UnitOfWork, endpoint_id: &str, reason: &str, now: i64);

    /// Up to `limit` delivery attempts to the tenant's endpoint, newest
    /// first, older than `before` when given; empty for an endpoint of
    /// another merchant or mode.
    fn list_attempts(
        &self,
        tenant: &Tenant,
        endpoint: &WebhookEndpointId,
        before: Option<&WebhookAttemptId>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<AttemptRow>, StoreError>> + Send;
}
