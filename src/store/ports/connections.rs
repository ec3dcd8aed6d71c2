//! The processor connections port: merchants' connections with their sealed
//! credentials, and the merchant's route per mode (which connector new
//! payments go to).

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::domain::ids::{ConnectionId, MerchantId, PaymentId};
use crate::domain::tenant::Tenant;
use crate::store::processor_connections::ConnectionRow;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

pub trait ConnectionStore: Send + Sync {
    /// The tenant's connection `id` (active or disabled); `None` if missing,
    /// another merchant's or of the other mode.
    fn get_connection(
        &self,
        tenant: &Tenant,
        id: &ConnectionId,
    ) -> impl Future<Output = Result<Option<ConnectionRow>, StoreError>> + Send;

    /// Up to `limit` of the tenant's connections with ids after `after`, in
    /// id order.
    fn list_connections(
        &self,
        tenant: &Tenant,
        after: Option<&ConnectionId>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ConnectionRow>, StoreError>> + Send;

    /// Up to `limit` connections of the merchant in both modes with ids
    /// after `after`, in id order (operators).
    fn list_merchant_connections(
        &self,
        merchant: &MerchantId,
        after: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ConnectionRow>, StoreError>> + Send;

    /// Stages a new connection; an id collision fails the unit with
    /// `Duplicate`, a merchant that does not exist with `Constraint`.
    fn insert_connection(&self, work: &mut UnitOfWork, row: &ConnectionRow);

    /// Stages disabling the tenant's active connection; one missing, already
    /// disabled or not the tenant's at commit time fails the unit with
    /// `Conflict`.
    fn disable_connection(&self, work: &mut UnitOfWork, tenant: &Tenant, id: &ConnectionId, now: i64);

    /// Stages routing the tenant's new payments to `connector`; `None` means
    /// the sandbox in test mode and no connector in live mode. A merchant
    /// that does not exist fails the unit with `Conflict`.
    fn set_merchant_route(&self, work: &mut UnitOfWork, tenant: &Tenant, connector: Option<&str>);

    /// Stages moving the tenant's route off `connection` if it is there (to
    /// the sandbox in test mode, to none in live mode); otherwise nothing.
    fn unroute_merchant(&self, work: &mut UnitOfWork, tenant: &Tenant, connection: &ConnectionId);

    /// Stages setting (or clearing) the fallback of the tenant's connection
    /// `id`; one missing or another tenant's fails the unit with `Conflict`.
    fn set_connection_fallback(
        &self,
        work: &mut UnitOfWork,
        tenant: &Tenant,
        id: &ConnectionId,
        fallback: Option<&ConnectionId>,
    );

    /// Stages recording that the tenant's payment is now served by
    /// `connector` (a failover); a payment not the tenant's changes nothing.
    fn reroute_payment(&self, work: &mut UnitOfWork, tenant: &Tenant, payment: &PaymentId, connector: &str);

    /// Up to `limit` connections of any merchant whose credentials are
    /// wrapped under a KEK other than `version`, ids after `after`, in id
    /// order (KEK rotation).
    fn connections_not_at_kek_version(
        &self,
        version: i64,
        after: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ConnectionRow>, StoreError>> + Send;

    /// Stages a re-wrapped data key (`to`, `wrapped_dek`) for connection
    /// `id`, conditionally on its wrapped key still being
    /// `expected_wrapped`: `changed` is set to whether it was; a row that
    /// changed meanwhile is skipped, never an error.
    fn rewrap_connection(
        &self,
        work: &mut UnitOfWork,
        id: &str,
        expected_wrapped: &str,
        to: i64,
        wrapped_dek: &str,
        changed: Arc<AtomicBool>,
    );

    /// How many sealed credentials each KEK version wraps, by version.
    fn connection_credentials_by_kek_version(&self)
        -> impl Future<Output = Result<Vec<(i64, i64)>, StoreError>> + Send;
}
