//! Who may call which `/v1` route: one table ([`RULES`]) and the middleware
//! that applies it ([`authorize`]), between authentication and the
//! idempotency layer.
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

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::domain::permission::Permission;

use super::auth::Authenticated;
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
];

/// The rule of a route template and method, if the table has one.
pub fn rule(method: &Method, route: &str) -> Option<Access> {
    RULES
        .iter()
        .find(|(m, r, _)| m == method && *r == route)
        .map(|(_, _, access)| *access)
}

/// Whether `auth` may call a route demanding `access`; the refusal otherwise.
pub fn check(auth: &Authenticated, access: Access) -> Result<(), ApiError> {
    match access {
        Access::PrivateKey => auth.require_private_key().map(drop),
        Access::SecretKey => auth.require_secret_key().map(drop),
        Access::Permission(p) => auth.require(p).map(drop),
        Access::PrivatePermission(p) => auth.require_private_key()?.require(p).map(drop),
    }
}

/// Applies [`RULES`] to an authenticated request.
pub async fn authorize(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let (Some(auth), Some(route)) = (req.extensions().get::<Authenticated>(), route) else {
        return ApiError::internal("authorization outside an authenticated route").into_response();
    };
    let Some(access) = rule(req.method(), route) else {
        return ApiError::internal(format!("no access rule for {} {route}", req.method())).into_response();
    };
    match check(auth, access) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refusal.into_response(),
    }
}
