//! `/v1/reviews`: the payments the fraud rules hold for a review (authorized,
//! not captured), and the decision on each: approve (capture) or reject
//! (cancel as `fraudulent`). A review is identified by its payment's id.

use axum::extract::State;
use axum::Json;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::IntoParams;

use crate::domain::ids::PaymentId;

use super::super::auth::{AuditedInTx, Authenticated};
use super::super::error::{ApiError, ErrorEnvelope};
use super::super::extract::{AppQuery, PathId};
use super::super::pagination::{self, ListParams, ListResponse};
use super::super::views::PaymentView;
use super::super::AppState;
use super::payments::{caller, full_view, payment_id, PaymentBody};

/// The query of `GET /v1/reviews`.
pub struct ReviewListQuery;

impl IntoParams for ReviewListQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        pagination::list_params(PaymentId::PREFIX)
    }
}

#[utoipa::path(get, path = "/v1/reviews", operation_id = "list_reviews", tag = "fraud", params(ReviewListQuery),
    responses((status = 200, description = "The payments held for a review (`review: \"open\"`), newest first.", body = ListResponse<PaymentView>),
        (status = 400, description = "A query parameter is invalid or unknown.", body = ErrorEnvelope),
        (status = 403, description = "A publishable key, or a key without `payments:read`.", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    AppQuery(query): AppQuery<ListParams>,
) -> Result<Json<ListResponse<PaymentView>>, ApiError> {
    let page = query.page(PaymentId::parse)?;
    let payments = state
        .payments
        .reviews(auth.tenant(), page.after(), page.fetch())
        .await?;
    Ok(page.respond(&payments, |p| PaymentView::from_payment(p, false)))
}

#[utoipa::path(post, path = "/v1/reviews/{id}/approve", operation_id = "approve_review", tag = "fraud",
    params(("id" = String, Path, pattern = r"^pay_[0-9A-Za-z]{24}$", description = "The held payment's id.")),
    responses((status = 200, description = "The payment, captured in full; its review closed.", body = PaymentView),
        (status = 402, description = "The processor refused the capture (`capture_failed`).", body = ErrorEnvelope),
        (status = 403, description = "A publishable key, a key without `payments:write`, or beyond the key's limits.", body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "The payment is not held for a review (`review_not_open`), or another request is changing it.", body = ErrorEnvelope),
        (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    PathId(id): PathId,
) -> Result<PaymentBody, ApiError> {
    let id = payment_id(&id)?;
    let record = state.payments.approve_review(&auth.actor(), caller(&auth), &id).await?;
    audited.mark();
    Ok(full_view(&record))
}

#[utoipa::path(post, path = "/v1/reviews/{id}/reject", operation_id = "reject_review", tag = "fraud",
    params(("id" = String, Path, pattern = r"^pay_[0-9A-Za-z]{24}$", description = "The held payment's id.")),
    responses((status = 200, description = "The payment, canceled as `fraudulent`; its authorization released and its review closed.", body = PaymentView),
        (status = 403, description = "A publishable key, or a key without `payments:write`.", body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "The payment is not held for a review (`review_not_open`), or another request is changing it.", body = ErrorEnvelope),
        (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    PathId(id): PathId,
) -> Result<PaymentBody, ApiError> {
    let id = payment_id(&id)?;
    let record = state.payments.reject_review(&auth.actor(), auth.tenant(), &id).await?;
    audited.mark();
    Ok(full_view(&record))
}
