//! `/v1/webhook_endpoints`: register, list, show, update, delete endpoints,
//! rotate their signing secret, and list delivery attempts.
//!
//! The signing secret appears in exactly two responses (creation and
//! rotation) and nowhere else: not in other views, errors, logs or audit.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{Array, ArrayBuilder, ObjectBuilder, Type};
use utoipa::IntoParams;

use crate::domain::event::EventType;
use crate::domain::ids::{WebhookAttemptId, WebhookEndpointId};
use crate::services::webhook_endpoints::{self, Changes, Context};
use crate::webhooks::endpoint::{ALL_EVENTS, MAX_EVENTS};

use super::super::auth::{AuditedInTx, Authenticated};
use super::super::error::{ApiError, ErrorEnvelope};
use super::super::extract::{AppJson, AppQuery, PathId};
use super::super::json_integer::JsonInteger;
use super::super::pagination::{self, ListParams, ListResponse};
use super::super::views::{DeletedWebhookEndpoint, WebhookAttemptView, WebhookEndpointView, WebhookEndpointWithSecret};
use super::super::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookEndpoint {
    /// `https://…` (plain `http://localhost` only in development mode). In
    /// live mode the host must resolve to public addresses only.
    #[schema(max_length = 2048)]
    pub url: String,
    /// Event types to receive, or `["*"]` for all.
    #[schema(schema_with = events_schema)]
    pub events: Vec<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookEndpoint {
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    #[schema(schema_with = nullable_events_schema)]
    pub events: Option<Vec<String>>,
    /// `false` re-enables an endpoint (e.g. after it was disabled for failing).
    pub disabled: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// Seconds the old secret keeps signing, 0 to 604800 (default 86400).
    /// An integer as JSON Schema counts them (`3600` and `3600.0` alike).
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 604800)]
    pub expires_in: Option<JsonInteger>,
}

/// 1 to 32 event types, or `*`.
fn events_array() -> utoipa::openapi::schema::ArrayBuilder {
    let mut names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    names.push(ALL_EVENTS);
    let item = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names));
    ArrayBuilder::new()
        .items(item)
        .min_items(Some(1))
        .max_items(Some(MAX_EVENTS))
}

fn events_schema() -> Array {
    events_array().build()
}

fn nullable_events_schema() -> Array {
    events_array()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Array,
            Type::Null,
        ]))
        .build()
}

/// The query of `GET /v1/webhook_endpoints`.
pub struct ListQuery;

impl IntoParams for ListQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        pagination::list_params(WebhookEndpointId::PREFIX)
    }
}

/// The query of `GET /v1/webhook_endpoints/{id}/attempts`.
pub struct AttemptsQuery;

impl IntoParams for AttemptsQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        pagination::list_params(WebhookAttemptId::PREFIX)
    }
}

fn endpoint_id(raw: &str) -> Result<WebhookEndpointId, ApiError> {
    WebhookEndpointId::parse(raw).map_err(|_| ApiError::not_found("webhook_endpoint", "id"))
}

fn context<'a>(state: &'a AppState, auth: &'a Authenticated, actor: &'a crate::services::actor::Actor) -> Context<'a> {
    Context {
        store: &state.store,
        keyring: state.vault.keyring(),
        dev: state.dev_mode,
        actor,
        tenant: auth.tenant(),
    }
}

#[utoipa::path(post, path = "/v1/webhook_endpoints", operation_id = "create_webhook_endpoint", tag = "webhook_endpoints",
    request_body = CreateWebhookEndpoint,
    responses(
        (status = 200, description = "The endpoint and its signing secret (shown only now).", body = WebhookEndpointWithSecret,
            links(("get_webhook_endpoint" = (operation_id = "get_webhook_endpoint", parameters(("id" = "$response.body#/id")))), ("update_webhook_endpoint" = (operation_id = "update_webhook_endpoint", parameters(("id" = "$response.body#/id")))), ("delete_webhook_endpoint" = (operation_id = "delete_webhook_endpoint", parameters(("id" = "$response.body#/id")))), ("rotate_webhook_endpoint_secret" = (operation_id = "rotate_webhook_endpoint_secret", parameters(("id" = "$response.body#/id")))), ("list_webhook_attempts" = (operation_id = "list_webhook_attempts", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "A field is invalid (`url_invalid`, `url_not_allowed`, `events_invalid`, …), named in `param`.", body = ErrorEnvelope),
        (status = 403, description = "A publishable key, or a key without `webhooks:write`.", body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    AppJson(body): AppJson<CreateWebhookEndpoint>,
) -> Result<Json<WebhookEndpointWithSecret>, ApiError> {
    let actor = auth.actor();
    let (endpoint, secret) =
        webhook_endpoints::create(&context(&state, &auth, &actor), &body.url, &body.events).await?;
    audited.mark();
    Ok(Json(WebhookEndpointWithSecret {
        endpoint: endpoint.into(),
        secret: secret.expose_secret().to_owned(),
    }))
}

#[utoipa::path(get, path = "/v1/webhook_endpoints", operation_id = "list_webhook_endpoints", tag = "webhook_endpoints", params(ListQuery),
    responses(
        (status = 200, description = "The merchant's endpoints, a page at a time.", body = ListResponse<WebhookEndpointView>),
        (status = 400, description = "A query parameter is invalid or unknown.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks `webhooks:read`.", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    AppQuery(query): AppQuery<ListParams>,
) -> Result<Json<ListResponse<WebhookEndpointView>>, ApiError> {
    let page = query.page(WebhookEndpointId::parse)?;
    let rows = webhook_endpoints::list(&state.store, auth.tenant(), page.after(), page.fetch()).await?;
    Ok(page.respond(rows, WebhookEndpointView::from))
}

#[utoipa::path(get, path = "/v1/webhook_endpoints/{id}", operation_id = "get_webhook_endpoint", tag = "webhook_endpoints",
    params(("id" = String, Path, pattern = r"^we_[0-9A-Za-z]{24}$")),
    responses((status = 200, body = WebhookEndpointView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    auth: Authenticated,
    PathId(id): PathId,
) -> Result<Json<WebhookEndpointView>, ApiError> {
    Ok(Json(
        webhook_endpoints::get(&state.store, auth.tenant(), &endpoint_id(&id)?)
            .await?
            .into(),
    ))
}

#[utoipa::path(post, path = "/v1/webhook_endpoints/{id}", operation_id = "update_webhook_endpoint", tag = "webhook_endpoints",
    params(("id" = String, Path, pattern = r"^we_[0-9A-Za-z]{24}$")), request_body = UpdateWebhookEndpoint,
    responses((status = 200, body = WebhookEndpointView), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    PathId(id): PathId,
    AppJson(body): AppJson<UpdateWebhookEndpoint>,
) -> Result<Json<WebhookEndpointView>, ApiError> {
    let id = endpoint_id(&id)?;
    let actor = auth.actor();
    let changes = Changes {
        url: body.url,
        events: body.events,
        disabled: body.disabled,
    };
    let endpoint = webhook_endpoints::update(&context(&state, &auth, &actor), &id, changes).await?;
    audited.mark();
    Ok(Json(endpoint.into()))
}

#[utoipa::path(delete, path = "/v1/webhook_endpoints/{id}", operation_id = "delete_webhook_endpoint", tag = "webhook_endpoints",
    params(("id" = String, Path, pattern = r"^we_[0-9A-Za-z]{24}$")),
    responses((status = 200, body = DeletedWebhookEndpoint), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    PathId(id): PathId,
) -> Result<Json<DeletedWebhookEndpoint>, ApiError> {
    let id = endpoint_id(&id)?;
    let actor = auth.actor();
    webhook_endpoints::delete(&context(&state, &auth, &actor), &id).await?;
    audited.mark();
    Ok(Json(DeletedWebhookEndpoint::new(id.to_string())))
}

#[utoipa::path(post, path = "/v1/webhook_endpoints/{id}/rotate_secret", operation_id = "rotate_webhook_endpoint_secret",
    tag = "webhook_endpoints", params(("id" = String, Path, pattern = r"^we_[0-9A-Za-z]{24}$")), request_body = RotateSecret,
    responses(
        (status = 200, description = "The new secret (shown only now); the old one signs too until `previous_secret_expires_at`.", body = WebhookEndpointWithSecret),
        (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "Rotated concurrently; try again.", body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    PathId(id): PathId,
    AppJson(body): AppJson<RotateSecret>,
) -> Result<Json<WebhookEndpointWithSecret>, ApiError> {
    let id = endpoint_id(&id)?;
    let actor = auth.actor();
    let (endpoint, secret) = webhook_endpoints::rotate_secret(
        &context(&state, &auth, &actor),
        &id,
        body.expires_in.map(JsonInteger::get),
    )
    .await?;
    audited.mark();
    Ok(Json(WebhookEndpointWithSecret {
        endpoint: endpoint.into(),
        secret: secret.expose_secret().to_owned(),
    }))
}

#[utoipa::path(get, path = "/v1/webhook_endpoints/{id}/attempts", operation_id = "list_webhook_attempts", tag = "webhook_endpoints",
    params(("id" = String, Path, pattern = r"^we_[0-9A-Za-z]{24}$"), AttemptsQuery),
    responses(
        (status = 200, description = "Delivery attempts to this endpoint, newest first.", body = ListResponse<WebhookAttemptView>),
        (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn attempts(
    State(state): State<AppState>,
    auth: Authenticated,
    PathId(id): PathId,
    AppQuery(query): AppQuery<ListParams>,
) -> Result<Json<ListResponse<WebhookAttemptView>>, ApiError> {
    let id = endpoint_id(&id)?;
    let page = query.page(WebhookAttemptId::parse)?;
    let rows = webhook_endpoints::attempts(&state.store, auth.tenant(), &id, page.after(), page.fetch()).await?;
    Ok(page.respond(rows, WebhookAttemptView::from))
}
