//! `/v1/connectors`: connect a processor account (Stripe, PayPal) for the key's
//! mode, list, show and disable connections. Secret keys only: a processor
//! credential is account-level (the access table, `api::access`).
//!
//! Credentials are parsed here, for the key's mode, into zeroizing domain
//! types; they appear in no response, error or log line (errors name the
//! field, never its value).

use axum::extract::State;
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::IntoParams;

use crate::domain::connection::{
    ConnectionKind, CredentialError, Credentials, PaypalClientId, PaypalClientSecret, PaypalWebhookId, StripeSecretKey,
    StripeWebhookSecret,
};
use crate::domain::ids::ConnectionId;
use crate::services::actor::Actor;
use crate::services::connections::{self, Context, NewConnection};

use super::super::auth::{AuditedInTx, Authenticated};
use super::super::error::{ApiError, ErrorEnvelope};
use super::super::extract::{AppJson, AppQuery, PathId};
use super::super::pagination::{self, ListParams, ListResponse};
use super::super::views::ConnectorView;
use super::super::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnector {
    /// The processor.
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^(stripe|paypal)$")]
    pub kind: String,
    /// `stripe` (required): the Stripe account's secret or restricted key
    /// of the caller's mode (`sk_test_…`/`rk_test_…` with a test key,
    /// `sk_live_…`/`rk_live_…` with a live key). Stored sealed, never
    /// returned.
    #[schema(value_type = Option<String>, min_length = 16, max_length = 263, pattern = r"^[sr]k_(test|live)_[0-9A-Za-z_]{8,255}$")]
    pub secret_key: Option<SecretString>,
    /// `paypal` (required): the PayPal REST app's client id, of the sandbox
    /// app with a test key, of the live app with a live key. Stored sealed.
    #[schema(value_type = Option<String>, min_length = 16, max_length = 255, pattern = r"^[0-9A-Za-z_-]{16,255}$")]
    pub client_id: Option<SecretString>,
    /// `paypal` (required): the REST app's client secret. Stored sealed,
    /// never returned; only its last four are shown.
    #[schema(value_type = Option<String>, min_length = 16, max_length = 255, pattern = r"^[0-9A-Za-z_-]{16,255}$")]
    pub client_secret: Option<SecretString>,
    /// `paypal` (optional): the id PayPal gave the webhook subscription
    /// that sends to this connection. Stored sealed.
    #[schema(value_type = Option<String>, min_length = 8, max_length = 64, pattern = r"^[0-9A-Z]{8,64}$")]
    pub webhook_id: Option<String>,
    /// The Stripe webhook endpoint's signing secret (`whsec_…`), if any.
    /// Stored sealed, never returned.
    #[schema(value_type = Option<String>, min_length = 14, max_length = 261, pattern = r"^whsec_[0-9A-Za-z_]{8,255}$")]
    pub webhook_secret: Option<SecretString>,
    /// Route the mode's new payments to this connection (default `false`).
    pub default: Option<bool>,
}

/// The body of `POST /v1/connectors/{id}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnector {
    /// Another active connection of this merchant and mode (`conn_…`) that
    /// an authorization goes to when this connection's processor cannot be
    /// reached (connection refused, its circuit breaker open: nothing was
    /// sent); `null` to have none. Required.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = r"^conn_[0-9A-Za-z]{24}$")]
    pub fallback: Option<Option<String>>,
}

/// A field that was given, `null` or not (`None` when left out).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The query of `GET /v1/connectors`.
pub struct ListQuery;

impl IntoParams for ListQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        pagination::list_params(ConnectionId::PREFIX)
    }
}

fn connection_id(raw: &str) -> Result<ConnectionId, ApiError> {
    ConnectionId::parse(raw).map_err(|_| ApiError::not_found("connector", "id"))
}

fn credential_error(param: &str, e: CredentialError) -> ApiError {
    let code = match e {
        CredentialError::WrongMode => "secret_key_wrong_mode",
        CredentialError::Publishable => "publishable_key_not_allowed",
        CredentialError::Malformed
        | CredentialError::MalformedWebhookSecret
        | CredentialError::MalformedPaypalClientId
        | CredentialError::MalformedPaypalClientSecret
        | CredentialError::MalformedPaypalWebhookId => "parameter_invalid",
    };
    ApiError::invalid(param, code, format!("{param} {e}"))
}

/// A credential field the kind requires.
fn required<'a>(value: Option<&'a SecretString>, param: &str, kind: &str) -> Result<&'a str, ApiError> {
    value.map(|v| v.expose_secret()).ok_or_else(|| {
        ApiError::invalid(
            param,
            "parameter_missing",
            format!("{param} is required for type {kind}"),
        )
    })
}

/// A field another kind takes, given for this one.
fn refuse_foreign(given: bool, param: &str, kind: &str) -> Result<(), ApiError> {
    if given {
        Err(ApiError::invalid(
            param,
            "parameter_unknown",
            format!("{param} is not a field of type {kind}"),
        ))
    } else {
        Ok(())
    }
}

/// The body as domain types, for the key's mode.
fn parse(body: CreateConnector, auth: &Authenticated) -> Result<NewConnection, ApiError> {
    let kind = ConnectionKind::parse(&body.kind)
        .ok_or_else(|| ApiError::invalid("type", "parameter_invalid", "type must be stripe or paypal"))?;
    let mode = auth.tenant().mode();
    let credentials = match kind {
        ConnectionKind::Paypal => {
            refuse_foreign(body.secret_key.is_some(), "secret_key", "paypal")?;
            refuse_foreign(body.webhook_secret.is_some(), "webhook_secret", "paypal")?;
            Credentials::Paypal {
                client_id: PaypalClientId::parse(required(body.client_id.as_ref(), "client_id", "paypal")?)
                    .map_err(|e| credential_error("client_id", e))?,
                client_secret: PaypalClientSecret::parse(required(
                    body.client_secret.as_ref(),
                    "client_secret",
                    "paypal",
                )?)
                .map_err(|e| credential_error("client_secret", e))?,
                webhook_id: body
                    .webhook_id
                    .as_deref()
                    .map(PaypalWebhookId::parse)
                    .transpose()
                    .map_err(|e| credential_error("webhook_id", e))?,
                mode,
            }
        }
        ConnectionKind::Stripe => Credentials::Stripe {
            secret_key: {
                refuse_foreign(body.client_id.is_some(), "client_id", "stripe")?;
                refuse_foreign(body.client_secret.is_some(), "client_secret", "stripe")?;
                refuse_foreign(body.webhook_id.is_some(), "webhook_id", "stripe")?;
                StripeSecretKey::parse(required(body.secret_key.as_ref(), "secret_key", "stripe")?, mode)
                    .map_err(|e| credential_error("secret_key", e))?
            },
            webhook_secret: body
                .webhook_secret
                .as_ref()
                .map(|s| StripeWebhookSecret::parse(s.expose_secret()))
                .transpose()
                .map_err(|e| credential_error("webhook_secret", e))?,
        },
    };
    Ok(NewConnection {
        credentials,
        make_default: body.default.unwrap_or(false),
    })
}

/// The services' context for a change made by the caller.
fn context<'a>(state: &'a AppState, auth: &'a Authenticated, actor: &'a Actor) -> Context<'a> {
    Context {
        store: &state.store,
        keyring: state.vault.keyring(),
        actor,
        tenant: auth.tenant(),
    }
}

#[utoipa::path(post, path = "/v1/connectors", operation_id = "create_connector", tag = "connectors",
    request_body = CreateConnector,
    responses(
        (status = 200, description = "The connection (its credentials are never returned).", body = ConnectorView,
            links(("get_connector" = (operation_id = "get_connector", parameters(("id" = "$response.body#/id")))), ("disable_connector" = (operation_id = "disable_connector", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "A field is invalid, missing (`parameter_missing`) or not of the type (`parameter_unknown`), named in `param`: `type`, `secret_key` (`secret_key_wrong_mode` for a key of the other mode, `publishable_key_not_allowed` for a publishable key), `webhook_secret`, `client_id`, `client_secret`, `webhook_id`.", body = ErrorEnvelope),
        (status = 403, description = "Not a secret key.", body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    AppJson(body): AppJson<CreateConnector>,
) -> Result<Json<ConnectorView>, ApiError> {
    let new = parse(body, &auth)?;
    let actor = auth.actor();
    let cx = context(&state, &auth, &actor);
    let connection = connections::create(&cx, new).await?;
    audited.mark();
    Ok(Json(connection.into()))
}

#[utoipa::path(get, path = "/v1/connectors", operation_id = "list_connectors", tag = "connectors", params(ListQuery),
    responses(
        (status = 200, description = "The connections of the key's mode, a page at a time.", body = ListResponse<ConnectorView>),
        (status = 400, description = "A query parameter is invalid or unknown.", body = ErrorEnvelope),
        (status = 403, description = "Not a secret key.", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    AppQuery(query): AppQuery<ListParams>,
) -> Result<Json<ListResponse<ConnectorView>>, ApiError> {
    let page = query.page(ConnectionId::parse)?;
    let rows = connections::list(&state.store, auth.tenant(), page.after(), page.fetch()).await?;
    Ok(page.respond(rows, ConnectorView::from))
}

#[utoipa::path(get, path = "/v1/connectors/{id}", operation_id = "get_connector", tag = "connectors",
    params(("id" = String, Path, pattern = r"^conn_[0-9A-Za-z]{24}$")),
    responses((status = 200, body = ConnectorView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    auth: Authenticated,
    PathId(id): PathId,
) -> Result<Json<ConnectorView>, ApiError> {
    Ok(Json(
        connections::get(&state.store, auth.tenant(), &connection_id(&id)?)
            .await?
            .into(),
    ))
}

#[utoipa::path(post, path = "/v1/connectors/{id}", operation_id = "update_connector", tag = "connectors",
    params(("id" = String, Path, pattern = r"^conn_[0-9A-Za-z]{24}$")),
    request_body = UpdateConnector,
    responses(
        (status = 200, description = "The connection with its new fallback.", body = ConnectorView),
        (status = 400, description = "`fallback` is missing, malformed, this connection itself, or disabled (`connector_disabled`).", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "`fallback` names no connection of this merchant and mode (`resource_missing`), or the connection changed meanwhile.", body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    PathId(id): PathId,
    AppJson(body): AppJson<UpdateConnector>,
) -> Result<Json<ConnectorView>, ApiError> {
    let id = connection_id(&id)?;
    let fallback = match body.fallback {
        None => {
            return Err(ApiError::invalid(
                "fallback",
                "parameter_missing",
                "fallback is required (a connection id, or null for none)",
            ))
        }
        Some(None) => None,
        Some(Some(raw)) => Some(ConnectionId::parse(&raw).map_err(|_| {
            ApiError::invalid(
                "fallback",
                "parameter_invalid",
                "fallback must be a connection id (conn_…)",
            )
        })?),
    };
    let actor = auth.actor();
    let cx = context(&state, &auth, &actor);
    let connection = connections::failover::set_fallback(&cx, &id, fallback.as_ref()).await?;
    audited.mark();
    Ok(Json(connection.into()))
}

#[utoipa::path(post, path = "/v1/connectors/{id}/disable", operation_id = "disable_connector", tag = "connectors",
    params(("id" = String, Path, pattern = r"^conn_[0-9A-Za-z]{24}$")),
    responses(
        (status = 200, description = "The connection, disabled: no new payment goes to it (a default falls back to the sandbox in test mode, to none in live mode); payments made with it are still captured, canceled and refunded through it.", body = ConnectorView),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn disable(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    PathId(id): PathId,
) -> Result<Json<ConnectorView>, ApiError> {
    let id = connection_id(&id)?;
    let actor = auth.actor();
    let cx = context(&state, &auth, &actor);
    let connection = connections::disable(&cx, state.payments.routing(), &id).await?;
    audited.mark();
    Ok(Json(connection.into()))
}
