//! `/v1/api_keys`: a merchant lists its keys (prefix and last four only) and
//! revokes one. Issuing and rotating keys is an operator action (CLI): a leaked
//! secret key must not be able to mint itself successors.

use axum::extract::State;
use axum::Json;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::IntoParams;

use crate::domain::ids::ApiKeyId;
use crate::services::api_keys::{self, KeyScope, ListScope};

use super::super::auth::{AuditedInTx, Authenticated};
use super::super::error::{ApiError, ErrorEnvelope};
use super::super::extract::{AppQuery, PathId};
use super::super::pagination::{self, ListParams, ListResponse};
use super::super::views::ApiKeyView;
use super::super::AppState;

/// The query of `GET /v1/api_keys`, for the OpenAPI document.
pub struct ListQuery;

impl IntoParams for ListQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        pagination::list_params(ApiKeyId::PREFIX)
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
    let page = params.page(ApiKeyId::parse)?;
    let keys = api_keys::list(
        &state.store,
        ListScope::Tenant(auth.tenant()),
        page.after(),
        page.fetch(),
    )
    .await?;
    Ok(page.respond(&keys, ApiKeyView::from))
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
