//! The `webhook_endpoints` table: a merchant's endpoints, their subscriptions
//! and their signing secrets, sealed (never in clear).
//!
//! Single-statement primitives. Reads and writes are scoped by tenant (merchant
//! and mode): an id of another merchant or of the other mode reads as absent
//! (`None` / `false`), exactly like a missing one. A deleted endpoint (`status = 'deleted'`) has no secrets left
//! and is invisible to `get` and `list`.

use sqlx::{Any, Executor};

use super::StoreError;
use crate::domain::ids::WebhookEndpointId;
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

const COLUMNS: &str = "id, merchant_id, mode, url, events, status, kek_version, secret_wrapped_dek, \
     secret_ciphertext, previous_kek_version, previous_wrapped_dek, previous_ciphertext, previous_expires_at, \
     created_at, updated_at, disabled_at";

/// Inserts a new endpoint. A duplicate id is `StoreError::Duplicate`.
pub async fn insert<'e>(db: impl Executor<'e, Database = Any>, row: &EndpointRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, merchant_id, mode, url, events, status, kek_version, \
         secret_wrapped_dek, secret_ciphertext, previous_kek_version, previous_wrapped_dek, previous_ciphertext, \
         previous_expires_at, created_at, updated_at, disabled_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&row.id)
    .bind(&row.merchant_id)
    .bind(&row.mode)
    .bind(&row.url)
    .bind(&row.events)
    .bind(&row.status)
    .bind(row.kek_version)
    .bind(&row.secret_wrapped_dek)
    .bind(&row.secret_ciphertext)
    .bind(row.previous_kek_version)
    .bind(&row.previous_wrapped_dek)
    .bind(&row.previous_ciphertext)
    .bind(row.previous_expires_at)
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(row.disabled_at)
    .execute(db)
    .await
    .map_err(StoreError::from_insert)?;
    Ok(())
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

/// Sets url, subscriptions and status of a live (not deleted) endpoint.
/// `false` if there is none for this merchant.
pub async fn update<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    id: &WebhookEndpointId,
    change: &EndpointUpdate<'_>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET url = $1, events = $2, status = $3, disabled_at = $4, updated_at = $5 \
         WHERE id = $6 AND merchant_id = $7 AND mode = $8 AND status <> 'deleted'",
    )
    .bind(change.url)
    .bind(change.events)
    .bind(change.status)
    .bind(change.disabled_at)
    .bind(change.now)
    .bind(id.as_str())
    .bind(tenant.merchant_str())
    .bind(tenant.mode_str())
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Disables an enabled endpoint (the delivery worker, after a delivery ran
/// out of retries). `false` if it was not enabled.
pub async fn disable<'e>(db: impl Executor<'e, Database = Any>, id: &str, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET status = 'disabled', disabled_at = $1, updated_at = $1 \
         WHERE id = $2 AND status = 'enabled'",
    )
    .bind(now)
    .bind(id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks the endpoint deleted and destroys both sealed secrets.
/// `false` if there is no such endpoint for this merchant.
pub async fn delete<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    id: &WebhookEndpointId,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET status = 'deleted', kek_version = NULL, secret_wrapped_dek = NULL, \
         secret_ciphertext = NULL, previous_kek_version = NULL, previous_wrapped_dek = NULL, \
         previous_ciphertext = NULL, previous_expires_at = NULL, updated_at = $1 \
         WHERE id = $2 AND merchant_id = $3 AND mode = $4 AND status <> 'deleted'",
    )
    .bind(now)
    .bind(id.as_str())
    .bind(tenant.merchant_str())
    .bind(tenant.mode_str())
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
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
/// both win: `false` if the endpoint is gone or was rotated meanwhile.
pub async fn rotate_secret<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    id: &WebhookEndpointId,
    rotation: &Rotation<'_>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET kek_version = $1, secret_wrapped_dek = $2, secret_ciphertext = $3, \
         previous_kek_version = $4, previous_wrapped_dek = $5, previous_ciphertext = $6, previous_expires_at = $7, \
         updated_at = $8 \
         WHERE id = $9 AND merchant_id = $10 AND status <> 'deleted' AND secret_ciphertext = $11 AND mode = $12",
    )
    .bind(rotation.new.kek_version)
    .bind(&rotation.new.wrapped_dek)
    .bind(&rotation.new.ciphertext)
    .bind(rotation.previous.kek_version)
    .bind(&rotation.previous.wrapped_dek)
    .bind(&rotation.previous.ciphertext)
    .bind(rotation.previous_expires_at)
    .bind(rotation.now)
    .bind(id.as_str())
    .bind(tenant.merchant_str())
    .bind(rotation.expected_ciphertext)
    .bind(tenant.mode_str())
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
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
/// versions and ciphertexts that were read (`false` if it changed meanwhile).
/// `previous` is `None` when the endpoint has no previous secret.
pub async fn rewrap<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
    expected_ciphertext: &str,
    current: (i64, &str),
    previous: Option<(i64, &str)>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET kek_version = $1, secret_wrapped_dek = $2, \
         previous_kek_version = COALESCE($3, previous_kek_version), \
         previous_wrapped_dek = COALESCE($4, previous_wrapped_dek) \
         WHERE id = $5 AND secret_ciphertext = $6 AND status <> 'deleted'",
    )
    .bind(current.0)
    .bind(current.1)
    .bind(previous.map(|p| p.0))
    .bind(previous.map(|p| p.1))
    .bind(id)
    .bind(expected_ciphertext)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
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
