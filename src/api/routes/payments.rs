//! `/v1/payments`: create (and confirm), confirm, capture, cancel, read, list.
//!
//! Inputs become domain types here (amount with currency against the
//! configured maximum and the key's restrictions, token id, metadata, …); the
//! service sees nothing else. Processor declines are not request errors: the
//! payment comes back `failed` with its `decline_code`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::IntoParams;

use crate::domain::idempotency_key::IdempotencyKey;
use crate::domain::ids::{PaymentId, TokenId};
use crate::domain::money::{Currency, InvalidAmount, MinorUnits, Money};
use crate::domain::payment::risk::decision_str;
use crate::domain::payment::{ListFilter, Payment, PaymentStatus};
use crate::domain::payment_fields::{self, CustomerEmail, Description, FieldError, Metadata, ReturnUrl};
use crate::domain::sca::RequestThreeDSecure;
use crate::domain::time::Timestamp;
use crate::services::payments::{Caller, Confirmation, NewPayment, PaymentRecord, ScaRequest};
use crate::services::ServiceError;

use super::super::auth::{AuditedInTx, Authenticated};
use super::super::error::{ApiError, ErrorEnvelope};
use super::super::extract::{AppJson, AppQuery, OptionalJson, PathId};
use super::super::field_schemas;
use super::super::json_integer::JsonInteger;
use super::super::pagination::ListResponse;
use super::super::views::{CancellationReasonField, CaptureMethodField, PaymentView};
use super::super::AppState;

// Each field's schema states exactly what its parser accepts
// (`field_schemas`); `field_schemas::ConfirmNeedsPaymentMethod` adds the rule
// that `confirm: true` needs a `payment_method`.
/// A new payment; `confirm: true` needs a `payment_method`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    #[schema(schema_with = field_schemas::payment_amount)]
    pub amount: JsonInteger,
    #[schema(schema_with = field_schemas::currency)]
    pub currency: String,
    #[schema(schema_with = field_schemas::payment_method)]
    pub payment_method: Option<String>,
    /// `automatic` (default) or `manual`.
    pub capture_method: Option<CaptureMethodField>,
    /// Confirm at once (needs `payment_method`). Default false.
    pub confirm: Option<bool>,
    #[schema(schema_with = field_schemas::description)]
    pub description: Option<String>,
    #[schema(schema_with = field_schemas::metadata)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[schema(schema_with = field_schemas::customer_ip)]
    pub customer_ip: Option<String>,
    #[schema(schema_with = field_schemas::customer_email)]
    pub customer_email: Option<String>,
    #[schema(schema_with = field_schemas::return_url)]
    pub return_url: Option<String>,
    /// Options of the card payment (3-D Secure), for the confirm.
    pub payment_method_options: Option<PaymentMethodOptions>,
    /// The merchant initiates this payment without the cardholder (a
    /// merchant-initiated transaction). Default false.
    pub off_session: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfirmPayment {
    /// Attach (or replace) the card token before confirming.
    #[schema(schema_with = field_schemas::payment_method)]
    pub payment_method: Option<String>,
    #[schema(schema_with = field_schemas::return_url)]
    pub return_url: Option<String>,
    /// Options of the card payment (3-D Secure).
    pub payment_method_options: Option<PaymentMethodOptions>,
    /// The merchant initiates this payment without the cardholder. Default false.
    pub off_session: Option<bool>,
}

/// `payment_method_options`.
#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethodOptions {
    pub card: Option<CardPaymentOptions>,
}

/// `payment_method_options.card`.
#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CardPaymentOptions {
    /// `automatic` (default: exemptions and scope as PSD2 allows), `any`
    /// (3-D Secure whenever a cardholder is present, no exemption
    /// requested) or `challenge` (always ask for a challenge).
    pub request_three_d_secure: Option<RequestThreeDSecureField>,
}

/// The merchant's 3-D Secure request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RequestThreeDSecure)]
pub enum RequestThreeDSecureField {
    Automatic,
    Any,
    Challenge,
}

/// The SCA request of a confirm, as the service takes it.
/// The SCA request of a confirm: what the merchant asked, and whether an
/// anomaly policy's step-up holds for the caller.
fn sca_request(
    state: &AppState,
    auth: &Authenticated,
    options: Option<PaymentMethodOptions>,
    off_session: Option<bool>,
) -> ScaRequest {
    let request = options.and_then(|o| o.card).and_then(|c| c.request_three_d_secure);
    ScaRequest {
        request_three_d_secure: match request {
            None | Some(RequestThreeDSecureField::Automatic) => RequestThreeDSecure::Automatic,
            Some(RequestThreeDSecureField::Any) => RequestThreeDSecure::Any,
            Some(RequestThreeDSecureField::Challenge) => RequestThreeDSecure::Challenge,
        },
        off_session: off_session.unwrap_or(false),
        step_up: state.anomalies.requires_step_up(auth.key(), auth.client_ip()),
    }
}

#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CapturePayment {
    #[schema(schema_with = field_schemas::capture_amount)]
    pub amount_to_capture: Option<JsonInteger>,
}

#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CancelPayment {
    pub cancellation_reason: Option<CancellationReasonField>,
}

/// The query of `GET /v1/payments`; its OpenAPI description is
/// [`field_schemas::payment_list_params`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentListQuery {
    pub limit: Option<i64>,
    pub starting_after: Option<String>,
    pub status: Option<String>,
    #[serde(rename = "created[gte]")]
    pub created_gte: Option<i64>,
    #[serde(rename = "created[lte]")]
    pub created_lte: Option<i64>,
}

impl IntoParams for PaymentListQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        field_schemas::payment_list_params()
    }
}

fn field_error(e: FieldError) -> ApiError {
    ApiError::invalid(e.param, "parameter_invalid", e.message)
}

/// An amount that must be positive but whose upper bound is the object's
/// balance (what is left to capture or refund), which the service checks.
pub(crate) fn positive_amount(param: &'static str, amount: JsonInteger) -> Result<MinorUnits, ApiError> {
    MinorUnits::parse(amount.get(), i64::MAX).map_err(|_| {
        ApiError::invalid(
            param,
            "invalid_amount",
            format!("{param} must be a positive integer in the currency's minor unit"),
        )
    })
}

/// Amount and currency, against the gateway's maximum (the key's own limits
/// are the service's: [`Caller::check_limits`]).
pub(crate) fn parse_money(amount: i64, currency: &str, max: i64) -> Result<Money, ApiError> {
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
    Ok(Money { amount, currency })
}

/// A malformed token id is a 400 (the document's pattern refuses it too); a
/// well-formed one that is not this merchant's is a 409 from the service.
fn token(raw: &str) -> Result<TokenId, ApiError> {
    TokenId::parse(raw).map_err(|_| {
        ApiError::invalid(
            "payment_method",
            "parameter_invalid",
            "payment_method is not a token id",
        )
    })
}

pub(super) fn payment_id(raw: &str) -> Result<PaymentId, ApiError> {
    PaymentId::parse(raw).map_err(|_| ApiError::not_found("payment", "id"))
}

/// The caller of a payment operation: the key's tenant, the merchant's
/// connector and the key's limits.
pub(crate) fn caller(auth: &Authenticated) -> Caller<'_> {
    Caller {
        tenant: auth.tenant(),
        connector: auth.merchant_record().route(auth.tenant().mode()),
        limits: &auth.key().restrictions,
    }
}

/// A single payment with its history, as the body of a response.
pub enum PaymentBody {
    /// The JSON made from the snapshot the request's change wrote into its
    /// events ([`PaymentView::json_with_history`]).
    Spliced(Vec<u8>),
    /// A payment this request read (or one without a usable snapshot).
    View(Box<PaymentView>),
}

impl IntoResponse for PaymentBody {
    fn into_response(self) -> Response {
        match self {
            PaymentBody::Spliced(json) => (
                [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                json,
            )
                .into_response(),
            PaymentBody::View(view) => Json(view).into_response(),
        }
    }
}

/// What a request decided about a payment, counted. At confirm (`confirmed`):
/// its fraud decision and its SCA decision. At confirm or when a challenge
/// ends: a final 3-D Secure result, a decline by its code, and (declined or
/// authorized) the outcome shown to the decline-rate detector. A payment
/// still waiting for its challenge is counted when the challenge ends.
pub(super) async fn count_outcome(state: &AppState, payment: &Payment, confirmed: bool) {
    if confirmed {
        if let Some(risk) = &payment.risk {
            state.metrics.fraud_decision(decision_str(risk.decision));
        }
        if let Some(sca) = &payment.sca {
            state.metrics.sca_decision(sca.outcome.code());
        }
    }
    let three_ds = payment.sca.as_ref().and_then(|s| s.three_d_secure.as_ref());
    if let Some(result) = three_ds.filter(|r| r.trans_status.is_final()) {
        state.metrics.three_ds_result(result.trans_status.letter());
    }
    if let Some(decline) = &payment.decline {
        state.metrics.decline(&decline.code);
    }
    let declined = payment.decline.is_some();
    let decided = declined
        || matches!(
            payment.status(),
            PaymentStatus::RequiresCapture | PaymentStatus::Succeeded
        );
    if decided {
        state.anomalies.payment_outcome(&payment.tenant, declined).await;
    }
}

pub(super) fn full_view(record: &PaymentRecord) -> PaymentBody {
    match record
        .snapshot
        .as_deref()
        .and_then(|snapshot| PaymentView::json_with_history(snapshot, record.payment.history()))
    {
        Some(json) => PaymentBody::Spliced(json),
        None => PaymentBody::View(Box::new(PaymentView::from_payment(&record.payment, true))),
    }
}

#[utoipa::path(post, path = "/v1/payments", operation_id = "create_payment", tag = "payments", request_body = CreatePayment,
    responses((status = 200, description = "The payment; declines come back as `status: failed` with a `decline_code`.", body = PaymentView,
            links(("get_payment" = (operation_id = "get_payment", parameters(("id" = "$response.body#/id")))), ("confirm_payment" = (operation_id = "confirm_payment", parameters(("id" = "$response.body#/id")))), ("capture_payment" = (operation_id = "capture_payment", parameters(("id" = "$response.body#/id")))), ("cancel_payment" = (operation_id = "cancel_payment", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "The body is not valid JSON, has an unknown field, or a value is invalid (`invalid_json`, `parameter_unknown`, `parameter_missing`, `parameter_invalid`, `invalid_amount`, `amount_too_large`, `invalid_currency`).", body = ErrorEnvelope),
        (status = 403, description = "Not a private key, no `payments:write`, or a key restriction (`amount_above_key_limit`, `currency_not_allowed`).", body = ErrorEnvelope),
        (status = 409, description = "`payment_method` is not a card token of this merchant and mode (`resource_missing`, `param: payment_method`).", body = ErrorEnvelope),
        (status = 413, description = "The body exceeds the configured limit (`body_too_large`).", body = ErrorEnvelope),
        (status = 415, description = "The body is not `application/json` (`unsupported_content_type`).", body = ErrorEnvelope),
        (status = 502, description = "The processor could not be reached; nothing was changed (`processor_unavailable`).", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    idempotency_key: Option<IdempotencyKey>,
    AppJson(body): AppJson<CreatePayment>,
) -> Result<PaymentBody, ApiError> {
    let policy = state.payments.policy();
    let money = parse_money(body.amount.get(), &body.currency, policy.max_amount)?;
    let customer_ip = body
        .customer_ip
        .as_deref()
        .map(payment_fields::parse_customer_ip)
        .transpose()
        .map_err(field_error)?;
    let new = NewPayment {
        money,
        capture_method: body.capture_method.map(Into::into).unwrap_or_default(),
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
        idempotency_key: idempotency_key.map(|k| k.scoped_to(&auth.key().lineage)),
        sca: sca_request(&state, &auth, body.payment_method_options, body.off_session),
    };
    let record = state.payments.create(&auth.actor(), caller(&auth), new).await?;
    count_outcome(&state, &record.payment, true).await;
    audited.mark();
    Ok(full_view(&record))
}

#[utoipa::path(post, path = "/v1/payments/{id}/confirm", operation_id = "confirm_payment", tag = "payments",
    params(("id" = String, Path, pattern = r"^pay_[0-9A-Za-z]{24}$",
        description = "The payment's id. A malformed id, or another merchant's payment, is a 404 like an unknown one.")), request_body = ConfirmPayment,
    responses((status = 200, description = "The payment, sent to the processor; declines come back as `status: failed`.", body = PaymentView),
        (status = 400, description = "The body is not valid JSON, has an unknown field, or a value is invalid.", body = ErrorEnvelope),
        (status = 403, description = "Not a private key, no `payments:write`, or a key restriction on the amount this moves or the payment's currency (`amount_above_key_limit`, `currency_not_allowed`); nothing was changed.", body = ErrorEnvelope),
        (status = 404, description = "No such payment of this merchant (`resource_missing`).", body = ErrorEnvelope),
        (status = 409, description = "The payment cannot be confirmed in its status, or has no `payment_method` (`payment_unexpected_state`); or `payment_method` is not a card token of this merchant and mode (`resource_missing`, `param: payment_method`).", body = ErrorEnvelope),
        (status = 413, description = "The body exceeds the configured limit (`body_too_large`).", body = ErrorEnvelope),
        (status = 415, description = "A body that is not `application/json` (`unsupported_content_type`); the body may be left out.", body = ErrorEnvelope),
        (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn confirm(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    PathId(id): PathId,
    OptionalJson(body): OptionalJson<ConfirmPayment>,
) -> Result<PaymentBody, ApiError> {
    let id = payment_id(&id)?;
    let confirmation = Confirmation {
        payment_method: body.payment_method.as_deref().map(token).transpose()?,
        return_url: body
            .return_url
            .as_deref()
            .map(ReturnUrl::parse)
            .transpose()
            .map_err(field_error)?,
        sca: sca_request(&state, &auth, body.payment_method_options, body.off_session),
    };
    let record = state
        .payments
        .confirm(&auth.actor(), caller(&auth), &id, confirmation)
        .await?;
    count_outcome(&state, &record.payment, true).await;
    audited.mark();
    Ok(full_view(&record))
}

#[utoipa::path(post, path = "/v1/payments/{id}/capture", operation_id = "capture_payment", tag = "payments",
    params(("id" = String, Path, pattern = r"^pay_[0-9A-Za-z]{24}$",
        description = "The payment's id. A malformed id, or another merchant's payment, is a 404 like an unknown one.")), request_body = CapturePayment,
    responses((status = 200, description = "The payment, captured.", body = PaymentView),
        (status = 400, description = "The body is not valid JSON or has an unknown field, or `amount_to_capture` is not a positive integer (`invalid_amount`).", body = ErrorEnvelope),
        (status = 402, description = "The processor refused the capture (`capture_failed`).", body = ErrorEnvelope),
        (status = 403, description = "Not a private key, no `payments:write`, or a key restriction on the amount this moves or the payment's currency (`amount_above_key_limit`, `currency_not_allowed`); nothing was changed.", body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "The payment is not waiting for capture (`payment_unexpected_state`), `amount_to_capture` is larger than the authorized amount (`amount_exceeds_capturable`, `param: amount_to_capture`), or another request is capturing or canceling it at the processor (`payment_operation_in_progress`).", body = ErrorEnvelope),
        (status = 413, description = "The body exceeds the configured limit (`body_too_large`).", body = ErrorEnvelope),
        (status = 415, description = "A body that is not `application/json` (`unsupported_content_type`); the body may be left out.", body = ErrorEnvelope),
        (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn capture(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    PathId(id): PathId,
    OptionalJson(body): OptionalJson<CapturePayment>,
) -> Result<PaymentBody, ApiError> {
    let id = payment_id(&id)?;
    let record = state
        .payments
        .capture(
            &auth.actor(),
            caller(&auth),
            &id,
            body.amount_to_capture
                .map(|a| positive_amount("amount_to_capture", a))
                .transpose()?,
        )
        .await;
    // A refused capture is recorded (history and audit) before it is answered.
    if matches!(&record, Ok(_) | Err(ServiceError::Declined { .. })) {
        audited.mark();
    }
    Ok(full_view(&record?))
}

#[utoipa::path(post, path = "/v1/payments/{id}/cancel", operation_id = "cancel_payment", tag = "payments",
    params(("id" = String, Path, pattern = r"^pay_[0-9A-Za-z]{24}$",
        description = "The payment's id. A malformed id, or another merchant's payment, is a 404 like an unknown one.")), request_body = CancelPayment,
    responses((status = 200, description = "The payment, canceled; any authorization released.", body = PaymentView),
        (status = 400, description = "The body is not valid JSON, has an unknown field, or a value is invalid.", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "The payment cannot be canceled in its status (`payment_unexpected_state`), or another request is capturing or canceling it at the processor (`payment_operation_in_progress`).", body = ErrorEnvelope),
        (status = 413, description = "The body exceeds the configured limit (`body_too_large`).", body = ErrorEnvelope),
        (status = 415, description = "A body that is not `application/json` (`unsupported_content_type`); the body may be left out.", body = ErrorEnvelope),
        (status = 502, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    PathId(id): PathId,
    OptionalJson(body): OptionalJson<CancelPayment>,
) -> Result<PaymentBody, ApiError> {
    let id = payment_id(&id)?;
    let record = state
        .payments
        .cancel(
            &auth.actor(),
            auth.tenant(),
            &id,
            body.cancellation_reason.map(Into::into),
        )
        .await?;
    audited.mark();
    Ok(full_view(&record))
}

#[utoipa::path(get, path = "/v1/payments/{id}", operation_id = "get_payment", tag = "payments",
    params(("id" = String, Path, pattern = r"^pay_[0-9A-Za-z]{24}$",
        description = "The payment's id. A malformed id, or another merchant's payment, is a 404 like an unknown one.")),
    responses((status = 200, body = PaymentView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    auth: Authenticated,
    PathId(id): PathId,
) -> Result<PaymentBody, ApiError> {
    let record = state.payments.get(auth.tenant(), &payment_id(&id)?).await?;
    Ok(full_view(&record))
}

#[utoipa::path(get, path = "/v1/payments", operation_id = "list_payments", tag = "payments", params(PaymentListQuery),
    responses((status = 200, description = "The merchant's payments, newest first, without their history.", body = ListResponse<PaymentView>),
        (status = 400, description = "A query parameter is invalid or unknown (`parameter_invalid`).", body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    AppQuery(query): AppQuery<PaymentListQuery>,
) -> Result<Json<ListResponse<PaymentView>>, ApiError> {
    let page = super::super::pagination::ListParams {
        limit: query.limit,
        starting_after: query.starting_after.clone(),
    }
    .page(PaymentId::parse)?;
    let status = query
        .status
        .as_deref()
        .map(|s| {
            PaymentStatus::parse(s)
                .ok_or_else(|| ApiError::invalid("status", "parameter_invalid", "status is not a payment status"))
        })
        .transpose()?;
    // Any time from 0 to i64::MAX seconds is valid; past the millisecond
    // range it means "later than anything stored", hence saturation.
    let millis = |param: &'static str, v: Option<i64>| {
        v.map(|s| {
            if s < 0 {
                Err(ApiError::invalid(
                    param,
                    "parameter_invalid",
                    format!("{param} must be a time in seconds since the epoch"),
                ))
            } else {
                Ok(s.saturating_mul(1000))
            }
        })
        .transpose()
    };
    let filter = ListFilter {
        status,
        created_gte: millis("created[gte]", query.created_gte)?.map(Timestamp::from_millis),
        created_lte: millis("created[lte]", query.created_lte)?
            .map(|ms| Timestamp::from_millis(ms.saturating_add(999))),
        before: page.after().cloned(),
    };
    let payments = state.payments.list(auth.tenant(), &filter, page.fetch()).await?;
    Ok(page.respond(&payments, |p| PaymentView::from_payment(p, false)))
}
