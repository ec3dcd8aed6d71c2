//! `/v1/api_keys`: a merchant lists its keys (prefix and last four only) and
//! revokes one. Issuing and rotating keys is an operator action (CLI): a leaked
//! secret key must not be able to mint itself successors.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::Object;
use utoipa::IntoParams;

use crate::domain::api_key::ApiKey;
use crate::domain::api_key::{KeyKind, Mode};
use crate::domain::ids::ApiKeyId;
use crate::domain::permission::Permission;
use crate::domain::time::Timestamp;
use crate::services::api_keys::{self, KeyScope, ListScope};

use super::super::auth::{AuditedInTx, Authenticated};
use super::super::error::{ApiError, ErrorEnvelope};
use super::super::extract::{AppQuery, PathId};
use super::super::pagination::{self, ListParams, ListResponse};
use super::super::schema;
use super::super::AppState;

/// A key as the API shows it: never the secret, only its prefix and last four.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    #[schema(schema_with = api_key_object)]
    pub object: &'static str,
    #[schema(schema_with = api_key_id)]
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
    /// Unix time, seconds.
    pub created: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used: Option<i64>,
    #[schema(schema_with = rotated_to)]
    pub rotated_to: Option<String>,
}

fn api_key_object() -> Object {
    schema::literal("api_key")
}

fn api_key_id() -> Object {
    schema::id_schema(ApiKeyId::PREFIX).build()
}

fn rotated_to() -> Object {
    schema::id_schema(ApiKeyId::PREFIX)
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::Type::String,
            utoipa::openapi::Type::Null,
        ]))
        .description(Some("The key that replaced this one, when it was rotated."))
        .build()
}

/// The query of `GET /v1/api_keys`, for the OpenAPI document.
pub struct ListQuery;

impl IntoParams for ListQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        pagination::list_params(ApiKeyId::PREFIX)
    }
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

#[utoipa::path(get, path = "/v1/api_keys", operation_id = "list_api_keys", tag = "api_keys", params(ListQuery),
    responses(
        (status = 200, description = "The merchant's keys, a page at a time.", body = ListResponse<ApiKeyView>),
        (status = 400, description = "A query parameter is invalid or unknown (`parameter_invalid`).", body = ErrorEnvelope),
        (status = 403, description = "The key lacks `api_keys:read` (`permission_denied`).", body = ErrorEnvelope),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<Json<ListResponse<ApiKeyView>>, ApiError> {
    let limit = params.limit()?;
    let after = params.cursor(ApiKeyId::parse)?;
    let keys = api_keys::list(
        &state.store,
        ListScope::Tenant(auth.tenant()),
        after.as_ref(),
        limit + 1,
    )
    .await?;
    Ok(Json(ListResponse::from_overfetch(
        keys.iter().map(ApiKeyView::from).collect(),
        limit,
    )))
}

#[utoipa::path(get, path = "/v1/api_keys/{id}", operation_id = "get_api_key", tag = "api_keys", params(("id" = String, Path, pattern = r"^key_[0-9A-Za-z]{24}$",
        description = "The key's id. A malformed id, or another merchant's key, is a 404 like an unknown one.")),
    responses(
        (status = 200, description = "The key (never its secret).", body = ApiKeyView),
        (status = 403, description = "The key lacks `api_keys:read` (`permission_denied`).", body = ErrorEnvelope),
        (status = 404, description = "No such key of this merchant (`resource_missing`).", body = ErrorEnvelope),
    ),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    auth: Authenticated,
    PathId(id): PathId,
) -> Result<Json<ApiKeyView>, ApiError> {
    let key = api_keys::get(&state.store, KeyScope::Tenant(auth.tenant()), &key_id(&id)?).await?;
    Ok(Json(ApiKeyView::from(&key)))
}

#[utoipa::path(post, path = "/v1/api_keys/{id}/revoke", operation_id = "revoke_api_key", tag = "api_keys", params(("id" = String, Path, pattern = r"^key_[0-9A-Za-z]{24}$",
        description = "The key's id. A malformed id, or another merchant's key, is a 404 like an unknown one.")),
    responses(
        (status = 200, description = "The key, now revoked: refused from the next request on.", body = ApiKeyView),
        (status = 403, description = "The key lacks `api_keys:write` (`permission_denied`).", body = ErrorEnvelope),
        (status = 404, description = "No such key of this merchant (`resource_missing`).", body = ErrorEnvelope),
        (status = 409, description = "The key is already revoked (`api_key_already_revoked`).", body = ErrorEnvelope),
    ),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    PathId(id): PathId,
) -> Result<Json<ApiKeyView>, ApiError> {
    let key = api_keys::revoke(
        &state.store,
        &auth.actor(),
        KeyScope::Tenant(auth.tenant()),
        &key_id(&id)?,
    )
    .await?;
    audited.mark();
    Ok(Json(ApiKeyView::from(&key)))
}
