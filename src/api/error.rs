//! `ApiError`: the one error format of the API,
//! `{"error": {"type", "code", "message", "param", "request_id"}}`, with the
//! right status. The client gets the user message; an internal detail goes to
//! the log once, here, tagged with the request id, and never to the client.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::permission::Permission;
use crate::domain::restrictions::RestrictionViolation;
use crate::domain::time::Timestamp;
use crate::services::auth::AuthRejection;
use crate::services::error::{Fault, FaultKind};
use crate::services::ServiceError;

use super::request_id::current_request_id;

/// The broad class of an error, as `error.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidRequestError,
    AuthenticationError,
    /// The issuer or processor refused (402).
    CardError,
    PermissionError,
    RateLimitError,
    IdempotencyError,
    ApiError,
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    #[serde(rename = "type")]
    pub kind: ErrorType,
    /// Stable, machine-readable code, e.g. `parameter_invalid`.
    pub code: String,
    /// Human-readable explanation; never contains secrets or card data.
    pub message: String,
    /// The request field at fault, e.g. `amount` or `card[number]`.
    pub param: Option<String>,
    pub request_id: Option<String>,
}

/// What the request-context middleware learns from an error response, for
/// the audit entry.
#[derive(Debug, Clone)]
pub struct ErrorSummary {
    pub code: String,
    pub status: StatusCode,
    pub reason: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: ErrorType,
    code: String,
    message: String,
    param: Option<String>,
    /// For the log and audit trail only.
    detail: Option<String>,
    retry_after: Option<Duration>,
}

impl ApiError {
    fn new(status: StatusCode, kind: ErrorType, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code: code.to_owned(),
            message: message.into(),
            param: None,
            detail: None,
            retry_after: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// 400 naming the offending field.
    pub fn invalid(param: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorType::InvalidRequestError, code, message).with_param(param)
    }

    /// 404; used alike for a missing resource and another merchant's resource.
    pub fn not_found(resource: &str, param: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorType::InvalidRequestError,
            "resource_missing",
            format!("No such {resource}"),
        )
        .with_param(param)
    }

    /// 409: a reference in the body names nothing of this merchant, while
    /// the request's target exists (see `ServiceError::ReferenceNotFound`).
    pub fn reference_missing(resource: &str, param: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            ErrorType::InvalidRequestError,
            "resource_missing",
            format!("No such {resource}"),
        )
        .with_param(param)
    }

    pub fn route_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorType::InvalidRequestError,
            "route_not_found",
            "No such route",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorType::InvalidRequestError,
            "method_not_allowed",
            "This route does not accept this HTTP method",
        )
    }

    /// The one answer to every authentication failure.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorType::AuthenticationError,
            "authentication_failed",
            "Invalid API key provided; pass a valid key as `Authorization: Bearer <key>`",
        )
    }

    pub fn locked_out(until: Timestamp) -> Self {
        let secs = u64::try_from((until.as_millis() - Timestamp::now().as_millis()).max(1000) / 1000).unwrap_or(1);
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorType::RateLimitError,
            "too_many_failed_authentications",
            "Too many failed authentication attempts from this address; try again later",
        );
        e.retry_after = Some(Duration::from_secs(secs));
        e
    }

    /// 429 for a per-key limit (not an address lockout).
    pub fn rate_limited(message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorType::RateLimitError,
            "rate_limited",
            message,
        );
        e.retry_after = Some(Duration::from_secs(60));
        e
    }

    /// 429 with the bucket's own `Retry-After` (whole seconds, at least 1).
    pub fn rate_limited_for(retry_after: Duration, message: impl Into<String>) -> Self {
        let mut e = Self::rate_limited(message);
        e.retry_after = Some(Duration::from_secs(retry_after.as_secs().saturating_add(1)));
        e
    }

    pub fn permission_denied(wanted: Permission) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            ErrorType::PermissionError,
            "permission_denied",
            format!("This API key does not have the `{wanted}` permission"),
        )
        .with_detail(format!("missing permission {wanted}"))
    }

    pub fn forbidden(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorType::PermissionError, code, message)
    }

    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorType::InvalidRequestError, code, message)
    }

    pub fn unprocessable(code: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::InvalidRequestError,
            code,
            message,
        )
    }

    /// 409: the first request with this `Idempotency-Key` is still running.
    pub fn idempotency_key_in_use() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            ErrorType::IdempotencyError,
            "idempotency_key_in_use",
            "A request with this Idempotency-Key is still being processed; retry later",
        )
        .with_param("Idempotency-Key")
    }

    /// 422: this `Idempotency-Key` was already used for a different request.
    pub fn idempotency_key_reused() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::IdempotencyError,
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request (key, method, path or body)",
        )
        .with_param("Idempotency-Key")
    }

    /// 400: `Idempotency-Key` sent to a route that does not take part in
    /// idempotency (`idempotency::NOT_IDEMPOTENT`); `action` names what it
    /// does, e.g. "Revealing a card".
    pub fn idempotency_not_supported(action: &str) -> Self {
        Self::invalid(
            "Idempotency-Key",
            "idempotency_not_supported",
            format!("{action} is not idempotent: send this request without an Idempotency-Key header"),
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorType::InvalidRequestError,
            "body_too_large",
            format!("Request body exceeds the limit of {limit} bytes"),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorType::InvalidRequestError,
            "unsupported_content_type",
            "Request body must be JSON with `Content-Type: application/json`",
        )
    }

    /// 500: the detail is logged, the client learns nothing about it.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::ApiError,
            "internal_error",
            "An internal error occurred",
        )
        .with_detail(detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::ApiError,
            "service_unavailable",
            "The service is temporarily unavailable",
        )
        .with_detail(detail)
    }

    /// 503 `storage_unavailable`: the database is full, unreachable or did
    /// not answer in time. Logged under the fault's own name; the client is
    /// told to retry (with its `Idempotency-Key`, which resolves a change
    /// whose outcome the fault left unknown).
    pub fn storage_unavailable(fault: &Fault) -> Self {
        let message = match fault.kind {
            FaultKind::OutcomeUnknown => {
                "Storage did not confirm this change in time: it may or may not have been made. \
                 Retry with the same Idempotency-Key to learn the outcome"
            }
            _ => "Storage is temporarily unavailable; nothing was changed. Retry with the same Idempotency-Key",
        };
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::ApiError,
            "storage_unavailable",
            message,
        )
        .with_detail(fault.to_string());
        e.retry_after = Some(Duration::from_secs(match fault.kind {
            FaultKind::Full => 30,
            _ => 2,
        }));
        e
    }

    /// 403 for a movement of money that the key's limits refuse.
    pub fn key_limit(violation: &RestrictionViolation, amount_param: &'static str) -> Self {
        match violation {
            RestrictionViolation::AmountAboveKeyMaximum { max } => ApiError::forbidden(
                "amount_above_key_limit",
                format!("This API key may move at most {max} in one payment, capture or refund"),
            )
            .with_param(amount_param),
            RestrictionViolation::CurrencyNotAllowed { currency } => ApiError::forbidden(
                "currency_not_allowed",
                format!("This API key may not move money in {currency}"),
            )
            .with_param("currency"),
            other => ApiError::forbidden("key_restriction", other.to_string()),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &str {
        &self.code
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound { resource, param } => ApiError::not_found(resource, param),
            ServiceError::ReferenceNotFound { resource, param } => ApiError::reference_missing(resource, param),
            ServiceError::Invalid { param, code, message } => ApiError::invalid(param, code, message),
            ServiceError::Conflict { code, message } => {
                let mut e = ApiError::conflict(code, message);
                // Another request holds the payment right now: worth retrying
                // soon, and (answers that say when to retry are not final) not
                // stored against an Idempotency-Key.
                if matches!(code, "payment_conflict" | "payment_operation_in_progress") {
                    e.retry_after = Some(Duration::from_secs(1));
                }
                e
            }
            ServiceError::ExceedsBalance { param, code, message } => {
                ApiError::conflict(code, message).with_param(param)
            }
            ServiceError::RateLimited { message } => ApiError::rate_limited(message),
            ServiceError::OutcomeUnknown { operation, retry_after } => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorType::ApiError,
                    "processor_outcome_unknown",
                    format!(
                        "The processor did not answer the {operation} in time and could not say whether it happened; \
                         the payment is held until the processor's answer is known. Retry later with the same Idempotency-Key"
                    ),
                );
                e.retry_after = Some(retry_after);
                e
            }
            ServiceError::KeyLimit {
                violation,
                amount_param,
            } => ApiError::key_limit(&violation, amount_param),
            ServiceError::Declined { code, message } => {
                ApiError::new(StatusCode::PAYMENT_REQUIRED, ErrorType::CardError, code, message)
            }
            ServiceError::ProcessorUnavailable { detail } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                ErrorType::ApiError,
                "processor_unavailable",
                "The payment processor could not be reached; nothing was changed. Retry with the same Idempotency-Key",
            )
            .with_detail(detail),
            // The in-memory CVC holder is at capacity and the caller's merchant
            // holds no CVC of its own to give up: a bounded store refuses
            // rather than grow or evict another merchant's; retry shortly.
            ServiceError::Vault(crate::vault::VaultError::CvcStoreFull) => {
                let mut e = ApiError::unavailable("the CVC holder is full");
                e.retry_after = Some(Duration::from_secs(5));
                e
            }
            ServiceError::StorageUnavailable(fault) => ApiError::storage_unavailable(&fault),
            other @ (ServiceError::Store(_) | ServiceError::Random(_) | ServiceError::Vault(_)) => {
                ApiError::internal(other.to_string())
            }
        }
    }
}

impl From<AuthRejection> for ApiError {
    fn from(r: AuthRejection) -> Self {
        match r {
            AuthRejection::Unauthenticated => ApiError::unauthenticated(),
            AuthRejection::LockedOut { until } => ApiError::locked_out(until),
            AuthRejection::MerchantFrozen => ApiError::forbidden(
                "merchant_frozen",
                "This merchant account is frozen by the gateway operator; contact them to restore access",
            ),
            AuthRejection::KeyFrozen => ApiError::forbidden(
                "key_frozen",
                "This API key is frozen by the gateway operator; use another key or contact them",
            ),
            AuthRejection::Unavailable(e @ ServiceError::StorageUnavailable(_)) => ApiError::from(e),
            AuthRejection::Unavailable(e) => ApiError::unavailable(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = current_request_id();
        if self.status.is_server_error() {
            tracing::error!(request_id = request_id.as_deref().unwrap_or("-"), code = %self.code, detail = self.detail.as_deref().unwrap_or("-"), "request failed");
        }
        let body = ErrorEnvelope {
            error: ErrorBody {
                kind: self.kind,
                code: self.code.clone(),
                message: self.message,
                param: self.param,
                request_id,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(after) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&after.as_secs().to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response.extensions_mut().insert(ErrorSummary {
            code: self.code,
            status: self.status,
            reason: self.detail,
        });
        response
    }
}
