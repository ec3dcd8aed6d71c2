//! `/v1/refunds`: refund a succeeded payment (partly or wholly, several times,
//! never beyond what was captured), read and list refunds.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::IntoParams;

use crate::domain::idempotency_key::IdempotencyKey;
use crate::domain::ids::{PaymentId, RefundId};
use crate::domain::payment_fields::RefundReason;
use crate::services::refunds::{self, NewRefund};

use super::super::auth::{AuditedInTx, Authenticated};
use super::super::error::{ApiError, ErrorEnvelope};
use super::super::extract::{AppJson, AppQuery, PathId};
use super::super::field_schemas;
use super::super::json_integer::JsonInteger;
use super::super::pagination::{ListParams, ListResponse};
use super::super::views::RefundView;
use super::super::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    #[schema(schema_with = field_schemas::refunded_payment)]
    pub payment: String,
    #[schema(schema_with = field_schemas::refund_amount)]
    pub amount: Option<JsonInteger>,
    pub reason: Option<RefundReason>,
}

/// The query of `GET /v1/refunds`; its OpenAPI description is
/// [`field_schemas::refund_list_params`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundListQuery {
    pub limit: Option<i64>,
    pub starting_after: Option<String>,
    pub payment: Option<String>,
}

impl IntoParams for RefundListQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        field_schemas::refund_list_params()
    }
}

#[utoipa::path(post, path = "/v1/refunds", operation_id = "create_refund", tag = "refunds", request_body = CreateRefund,
    responses((status = 200, description = "The refund; a processor refusal comes back as `status: failed`.", body = RefundView,
            links(("get_refund" = (operation_id = "get_refund", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "The body is not valid JSON, has an unknown field, or a value is invalid (`invalid_json`, `parameter_unknown`, `parameter_missing`, `parameter_invalid`, `invalid_amount`).", body = ErrorEnvelope),
        (status = 403, description = "Not a private key, no `refunds:write`, or a key restriction on the amount this moves or the payment's currency (`amount_above_key_limit`, `currency_not_allowed`); nothing was changed.", body = ErrorEnvelope),
        (status = 404, description = "No such payment of this merchant (`resource_missing`).", body = ErrorEnvelope),
        (status = 409, description = "The payment has not succeeded (`payment_unexpected_state`), or `amount` (or, without one, the whole payment) is more than is left to refund (`amount_exceeds_refundable`, `param: amount`).", body = ErrorEnvelope),
        (status = 413, description = "The body exceeds the configured limit (`body_too_large`).", body = ErrorEnvelope),
        (status = 415, description = "The body is not `application/json` (`unsupported_content_type`).", body = ErrorEnvelope),
        (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    idempotency_key: Option<IdempotencyKey>,
    AppJson(body): AppJson<CreateRefund>,
) -> Result<Json<RefundView>, ApiError> {
    let payment = PaymentId::parse(&body.payment)
        .map_err(|_| ApiError::invalid("payment", "parameter_invalid", "payment is not a payment id"))?;
    let new = NewRefund {
        payment,
        amount: body
            .amount
            .map(|a| super::payments::positive_amount("amount", a))
            .transpose()?,
        reason: body.reason,
        idempotency_key: idempotency_key.map(|k| k.scoped_to(&auth.key().lineage)),
    };
    let refund = refunds::create(
        &state.store,
        state.payments.routing(),
        state.payments.snapshots(),
        &auth.actor(),
        super::payments::caller(&auth),
        new,
    )
    .await?;
    audited.mark();
    Ok(Json(RefundView::from_refund(&refund)))
}

#[utoipa::path(get, path = "/v1/refunds/{id}", operation_id = "get_refund", tag = "refunds",
    params(("id" = String, Path, pattern = r"^re_[0-9A-Za-z]{24}$",
        description = "The refund's id. A malformed id, or another merchant's refund, is a 404 like an unknown one.")),
    responses((status = 200, body = RefundView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    auth: Authenticated,
    PathId(id): PathId,
) -> Result<Json<RefundView>, ApiError> {
    let id = RefundId::parse(&id).map_err(|_| ApiError::not_found("refund", "id"))?;
    let refund = refunds::get(&state.store, auth.tenant(), &id).await?;
    Ok(Json(RefundView::from_refund(&refund)))
}

#[utoipa::path(get, path = "/v1/refunds", operation_id = "list_refunds", tag = "refunds", params(RefundListQuery),
    responses((status = 200, description = "The merchant's refunds, newest first.", body = ListResponse<RefundView>),
        (status = 400, description = "A query parameter is invalid or unknown (`parameter_invalid`).", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    AppQuery(query): AppQuery<RefundListQuery>,
) -> Result<Json<ListResponse<RefundView>>, ApiError> {
    let page = ListParams {
        limit: query.limit,
        starting_after: query.starting_after.clone(),
    }
    .page(RefundId::parse)?;
    let payment = query
        .payment
        .as_deref()
        .map(|p| {
            PaymentId::parse(p)
                .map_err(|_| ApiError::invalid("payment", "parameter_invalid", "payment is not a payment id"))
        })
        .transpose()?;
    let found = refunds::list(
        &state.store,
        auth.tenant(),
        payment.as_ref(),
        page.after(),
        page.fetch(),
    )
    .await?;
    Ok(page.respond(&found, RefundView::from_refund))
}
