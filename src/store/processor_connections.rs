//! The `processor_connections` table: merchants' processor connections with
//! their credentials sealed (never in clear), and the merchant's route per
//! mode (`merchants.connector`, `merchants.live_connector`) that the
//! connections service sets.
//!
//! Single-statement primitives. Reads and writes are scoped by tenant
//! (merchant and mode): an id of another merchant or of the other mode reads
//! as absent (`None`, or a write that fails its unit with `Conflict`),
//! exactly like a missing one.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use sqlx::{Any, Executor};

use super::unit_of_work::UnitOfWork;
use super::write_op::{Failure, WriteOp};
use super::StoreError;
use crate::domain::api_key::Mode;
use crate::domain::ids::{ConnectionId, MerchantId, PaymentId};
use crate::domain::tenant::Tenant;

/// A connection row as stored. `wrapped_dek` and `ciphertext` are the sealed
/// credentials (base64) under KEK `kek_version`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConnectionRow {
    pub id: String,
    pub merchant_id: String,
    pub mode: String,
    pub kind: String,
    /// `active` or `disabled`.
    pub status: String,
    pub secret_key_last4: String,
    /// 1 when the sealed credentials hold a webhook signing secret.
    pub has_webhook_secret: i64,
    pub kek_version: i64,
    pub wrapped_dek: String,
    pub ciphertext: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    /// The connection (`conn_…`, same merchant and mode) an authorization
    /// that could not reach this one's processor goes to instead.
    pub fallback: Option<String>,
}

pub(super) const COLUMNS: &str = "id, merchant_id, mode, kind, status, secret_key_last4, has_webhook_secret, \
     kek_version, wrapped_dek, ciphertext, created_at, disabled_at, fallback";

/// Adds a new connection; a duplicate id fails the unit with `Duplicate`.
pub fn insert(work: &mut UnitOfWork, row: &ConnectionRow) {
    work.push(
        WriteOp::new(
            "INSERT INTO processor_connections (id, merchant_id, mode, kind, status, secret_key_last4, \
             has_webhook_secret, kek_version, wrapped_dek, ciphertext, created_at, disabled_at, fallback) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            vec![
                row.id.as_str().into(),
                row.merchant_id.as_str().into(),
                row.mode.as_str().into(),
                row.kind.as_str().into(),
                row.status.as_str().into(),
                row.secret_key_last4.as_str().into(),
                row.has_webhook_secret.into(),
                row.kek_version.into(),
                row.wrapped_dek.as_str().into(),
                row.ciphertext.as_str().into(),
                row.created_at.into(),
                row.disabled_at.into(),
                row.fallback.as_deref().into(),
            ],
        )
        .expect_one(Failure::Duplicate),
    );
}

/// The tenant's connection, unless missing or another tenant's.
pub async fn get<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    id: &ConnectionId,
) -> Result<Option<ConnectionRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM processor_connections WHERE id = $1 AND merchant_id = $2 AND mode = $3"
    ))
    .bind(id.as_str())
    .bind(tenant.merchant_str())
    .bind(tenant.mode_str())
    .fetch_optional(db)
    .await?)
}

/// Up to `limit` of the tenant's connections in id order, after `after`.
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    after: Option<&ConnectionId>,
    limit: i64,
) -> Result<Vec<ConnectionRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM processor_connections WHERE merchant_id = $1 AND mode = $2 \
         AND ($3 IS NULL OR id > $3) ORDER BY id LIMIT $4"
    ))
    .bind(tenant.merchant_str())
    .bind(tenant.mode_str())
    .bind(after.map(ConnectionId::as_str))
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Up to `limit` connections of a merchant (both modes) in id order, after
/// `after` (the operator's listing).
pub async fn list_for_merchant<'e>(
    db: impl Executor<'e, Database = Any>,
    merchant: &MerchantId,
    after: &str,
    limit: i64,
) -> Result<Vec<ConnectionRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM processor_connections WHERE merchant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    ))
    .bind(merchant.as_str())
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Disables the tenant's active connection; one missing, already disabled
/// or another tenant's fails the unit with `Conflict`.
pub fn disable(work: &mut UnitOfWork, tenant: &Tenant, id: &ConnectionId, now: i64) {
    work.push(
        WriteOp::new(
            "UPDATE processor_connections SET status = 'disabled', disabled_at = $1 \
             WHERE id = $2 AND merchant_id = $3 AND mode = $4 AND status = 'active'",
            vec![
                now.into(),
                id.as_str().into(),
                tenant.merchant_str().into(),
                tenant.mode_str().into(),
            ],
        )
        .expect_one(Failure::Conflict),
    );
}

/// Sets (or, with `None`, clears) the fallback of the tenant's connection
/// `id`; one missing or another tenant's fails the unit with `Conflict`.
pub fn set_fallback(work: &mut UnitOfWork, tenant: &Tenant, id: &ConnectionId, fallback: Option<&ConnectionId>) {
    work.push(
        WriteOp::new(
            "UPDATE processor_connections SET fallback = $1 WHERE id = $2 AND merchant_id = $3 AND mode = $4",
            vec![
                fallback.map(ConnectionId::as_str).into(),
                id.as_str().into(),
                tenant.merchant_str().into(),
                tenant.mode_str().into(),
            ],
        )
        .expect_one(Failure::Conflict),
    );
}

/// Records that the tenant's payment `payment` is now served by connector
/// `connector` (an authorization failed over to a fallback connection);
/// changes nothing if the payment is not the tenant's.
pub fn reroute_payment(work: &mut UnitOfWork, tenant: &Tenant, payment: &PaymentId, connector: &str) {
    work.push(WriteOp::new(
        "UPDATE payments SET connector = $1 WHERE merchant_id = $2 AND id = $3 AND mode = $4",
        vec![
            connector.into(),
            tenant.merchant_str().into(),
            payment.as_str().into(),
            tenant.mode_str().into(),
        ],
    ));
}

/// Routes the tenant's new payments to `connector` (a connection id, or a
/// built-in name); `None` (live mode only) leaves it without one. A merchant
/// that does not exist fails the unit with `Conflict`.
pub fn set_route(work: &mut UnitOfWork, tenant: &Tenant, connector: Option<&str>) {
    let sql = match tenant.mode() {
        Mode::Test => "UPDATE merchants SET connector = COALESCE($1, 'sandbox') WHERE id = $2",
        Mode::Live => "UPDATE merchants SET live_connector = $1 WHERE id = $2",
    };
    work.push(WriteOp::new(sql, vec![connector.into(), tenant.merchant_str().into()]).expect_one(Failure::Conflict));
}

/// Moves the tenant's route away from `connection` if it is there: to the
/// sandbox in test mode, to none in live mode. Changes nothing otherwise.
pub fn unroute(work: &mut UnitOfWork, tenant: &Tenant, connection: &ConnectionId) {
    let sql = match tenant.mode() {
        Mode::Test => "UPDATE merchants SET connector = 'sandbox' WHERE id = $1 AND connector = $2",
        Mode::Live => "UPDATE merchants SET live_connector = NULL WHERE id = $1 AND live_connector = $2",
    };
    work.push(WriteOp::new(
        sql,
        vec![tenant.merchant_str().into(), connection.as_str().into()],
    ));
}

/// Up to `limit` connections of any merchant whose credentials are wrapped
/// under a KEK other than `version`, with ids after `after`, in id order.
pub async fn page_not_at_version<'e>(
    db: impl Executor<'e, Database = Any>,
    version: i64,
    after: &str,
    limit: i64,
) -> Result<Vec<ConnectionRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM processor_connections WHERE kek_version <> $1 AND id > $2 ORDER BY id LIMIT $3"
    ))
    .bind(version)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Re-wraps a connection's data key, conditionally on it still being
/// `expected_wrapped`; `changed` reports whether it was.
pub fn rewrap(
    work: &mut UnitOfWork,
    id: &str,
    expected_wrapped: &str,
    to: i64,
    wrapped_dek: &str,
    changed: Arc<AtomicBool>,
) {
    work.push(
        WriteOp::new(
            "UPDATE processor_connections SET kek_version = $1, wrapped_dek = $2 WHERE id = $3 AND wrapped_dek = $4",
            vec![to.into(), wrapped_dek.into(), id.into(), expected_wrapped.into()],
        )
        .report_to(changed),
    );
}

/// Sealed credentials per KEK version, by version.
pub async fn count_by_kek_version<'e>(db: impl Executor<'e, Database = Any>) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT kek_version, COUNT(*) FROM processor_connections GROUP BY kek_version ORDER BY kek_version",
    )
    .fetch_all(db)
    .await?)
}

impl super::ports::ConnectionStore for super::Store {
    async fn get_connection(&self, tenant: &Tenant, id: &ConnectionId) -> Result<Option<ConnectionRow>, StoreError> {
        get(self.reader(), tenant, id).await
    }

    async fn list_connections(
        &self,
        tenant: &Tenant,
        after: Option<&ConnectionId>,
        limit: i64,
    ) -> Result<Vec<ConnectionRow>, StoreError> {
        list(self.reader(), tenant, after, limit).await
    }

    async fn list_merchant_connections(
        &self,
        merchant: &MerchantId,
        after: &str,
        limit: i64,
    ) -> Result<Vec<ConnectionRow>, StoreError> {
        list_for_merchant(self.reader(), merchant, after, limit).await
    }

    fn insert_connection(&self, work: &mut UnitOfWork, row: &ConnectionRow) {
        insert(work, row);
    }

    fn disable_connection(&self, work: &mut UnitOfWork, tenant: &Tenant, id: &ConnectionId, now: i64) {
        disable(work, tenant, id, now);
    }

    fn set_merchant_route(&self, work: &mut UnitOfWork, tenant: &Tenant, connector: Option<&str>) {
        set_route(work, tenant, connector);
    }

    fn unroute_merchant(&self, work: &mut UnitOfWork, tenant: &Tenant, connection: &ConnectionId) {
        unroute(work, tenant, connection);
    }

    fn set_connection_fallback(
        &self,
        work: &mut UnitOfWork,
        tenant: &Tenant,
        id: &ConnectionId,
        fallback: Option<&ConnectionId>,
    ) {
        set_fallback(work, tenant, id, fallback);
    }

    fn reroute_payment(&self, work: &mut UnitOfWork, tenant: &Tenant, payment: &PaymentId, connector: &str) {
        reroute_payment(work, tenant, payment, connector);
    }

    async fn connections_not_at_kek_version(
        &self,
        version: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<ConnectionRow>, StoreError> {
        page_not_at_version(self.reader(), version, after, limit).await
    }

    fn rewrap_connection(
        &self,
        work: &mut UnitOfWork,
        id: &str,
        expected_wrapped: &str,
        to: i64,
        wrapped_dek: &str,
        changed: Arc<AtomicBool>,
    ) {
        rewrap(work, id, expected_wrapped, to, wrapped_dek, changed);
    }

    async fn connection_credentials_by_kek_version(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        count_by_kek_version(self.reader()).await
    }
}
