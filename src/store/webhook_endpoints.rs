//! The `webhook_endpoints` table: a merchant's endpoints, their subscriptions
//! and their signing secrets, sealed (never in clear).
//!
//! Single-statement primitives. Reads and writes are scoped by tenant (merchant
//! and mode): an id of another merchant or of the other mode reads as absent
//! (`None`, or a write that fails its unit with `Conflict`), exactly like a
//! missing one. A deleted endpoint (`status = 'deleted'`) has no secrets left
//! and is invisible to `get` and `list`.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use sqlx::{Any, Executor};

use super::unit_of_work::UnitOfWork;
use super::write_op::{Failure, WriteOp};
use super::StoreError;
use crate::domain::ids::{WebhookAttemptId, WebhookEndpointId};
use crate::domain::tenant::Tenant;

/// An endpoint row as stored. `events` is a JSON array of event types (or
/// `["*"]`); the `secret_*` columns are a sealed record (base64).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: String,
    pub merchant_id: String,
    pub mode: String,
    pub url: String,
    pub events: String,
    pub status: String,
    pub kek_version: Option<i64>,
    pub secret_wrapped_dek: Option<String>,
    pub secret_ciphertext: Option<String>,
    pub previous_kek_version: Option<i64>,
    pub previous_wrapped_dek: Option<String>,
    pub previous_ciphertext: Option<String>,
    pub previous_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub disabled_at: Option<i64>,
}

/// The tests' fixture of an endpoint row.
#[cfg(test)]
mod fixtures {
    use super::EndpointRow;
    use crate::domain::api_key::Mode;
    use crate::domain::ids::WebhookEndpointId;

    impl EndpointRow {
        /// An enabled endpoint of `merchant_id` in `mode`, subscribed to every
        /// event, with a stand-in secret under KEK 1.
        pub(crate) fn for_tests(merchant_id: &str, mode: Mode) -> Self {
            let id = WebhookEndpointId::generate().unwrap();
            Self {
                merchant_id: merchant_id.to_owned(),
                mode: mode.as_str().to_owned(),
                url: "https://hooks.example/in".to_owned(),
                events: r#"["*"]"#.to_owned(),
                status: "enabled".to_owned(),
                kek_version: Some(1),
                secret_wrapped_dek: Some("wrapped-1".to_owned()),
                secret_ciphertext: Some(format!("cipher-{id}")),
                previous_kek_version: None,
                previous_wrapped_dek: None,
                previous_ciphertext: None,
                previous_expires_at: None,
                created_at: 1_700_000_000_000,
                updated_at: 1_700_000_000_000,
                disabled_at: None,
                id: id.to_string(),
            }
        }
    }
}

const COLUMNS: &str = "id, merchant_id, mode, url, events, status, kek_version, secret_wrapped_dek, \
     secret_ciphertext, previous_kek_version, previous_wrapped_dek, previous_ciphertext, previous_expires_at, \
     created_at, updated_at, disabled_at";

/// Adds a new endpoint; a duplicate id fails the unit with `Duplicate`.
pub fn insert(work: &mut UnitOfWork, row: &EndpointRow) {
    work.push(WriteOp::new(
        "INSERT INTO webhook_endpoints (id, merchant_id, mode, url, events, status, kek_version, \
         secret_wrapped_dek, secret_ciphertext, previous_kek_version, previous_wrapped_dek, previous_ciphertext, \
         previous_expires_at, created_at, updated_at, disabled_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        vec![
            row.id.as_str().into(),
            row.merchant_id.as_str().into(),
            row.mode.as_str().into(),
            row.url.as_str().into(),
            row.events.as_str().into(),
            row.status.as_str().into(),
            row.kek_version.into(),
            (&row.secret_wrapped_dek).into(),
            (&row.secret_ciphertext).into(),
            row.previous_kek_version.into(),
            (&row.previous_wrapped_dek).into(),
            (&row.previous_ciphertext).into(),
            row.previous_expires_at.into(),
            row.created_at.into(),
            row.updated_at.into(),
            row.disabled_at.into(),
        ],
    ));
}

/// The merchant's endpoint, unless missing, another merchant's, or deleted.
pub async fn get<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    id: &WebhookEndpointId,
) -> Result<Option<EndpointRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE id = $1 AND merchant_id = $2 AND mode = $3 \
         AND status <> 'deleted'"
    ))
    .bind(id.as_str())
    .bind(tenant.merchant_str())
    .bind(tenant.mode_str())
    .fetch_optional(db)
    .await?)
}

/// An endpoint by id alone, whatever its merchant or status (the delivery
/// worker, which reads ids from its own deliveries).
pub async fn get_any<'e>(db: impl Executor<'e, Database = Any>, id: &str) -> Result<Option<EndpointRow>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM webhook_endpoints WHERE id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

/// Up to `limit` of the merchant's endpoints (not deleted) in id order,
/// after `after` when given.
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    after: Option<&WebhookEndpointId>,
    limit: i64,
) -> Result<Vec<EndpointRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE merchant_id = $1 AND mode = $4 AND status <> 'deleted' \
         AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
    ))
    .bind(tenant.merchant_str())
    .bind(after.map(WebhookEndpointId::as_str))
    .bind(limit)
    .bind(tenant.mode_str())
    .fetch_all(db)
    .await?)
}

/// The new state of an endpoint in [`update`].
#[derive(Debug, Clone)]
pub struct EndpointUpdate<'a> {
    pub url: &'a str,
    /// JSON array, as in [`EndpointRow::events`].
    pub events: &'a str,
    /// `enabled` or `disabled`.
    pub status: &'a str,
    pub disabled_at: Option<i64>,
    pub now: i64,
}

/// Sets url, subscriptions and status of a live (not deleted) endpoint; one
/// that is not there for this tenant fails the unit with `Conflict`.
pub fn update(work: &mut UnitOfWork, tenant: &Tenant, id: &WebhookEndpointId, change: &EndpointUpdate<'_>) {
    work.push(
        WriteOp::new(
            "UPDATE webhook_endpoints SET url = $1, events = $2, status = $3, disabled_at = $4, updated_at = $5 \
             WHERE id = $6 AND merchant_id = $7 AND mode = $8 AND status <> 'deleted'",
            vec![
                change.url.into(),
                change.events.into(),
                change.status.into(),
                change.disabled_at.into(),
                change.now.into(),
                id.as_str().into(),
                tenant.merchant_str().into(),
                tenant.mode_str().into(),
            ],
        )
        .expect_one(Failure::Conflict),
    );
}

/// Disables an enabled endpoint (the delivery worker, after a delivery ran
/// out of retries); one that is not enabled at commit time fails the unit
/// with `Conflict`.
pub fn disable(work: &mut UnitOfWork, id: &str, now: i64) {
    work.push(
        WriteOp::new(
            "UPDATE webhook_endpoints SET status = 'disabled', disabled_at = $1, updated_at = $1 \
             WHERE id = $2 AND status = 'enabled'",
            vec![now.into(), id.into()],
        )
        .expect_one(Failure::Conflict),
    );
}

/// Marks the endpoint deleted and destroys both sealed secrets; one that is
/// not there for this tenant fails the unit with `Conflict`.
pub fn delete(work: &mut UnitOfWork, tenant: &Tenant, id: &WebhookEndpointId, now: i64) {
    work.push(
        WriteOp::new(
            "UPDATE webhook_endpoints SET status = 'deleted', kek_version = NULL, secret_wrapped_dek = NULL, \
             secret_ciphertext = NULL, previous_kek_version = NULL, previous_wrapped_dek = NULL, \
             previous_ciphertext = NULL, previous_expires_at = NULL, updated_at = $1 \
             WHERE id = $2 AND merchant_id = $3 AND mode = $4 AND status <> 'deleted'",
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

/// A sealed secret in its three columns.
#[derive(Debug, Clone)]
pub struct SealedColumns {
    pub kek_version: i64,
    pub wrapped_dek: String,
    pub ciphertext: String,
}

/// A secret rotation for [`rotate_secret`].
#[derive(Debug, Clone)]
pub struct Rotation<'a> {
    /// The current secret's ciphertext as read: the rotation applies only
    /// if it is still the current one.
    pub expected_ciphertext: &'a str,
    pub new: &'a SealedColumns,
    /// The old secret, kept until `previous_expires_at`.
    pub previous: &'a SealedColumns,
    pub previous_expires_at: i64,
    pub now: i64,
}

/// Replaces the secret and keeps the old one until it expires. Conditional
/// on the current secret being unchanged, so two concurrent rotations cannot
/// both win: an endpoint gone or rotated meanwhile fails the unit with
/// `Conflict`.
pub fn rotate_secret(work: &mut UnitOfWork, tenant: &Tenant, id: &WebhookEndpointId, rotation: &Rotation<'_>) {
    work.push(
        WriteOp::new(
            "UPDATE webhook_endpoints SET kek_version = $1, secret_wrapped_dek = $2, secret_ciphertext = $3, \
             previous_kek_version = $4, previous_wrapped_dek = $5, previous_ciphertext = $6, \
             previous_expires_at = $7, updated_at = $8 \
             WHERE id = $9 AND merchant_id = $10 AND status <> 'deleted' AND secret_ciphertext = $11 AND mode = $12",
            vec![
                rotation.new.kek_version.into(),
                rotation.new.wrapped_dek.as_str().into(),
                rotation.new.ciphertext.as_str().into(),
                rotation.previous.kek_version.into(),
                rotation.previous.wrapped_dek.as_str().into(),
                rotation.previous.ciphertext.as_str().into(),
                rotation.previous_expires_at.into(),
                rotation.now.into(),
                id.as_str().into(),
                tenant.merchant_str().into(),
                rotation.expected_ciphertext.into(),
                tenant.mode_str().into(),
            ],
        )
        .expect_one(Failure::Conflict),
    );
}

/// Up to `limit` endpoints (any merchant) whose current or previous secret
/// is wrapped under a KEK other than `version`, in id order after `after`
/// (KEK rotation).
pub async fn page_not_at_version<'e>(
    db: impl Executor<'e, Database = Any>,
    version: i64,
    after: &str,
    limit: i64,
) -> Result<Vec<EndpointRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE id > $1 AND status <> 'deleted' \
         AND (kek_version <> $2 OR (previous_kek_version IS NOT NULL AND previous_kek_version <> $2)) \
         ORDER BY id LIMIT $3"
    ))
    .bind(after)
    .bind(version)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Stores re-wrapped data keys, conditionally on the row still holding the
/// ciphertext that was read; `changed` is set to whether it did (a row that
/// changed meanwhile is skipped, never an error). `previous` is `None` when
/// the endpoint has no previous secret.
pub fn rewrap(
    work: &mut UnitOfWork,
    id: &str,
    expected_ciphertext: &str,
    current: (i64, &str),
    previous: Option<(i64, &str)>,
    changed: Arc<AtomicBool>,
) {
    work.push(
        WriteOp::new(
            "UPDATE webhook_endpoints SET kek_version = $1, secret_wrapped_dek = $2, \
             previous_kek_version = COALESCE($3, previous_kek_version), \
             previous_wrapped_dek = COALESCE($4, previous_wrapped_dek) \
             WHERE id = $5 AND secret_ciphertext = $6 AND status <> 'deleted'",
            vec![
                current.0.into(),
                current.1.into(),
                previous.map(|p| p.0).into(),
                previous.map(|p| p.1).into(),
                id.into(),
                expected_ciphertext.into(),
            ],
        )
        .report_to(changed),
    );
}

/// How many sealed webhook secrets (current and previous) are wrapped under
/// each KEK version.
pub async fn count_by_kek_version<'e>(db: impl Executor<'e, Database = Any>) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT v, COUNT(*) FROM (\
           SELECT kek_version AS v FROM webhook_endpoints WHERE kek_version IS NOT NULL \
           UNION ALL \
           SELECT previous_kek_version AS v FROM webhook_endpoints WHERE previous_kek_version IS NOT NULL\
         ) secrets GROUP BY v ORDER BY v",
    )
    .fetch_all(db)
    .await?)
}

impl super::ports::WebhookEndpointStore for super::Store {
    async fn get_endpoint(&self, tenant: &Tenant, id: &WebhookEndpointId) -> Result<Option<EndpointRow>, StoreError> {
        get(self.reader(), tenant, id).await
    }

    async fn get_endpoint_any(&self, id: &str) -> Result<Option<EndpointRow>, StoreError> {
        get_any(self.reader(), id).await
    }

    async fn list_endpoints(
        &self,
        tenant: &Tenant,
        after: Option<&WebhookEndpointId>,
        limit: i64,
    ) -> Result<Vec<EndpointRow>, StoreError> {
        list(self.reader(), tenant, after, limit).await
    }

    fn insert_endpoint(&self, work: &mut UnitOfWork, row: &EndpointRow) {
        insert(work, row);
    }

    fn update_endpoint(
        &self,
        work: &mut UnitOfWork,
        tenant: &Tenant,
        id: &WebhookEndpointId,
        change: &EndpointUpdate<'_>,
    ) {
        update(work, tenant, id, change);
    }

    fn disable_endpoint(&self, work: &mut UnitOfWork, id: &str, now: i64) {
        disable(work, id, now);
    }

    fn delete_endpoint(&self, work: &mut UnitOfWork, tenant: &Tenant, id: &WebhookEndpointId, now: i64) {
        delete(work, tenant, id, now);
    }

    fn rotate_endpoint_secret(
        &self,
        work: &mut UnitOfWork,
        tenant: &Tenant,
        id: &WebhookEndpointId,
        rotation: &Rotation<'_>,
    ) {
        rotate_secret(work, tenant, id, rotation);
    }

    async fn endpoints_not_at_kek_version(
        &self,
        version: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<EndpointRow>, StoreError> {
        page_not_at_version(self.reader(), version, after, limit).await
    }

    fn rewrap_endpoint_secrets(
        &self,
        work: &mut UnitOfWork,
        id: &str,
        expected_ciphertext: &str,
        current: (i64, &str),
        previous: Option<(i64, &str)>,
        changed: Arc<AtomicBool>,
    ) {
        rewrap(work, id, expected_ciphertext, current, previous, changed);
    }

    async fn endpoint_secrets_by_kek_version(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        count_by_kek_version(self.reader()).await
    }

    fn fail_pending_deliveries(&self, work: &mut UnitOfWork, endpoint_id: &str, reason: &str, now: i64) {
        super::webhook_deliveries::fail_pending_of_endpoint_in(work, endpoint_id, reason, now);
    }

    async fn list_attempts(
        &self,
        tenant: &Tenant,
        endpoint: &WebhookEndpointId,
        before: Option<&WebhookAttemptId>,
        limit: i64,
    ) -> Result<Vec<super::webhook_attempts::AttemptRow>, StoreError> {
        super::webhook_attempts::list(self.reader(), tenant, endpoint, before, limit).await
    }
}
