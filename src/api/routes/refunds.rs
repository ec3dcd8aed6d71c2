//! `/v1/refunds`: refund a succeeded payment (partly or wholly, several times,
//! never beyond what was captured), read and list refunds.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;

use crate::domain::idempotency_key::IdempotencyKey;
use crate::domain::ids::{PaymentId, RefundId};
use crate::domain::payment_fields::RefundReason;
use crate::domain::permission::Permission;
use crate::services::payments::view::RefundView;
use crate::services::refunds::{self, NewRefund};

use super::super::auth::{AuditedInTx, Authenticated};
use super::super::error::{ApiError, ErrorEnvelope};
use super::super::extract::{AppJson, AppQuery};
use super::super::pagination::{ListParams, ListResponse};
use super::super::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    /// The succeeded payment to refund (`pay_…`).
    pub payment: String,
    /// Minor units; default: everything not yet refunded.
    pub amount: Option<i64>,
    pub reason: Option<RefundReason>,
}

/// The query of `GET /v1/refunds`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RefundListQuery {
    /// 1 to 100 (default 10).
    pub limit: Option<i64>,
    /// A refund id: return older refunds than it (lists are newest first).
    pub starting_after: Option<String>,
    /// Only refunds of this payment.
    pub payment: Option<String>,
}

#[utoipa::path(post, path = "/v1/refunds", operation_id = "create_refund", tag = "refunds", request_body = CreateRefund,
    responses((status = 200, description = "The refund; a processor refusal comes back as `status: failed`.", body = RefundView),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
        (status = 429, body = ErrorEnvelope), (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    idempotency_key: Option<IdempotencyKey>,
    AppJson(body): AppJson<CreateRefund>,
) -> Result<Json<RefundView>, ApiError> {
    auth.require_private_key()?.require(Permission::RefundsWrite)?;
    let payment = PaymentId::parse(&body.payment).map_err(|_| ApiError::not_found("payment", "payment"))?;
    let new = NewRefund {
        payment,
        amount: body.amount,
        reason: body.reason,
        idempotency_key: idempotency_key.map(|k| k.as_str().to_owned()),
    };
    let row = refunds::create(
        &state.store,
        state.payments.connectors(),
        &auth.actor(),
        auth.merchant(),
        new,
    )
    .await?;
    audited.mark();
    Ok(Json(RefundView::from_row(&row)))
}

#[utoipa::path(get, path = "/v1/refunds/{id}", operation_id = "get_refund", tag = "refunds", params(("id" = String, Path)),
    responses((status = 200, body = RefundView), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<RefundView>, ApiError> {
    auth.require_private_key()?.require(Permission::RefundsRead)?;
    let id = RefundId::parse(&id).map_err(|_| ApiError::not_found("refund", "id"))?;
    let row = refunds::get(&state.store, auth.merchant(), &id).await?;
    Ok(Json(RefundView::from_row(&row)))
}

#[utoipa::path(get, path = "/v1/refunds", operation_id = "list_refunds", tag = "refunds", params(RefundListQuery),
    responses((status = 200, body = ListResponse<RefundView>), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    AppQuery(query): AppQuery<RefundListQuery>,
) -> Result<Json<ListResponse<RefundView>>, ApiError> {
    auth.require_private_key()?.require(Permission::RefundsRead)?;
    let paging = ListParams {
        limit: query.limit,
        starting_after: query.starting_after.clone(),
    };
    let limit = paging.limit()?;
    let before = paging.cursor(RefundId::parse)?;
    let payment = query
        .payment
        .as_deref()
        .map(|p| {
            PaymentId::parse(p)
                .map_err(|_| ApiError::invalid("payment", "parameter_invalid", "payment is not a payment id"))
        })
        .transpose()?;
    let rows = refunds::list(
        &state.store,
        auth.merchant(),
        payment.as_ref(),
        before.as_ref(),
        limit + 1,
    )
    .await?;
    let views = rows.iter().map(RefundView::from_row).collect();
    Ok(Json(ListResponse::from_overfetch(views, limit)))
}
