//! `/v1/payments`: create (and confirm), confirm, capture, cancel, read, list.
//!
//! Inputs become domain types here (amount with currency against the
//! configured maximum and the key's restrictions, token id, metadata, …); the
//! service sees nothing else. Processor declines are not request errors: the
//! payment comes back `failed` with its `decline_code`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;

use crate::domain::idempotency_key::IdempotencyKey;
use crate::domain::ids::{PaymentId, TokenId};
use crate::domain::money::{Currency, InvalidAmount, MinorUnits, Money};
use crate::domain::payment::{CaptureMethod, PaymentStatus};
use crate::domain::payment_fields::{CustomerEmail, Description, FieldError, Metadata, ReturnUrl};
use crate::domain::permission::Permission;
use crate::domain::restrictions::RestrictionViolation;
use crate::services::payments::view::PaymentView;
use crate::services::payments::{CancellationReason, Confirmation, NewPayment, Owner, PaymentRecord};
use crate::services::ServiceError;
use crate::store::payments::ListFilter;

use super::super::auth::{AuditedInTx, Authenticated};
use super::super::error::{ApiError, ErrorEnvelope};
use super::super::extract::{AppJson, AppQuery, OptionalJson};
use super::super::pagination::ListResponse;
use super::super::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    /// A positive integer in the currency's minor unit (cents for USD, yen for JPY).
    pub amount: i64,
    /// ISO 4217 code, e.g. `usd`, `eur`, `jpy`.
    pub currency: String,
    /// A card token (`tok_…`) of this merchant and mode.
    pub payment_method: Option<String>,
    /// `automatic` (default) or `manual`.
    pub capture_method: Option<CaptureMethod>,
    /// Confirm at once (needs `payment_method`). Default false.
    pub confirm: Option<bool>,
    /// Up to 1000 characters.
    pub description: Option<String>,
    /// Up to 20 keys (1–40 characters of letters, digits, `_-.`) with values
    /// of up to 500 characters.
    pub metadata: Option<BTreeMap<String, String>>,
    /// The customer's IP address.
    pub customer_ip: Option<String>,
    pub customer_email: Option<String>,
    /// Where the customer returns after 3-D Secure: https (http only for localhost).
    pub return_url: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfirmPayment {
    /// Attach (or replace) the card token before confirming.
    pub payment_method: Option<String>,
    pub return_url: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CapturePayment {
    /// At most the authorized amount; default all of it. The rest is released.
    pub amount_to_capture: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CancelPayment {
    pub cancellation_reason: Option<CancellationReason>,
}

/// The query of `GET /v1/payments`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PaymentListQuery {
    /// 1 to 100 (default 10).
    pub limit: Option<i64>,
    /// A payment id: return older payments than it (lists are newest first).
    pub starting_after: Option<String>,
    /// Only payments in this status.
    pub status: Option<String>,
    /// Only payments created at or after this time (seconds since the epoch).
    #[serde(rename = "created[gte]")]
    #[param(rename = "created[gte]")]
    pub created_gte: Option<i64>,
    /// Only payments created at or before this time (seconds since the epoch).
    #[serde(rename = "created[lte]")]
    #[param(rename = "created[lte]")]
    pub created_lte: Option<i64>,
}

fn field_error(e: FieldError) -> ApiError {
    ApiError::invalid(e.param, "parameter_invalid", e.message)
}

/// Amount and currency, against the gateway's maximum and the key's limits.
pub(crate) fn parse_money(auth: &Authenticated, amount: i64, currency: &str, max: i64) -> Result<Money, ApiError> {
    let currency =
        Currency::parse(currency).map_err(|e| ApiError::invalid("currency", "invalid_currency", e.to_string()))?;
    let amount = MinorUnits::parse(amount, max).map_err(|e| match e {
        InvalidAmount::NotPositive => ApiError::invalid(
            "amount",
            "invalid_amount",
            "amount must be a positive integer in the currency's minor unit",
        ),
        InvalidAmount::TooLarge { max } => {
            ApiError::invalid("amount", "amount_too_large", format!("amount must be at most {max}"))
        }
    })?;
    let money = Money { amount, currency };
    auth.key().restrictions.check_money(money).map_err(|v| match v {
        RestrictionViolation::AmountAboveKeyMaximum { max } => ApiError::forbidden(
            "amount_above_key_limit",
            format!("This API key may create payments of at most {max}"),
        )
        .with_param("amount"),
        RestrictionViolation::CurrencyNotAllowed { currency } => ApiError::forbidden(
            "currency_not_allowed",
            format!("This API key may not create payments in {currency}"),
        )
        .with_param("currency"),
        other => ApiError::forbidden("key_restriction", other.to_string()),
    })?;
    Ok(money)
}

fn token(raw: &str) -> Result<TokenId, ApiError> {
    TokenId::parse(raw).map_err(|_| ApiError::invalid("payment_method", "resource_missing", "No such payment_method"))
}

fn payment_id(raw: &str) -> Result<PaymentId, ApiError> {
    PaymentId::parse(raw).map_err(|_| ApiError::not_found("payment", "id"))
}

fn owner(auth: &Authenticated) -> Owner {
    Owner {
        merchant: auth.merchant().clone(),
        mode: auth.key().mode,
        connector: auth.merchant_record().connector.clone(),
    }
}

fn full_view(record: &PaymentRecord) -> Json<PaymentView> {
    Json(PaymentView::from_row(&record.row, Some(&record.history)))
}

#[utoipa::path(post, path = "/v1/payments", operation_id = "create_payment", tag = "payments", request_body = CreatePayment,
    responses((status = 200, description = "The payment; declines come back as `status: failed` with a `decline_code`.", body = PaymentView),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope), (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    idempotency_key: Option<IdempotencyKey>,
    AppJson(body): AppJson<CreatePayment>,
) -> Result<Json<PaymentView>, ApiError> {
    auth.require_private_key()?.require(Permission::PaymentsWrite)?;
    let policy = state.payments.policy();
    let money = parse_money(&auth, body.amount, &body.currency, policy.max_amount)?;
    let customer_ip = body
        .customer_ip
        .as_deref()
        .map(|ip| {
            ip.parse::<IpAddr>()
                .map_err(|_| ApiError::invalid("customer_ip", "parameter_invalid", "customer_ip is not an IP address"))
        })
        .transpose()?;
    let new = NewPayment {
        money,
        capture_method: body.capture_method.unwrap_or_default(),
        payment_method: body.payment_method.as_deref().map(token).transpose()?,
        confirm: body.confirm.unwrap_or(false),
        description: body
            .description
            .as_deref()
            .map(Description::parse)
            .transpose()
            .map_err(field_error)?,
        metadata: Metadata::parse(body.metadata.unwrap_or_default()).map_err(field_error)?,
        customer_ip,
        customer_email: body
            .customer_email
            .as_deref()
            .map(CustomerEmail::parse)
            .transpose()
            .map_err(field_error)?,
        return_url: body
            .return_url
            .as_deref()
            .map(ReturnUrl::parse)
            .transpose()
            .map_err(field_error)?,
        idempotency_key: idempotency_key.map(|k| k.as_str().to_owned()),
    };
    let record = state.payments.create(&auth.actor(), &owner(&auth), new).await?;
    audited.mark();
    Ok(full_view(&record))
}

#[utoipa::path(post, path = "/v1/payments/{id}/confirm", operation_id = "confirm_payment", tag = "payments",
    params(("id" = String, Path)), request_body = ConfirmPayment,
    responses((status = 200, body = PaymentView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 429, body = ErrorEnvelope), (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn confirm(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<ConfirmPayment>,
) -> Result<Json<PaymentView>, ApiError> {
    auth.require_private_key()?.require(Permission::PaymentsWrite)?;
    let id = payment_id(&id)?;
    let confirmation = Confirmation {
        payment_method: body.payment_method.as_deref().map(token).transpose()?,
        return_url: body
            .return_url
            .as_deref()
            .map(ReturnUrl::parse)
            .transpose()
            .map_err(field_error)?,
    };
    let record = state
        .payments
        .confirm(&auth.actor(), &owner(&auth), &id, confirmation)
        .await?;
    audited.mark();
    Ok(full_view(&record))
}

#[utoipa::path(post, path = "/v1/payments/{id}/capture", operation_id = "capture_payment", tag = "payments",
    params(("id" = String, Path)), request_body = CapturePayment,
    responses((status = 200, body = PaymentView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 402, description = "The processor refused the capture (`capture_failed`).", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 429, body = ErrorEnvelope), (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn capture(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<CapturePayment>,
) -> Result<Json<PaymentView>, ApiError> {
    auth.require_private_key()?.require(Permission::PaymentsWrite)?;
    let id = payment_id(&id)?;
    let record = state
        .payments
        .capture(&auth.actor(), auth.merchant(), &id, body.amount_to_capture)
        .await;
    // A refused capture is recorded (history and audit) before it is answered.
    if matches!(&record, Ok(_) | Err(ServiceError::Declined { .. })) {
        audited.mark();
    }
    Ok(full_view(&record?))
}

#[utoipa::path(post, path = "/v1/payments/{id}/cancel", operation_id = "cancel_payment", tag = "payments",
    params(("id" = String, Path)), request_body = CancelPayment,
    responses((status = 200, body = PaymentView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 429, body = ErrorEnvelope), (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<CancelPayment>,
) -> Result<Json<PaymentView>, ApiError> {
    auth.require_private_key()?.require(Permission::PaymentsWrite)?;
    let id = payment_id(&id)?;
    let record = state
        .payments
        .cancel(&auth.actor(), auth.merchant(), &id, body.cancellation_reason)
        .await?;
    audited.mark();
    Ok(full_view(&record))
}

#[utoipa::path(get, path = "/v1/payments/{id}", operation_id = "get_payment", tag = "payments", params(("id" = String, Path)),
    responses((status = 200, body = PaymentView), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    auth.require_private_key()?.require(Permission::PaymentsRead)?;
    let record = state.payments.get(auth.merchant(), &payment_id(&id)?).await?;
    Ok(full_view(&record))
}

#[utoipa::path(get, path = "/v1/payments", operation_id = "list_payments", tag = "payments", params(PaymentListQuery),
    responses((status = 200, body = ListResponse<PaymentView>), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    AppQuery(query): AppQuery<PaymentListQuery>,
) -> Result<Json<ListResponse<PaymentView>>, ApiError> {
    auth.require_private_key()?.require(Permission::PaymentsRead)?;
    let paging = super::super::pagination::ListParams {
        limit: query.limit,
        starting_after: query.starting_after.clone(),
    };
    let limit = paging.limit()?;
    let before = paging.cursor(PaymentId::parse)?;
    let status = query
        .status
        .as_deref()
        .map(|s| {
            PaymentStatus::parse(s)
                .ok_or_else(|| ApiError::invalid("status", "parameter_invalid", "status is not a payment status"))
        })
        .transpose()?;
    let seconds = |param: &'static str, v: Option<i64>| {
        v.map(|s| {
            s.checked_mul(1000).filter(|ms| *ms >= 0).ok_or_else(|| {
                ApiError::invalid(param, "parameter_invalid", format!("{param} must be a time in seconds"))
            })
        })
        .transpose()
    };
    let filter = ListFilter {
        status: status.map(PaymentStatus::as_str),
        created_gte: seconds("created[gte]", query.created_gte)?,
        created_lte: seconds("created[lte]", query.created_lte)?.map(|ms| ms + 999),
        before: before.as_ref(),
    };
    let rows = state.payments.list(auth.merchant(), filter, limit + 1).await?;
    let views = rows.iter().map(|r| PaymentView::from_row(r, None)).collect();
    Ok(Json(ListResponse::from_overfetch(views, limit)))
}
