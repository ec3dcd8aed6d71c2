//! `/v1/api_keys`: a merchant lists its keys (prefix and last four only) and
//! revokes one. Issuing and rotating keys is an operator action (CLI): a leaked
//! secret key must not be able to mint itself successors.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use crate::domain::api_key::{KeyKind, Mode};
use crate::domain::ids::ApiKeyId;
use crate::domain::key_record::ApiKey;
use crate::domain::permission::Permission;
use crate::domain::time::Timestamp;
use crate::services::keys;

use super::super::auth::{AuditedInTx, Authenticated};
use super::super::error::{ApiError, ErrorEnvelope};
use super::super::extract::AppQuery;
use super::super::pagination::{ListParams, ListResponse};
use super::super::AppState;

/// A key as the API shows it: never the secret, only its prefix and last four.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub object: &'static str,
    pub id: String,
    pub kind: KeyKind,
    pub livemode: bool,
    /// e.g. `sk_test_…a1B2`.
    pub redacted: String,
    pub prefix: String,
    pub last4: String,
    pub permissions: Vec<Permission>,
    pub restrictions: RestrictionsView,
    pub description: Option<String>,
    pub created: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used: Option<i64>,
    pub rotated_to: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RestrictionsView {
    pub max_amount: Option<i64>,
    pub currencies: Vec<String>,
    pub allowed_ips: Vec<String>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        ApiKeyView {
            object: "api_key",
            id: k.id.to_string(),
            kind: k.kind,
            livemode: k.mode == Mode::Live,
            redacted: format!("{}…{}", k.prefix, k.last4),
            prefix: k.prefix.clone(),
            last4: k.last4.clone(),
            permissions: k.permissions.clone(),
            restrictions: RestrictionsView {
                max_amount: k.restrictions.max_amount,
                currencies: k.restrictions.currencies.iter().map(|c| c.api_code()).collect(),
                allowed_ips: k.restrictions.allowed_ips.iter().map(ToString::to_string).collect(),
            },
            description: k.description.clone(),
            created: k.created_at.as_secs(),
            expires_at: k.expires_at.map(Timestamp::as_secs),
            revoked_at: k.revoked_at.map(Timestamp::as_secs),
            last_used: k.last_used_at.map(Timestamp::as_secs),
            rotated_to: k.rotated_to.as_ref().map(ToString::to_string),
        }
    }
}

fn key_id(raw: &str) -> Result<ApiKeyId, ApiError> {
    ApiKeyId::parse(raw).map_err(|_| ApiError::not_found("api_key", "id"))
}

#[utoipa::path(get, path = "/v1/api_keys", tag = "api_keys", params(ListParams),
    responses((status = 200, body = ListResponse<ApiKeyView>), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<Json<ListResponse<ApiKeyView>>, ApiError> {
    auth.require(Permission::ApiKeysRead)?;
    let limit = params.limit()?;
    let after = params.cursor(ApiKeyId::parse)?;
    let keys = keys::list(&state.store, auth.merchant(), after.as_ref(), limit + 1).await?;
    Ok(Json(ListResponse::from_overfetch(
        keys.iter().map(ApiKeyView::from).collect(),
        limit,
    )))
}

#[utoipa::path(get, path = "/v1/api_keys/{id}", tag = "api_keys", params(("id" = String, Path)),
    responses((status = 200, body = ApiKeyView), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    auth.require(Permission::ApiKeysRead)?;
    let key = keys::get(&state.store, Some(auth.merchant()), &key_id(&id)?).await?;
    Ok(Json(ApiKeyView::from(&key)))
}

#[utoipa::path(post, path = "/v1/api_keys/{id}/revoke", tag = "api_keys", params(("id" = String, Path)),
    responses((status = 200, body = ApiKeyView), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    auth.require(Permission::ApiKeysWrite)?;
    let key = keys::revoke(&state.store, &auth.actor(), Some(auth.merchant()), &key_id(&id)?).await?;
    audited.mark();
    Ok(Json(ApiKeyView::from(&key)))
}
