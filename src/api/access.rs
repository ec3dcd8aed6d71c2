//! Who may call which `/v1` route: one table ([`RULES`]) and the middleware
//! that applies it ([`authorize`]), at the end of authentication and so
//! before the idempotency layer.
//!
//! Deciding here, before the idempotency layer, means a refusal (wrong key
//! kind, missing permission) is never stored and reserves no
//! `Idempotency-Key`: a holder of the public publishable key cannot squat a
//! merchant's idempotency keys, nor learn which ones were used. Restrictions
//! that depend on the key's address (allowed IPs) and a frozen merchant are
//! refused earlier still, by authentication; a key's money limits, which
//! depend on the payment, by the services (whose 403s the idempotency layer
//! does not store either).
//!
//! The table fails closed: a `/v1` route without a rule is refused with 500,
//! and a test checks that every route of the OpenAPI document has one.

use axum::extract::MatchedPath;
use axum::http::Method;

use crate::domain::api_key::{ApiKey, KeyKind};
use crate::domain::permission::Permission;

use super::error::ApiError;

/// What a route demands of the calling key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A secret or restricted key (publishable keys are public).
    PrivateKey,
    /// A secret key (account-level changes).
    SecretKey,
    /// Any key granting the permission (a publishable key grants only
    /// `tokens:write`).
    Permission(Permission),
    /// A secret or restricted key granting the permission.
    PrivatePermission(Permission),
}

/// Every `/v1` route, by method and route template.
pub const RULES: &[(Method, &str, Access)] = &[
    (Method::GET, "/v1/merchant", Access::PrivateKey),
    (Method::POST, "/v1/merchant", Access::SecretKey),
    (Method::GET, "/v1/api_keys", Access::Permission(Permission::ApiKeysRead)),
    (
        Method::GET,
        "/v1/api_keys/{id}",
        Access::Permission(Permission::ApiKeysRead),
    ),
    (
        Method::POST,
        "/v1/api_keys/{id}/revoke",
        Access::Permission(Permission::ApiKeysWrite),
    ),
    (Method::GET, "/v1/connectors", Access::SecretKey),
    (Method::POST, "/v1/connectors", Access::SecretKey),
    (Method::GET, "/v1/connectors/{id}", Access::SecretKey),
    (Method::POST, "/v1/connectors/{id}", Access::SecretKey),
    (Method::POST, "/v1/connectors/{id}/disable", Access::SecretKey),
    (Method::POST, "/v1/tokens", Access::Permission(Permission::TokensWrite)),
    (
        Method::GET,
        "/v1/tokens/{id}",
        Access::Permission(Permission::TokensRead),
    ),
    (
        Method::DELETE,
        "/v1/tokens/{id}",
        Access::PrivatePermission(Permission::TokensWrite),
    ),
    (
        Method::POST,
        "/v1/tokens/{id}/reveal",
        Access::Permission(Permission::TokensReveal),
    ),
    (
        Method::GET,
        "/v1/payments",
        Access::PrivatePermission(Permission::PaymentsRead),
    ),
    (
        Method::POST,
        "/v1/payments",
        Access::PrivatePermission(Permission::PaymentsWrite),
    ),
    (
        Method::GET,
        "/v1/payments/{id}",
        Access::PrivatePermission(Permission::PaymentsRead),
    ),
    (
        Method::POST,
        "/v1/payments/{id}/confirm",
        Access::PrivatePermission(Permission::PaymentsWrite),
    ),
    (
        Method::POST,
        "/v1/payments/{id}/capture",
        Access::PrivatePermission(Permission::PaymentsWrite),
    ),
    (
        Method::POST,
        "/v1/payments/{id}/cancel",
        Access::PrivatePermission(Permission::PaymentsWrite),
    ),
    (
        Method::GET,
        "/v1/refunds",
        Access::PrivatePermission(Permission::RefundsRead),
    ),
    (
        Method::POST,
        "/v1/refunds",
        Access::PrivatePermission(Permission::RefundsWrite),
    ),
    (
        Method::GET,
        "/v1/refunds/{id}",
        Access::PrivatePermission(Permission::RefundsRead),
    ),
    (
        Method::GET,
        "/v1/anomalies",
        Access::PrivatePermission(Permission::AnomaliesRead),
    ),
    (
        Method::GET,
        "/v1/events",
        Access::PrivatePermission(Permission::EventsRead),
    ),
    (
        Method::GET,
        "/v1/events/{id}",
        Access::PrivatePermission(Permission::EventsRead),
    ),
    (
        Method::GET,
        "/v1/webhook_endpoints",
        Access::PrivatePermission(Permission::WebhooksRead),
    ),
    (
        Method::POST,
        "/v1/webhook_endpoints",
        Access::PrivatePermission(Permission::WebhooksWrite),
    ),
    (
        Method::GET,
        "/v1/webhook_endpoints/{id}",
        Access::PrivatePermission(Permission::WebhooksRead),
    ),
    (
        Method::POST,
        "/v1/webhook_endpoints/{id}",
        Access::PrivatePermission(Permission::WebhooksWrite),
    ),
    (
        Method::DELETE,
        "/v1/webhook_endpoints/{id}",
        Access::PrivatePermission(Permission::WebhooksWrite),
    ),
    (
        Method::POST,
        "/v1/webhook_endpoints/{id}/rotate_secret",
        Access::PrivatePermission(Permission::WebhooksWrite),
    ),
    (
        Method::GET,
        "/v1/webhook_endpoints/{id}/attempts",
        Access::PrivatePermission(Permission::WebhooksRead),
    ),
    (
        Method::GET,
        "/v1/fraud/rules",
        Access::PrivatePermission(Permission::FraudRead),
    ),
    (
        Method::POST,
        "/v1/fraud/rules",
        Access::PrivatePermission(Permission::FraudWrite),
    ),
    (
        Method::POST,
        "/v1/fraud/rules/dry_run",
        Access::PrivatePermission(Permission::FraudWrite),
    ),
    (
        Method::POST,
        "/v1/fraud/rules/{version}/activate",
        Access::PrivatePermission(Permission::FraudWrite),
    ),
    (
        Method::GET,
        "/v1/fraud/lists/{name}",
        Access::PrivatePermission(Permission::FraudRead),
    ),
    (
        Method::POST,
        "/v1/fraud/lists/{name}",
        Access::PrivatePermission(Permission::FraudWrite),
    ),
    (
        Method::GET,
        "/v1/reviews",
        Access::PrivatePermission(Permission::PaymentsRead),
    ),
    (
        Method::POST,
        "/v1/reviews/{id}/approve",
        Access::PrivatePermission(Permission::PaymentsWrite),
    ),
    (
        Method::POST,
        "/v1/reviews/{id}/reject",
        Access::PrivatePermission(Permission::PaymentsWrite),
    ),
];

/// The rule of a route template and method, if the table has one.
pub fn rule(method: &Method, route: &str) -> Option<Access> {
    RULES
        .iter()
        .find(|(m, r, _)| m == method && *r == route)
        .map(|(_, _, access)| *access)
}

/// Whether `key` may call a route demanding `access`; the refusal otherwise.
pub fn check(key: &ApiKey, access: Access) -> Result<(), ApiError> {
    match access {
        Access::PrivateKey => require_private_key(key),
        Access::SecretKey => require_secret_key(key),
        Access::Permission(p) => require(key, p),
        Access::PrivatePermission(p) => require_private_key(key).and_then(|()| require(key, p)),
    }
}

/// Ok if `key` grants `wanted`.
pub fn require(key: &ApiKey, wanted: Permission) -> Result<(), ApiError> {
    if key.grants(wanted) {
        Ok(())
    } else {
        Err(ApiError::permission_denied(wanted))
    }
}

/// Ok for secret and restricted keys; publishable keys are refused (they
/// are public by design and may only create card tokens).
pub fn require_private_key(key: &ApiKey) -> Result<(), ApiError> {
    if key.kind == KeyKind::Publishable {
        Err(ApiError::forbidden(
            "publishable_key_not_allowed",
            "Publishable keys may only create card tokens",
        ))
    } else {
        Ok(())
    }
}

/// Ok only for secret keys (account-level changes).
pub fn require_secret_key(key: &ApiKey) -> Result<(), ApiError> {
    if key.kind == KeyKind::Secret {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "secret_key_required",
            "This request requires a secret key",
        ))
    }
}

/// Applies [`RULES`] to a request of `method` on the route template `route`
/// by `key` (called by authentication, once the caller is known).
pub fn authorize(key: &ApiKey, method: &Method, route: Option<&MatchedPath>) -> Result<(), ApiError> {
    let Some(route) = route.map(MatchedPath::as_str) else {
        return Err(ApiError::internal("authorization outside a matched route"));
    };
    let Some(access) = rule(method, route) else {
        return Err(ApiError::internal(format!("no access rule for {method} {route}")));
    };
    check(key, access)
}
