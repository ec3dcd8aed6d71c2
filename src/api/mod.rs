//! The HTTP API: `router(state)` builds every route with its middleware.
//!
//! Request path: `request_context` (request id, client address, security
//! headers, audit entry) → routing → `auth::authenticate` (on `/v1`; it
//! ends with the key's rate-limit buckets, `rate_limit::admit_key`, and
//! `access::authorize`, the route's key kind and permission; the public
//! pages have `rate_limit::limit_anonymous`) →
//! `idempotency::idempotency` (POSTs with `Idempotency-Key`) → handler →
//! service. Every error leaves as an `ApiError`. On the way out, the request
//! context reads what the handler left of the body (`drain`).

pub mod access;
pub mod auth;
pub mod client_address;
pub mod context;
pub mod domain_schemas;
pub mod drain;
pub mod error;
pub mod extract;
pub mod field_schemas;
pub mod idempotency;
pub mod json_integer;
pub mod openapi;
pub mod operator;
pub mod pagination;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod schema;
pub mod views;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use ipnet::IpNet;
use tower_http::catch_panic::CatchPanicLayer;

use crate::services::audit_writer::AuditSink;
use crate::services::auth::Authenticator;
use crate::services::idempotency::Idempotency;
use crate::services::payments::Payments;
use crate::services::Store;
use crate::vault::Vault;

use error::ApiError;
use extract::BodyLimit;

/// What handlers share: a cheap handle (one reference count) to
/// [`AppServices`], cloned by every extractor of every request.
#[derive(Clone)]
pub struct AppState(Arc<AppServices>);

impl AppState {
    pub fn new(services: AppServices) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppServices;
    fn deref(&self) -> &AppServices {
        &self.0
    }
}

/// The services behind the API.
pub struct AppServices {
    pub store: Store,
    pub auth: Authenticator,
    pub audit: AuditSink,
    pub vault: Arc<Vault>,
    pub idempotency: Idempotency,
    pub payments: Payments,
    /// Rate limits of every route class (per key, merchant, client address).
    pub rate_limits: crate::services::rate_limit::Limits,
    /// The audit of throttled requests, one entry per subject and window.
    pub throttles: crate::services::rate_limit::ThrottleLog,
    /// Peers whose `X-Forwarded-For` is believed (a TLS-terminating proxy).
    pub trusted_proxies: Arc<[IpNet]>,
    pub body_limit: usize,
    /// The gateway runs with `--dev` (e.g. `http://localhost` webhooks allowed).
    pub dev_mode: bool,
    /// This gateway's Prometheus metrics (served on the operator listener).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The anomaly detectors, their policy and throttles.
    pub anomalies: crate::services::anomaly::Anomalies,
}

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/merchant", get(routes::merchant::show).post(routes::merchant::update))
        .route("/api_keys", get(routes::api_keys::list))
        .route("/api_keys/{id}", get(routes::api_keys::show))
        .route("/api_keys/{id}/revoke", post(routes::api_keys::revoke))
        .route("/tokens", post(routes::tokens::create))
        .route("/tokens/{id}", get(routes::tokens::show).delete(routes::tokens::delete))
        .route("/tokens/{id}/reveal", post(routes::tokens::reveal))
        .route("/payments", get(routes::payments::list).post(routes::payments::create))
        .route("/payments/{id}", get(routes::payments::show))
        .route("/payments/{id}/confirm", post(routes::payments::confirm))
        .route("/payments/{id}/capture", post(routes::payments::capture))
        .route("/payments/{id}/cancel", post(routes::payments::cancel))
        .route("/refunds", get(routes::refunds::list).post(routes::refunds::create))
        .route("/refunds/{id}", get(routes::refunds::show))
        .route("/anomalies", get(routes::anomalies::list))
        .route("/events", get(routes::events::list))
        .route("/events/{id}", get(routes::events::show))
        .route(
            "/connectors",
            get(routes::connectors::list).post(routes::connectors::create),
        )
        .route(
            "/connectors/{id}",
            get(routes::connectors::show).post(routes::connectors::update),
        )
        .route("/connectors/{id}/disable", post(routes::connectors::disable))
        .route(
            "/webhook_endpoints",
            get(routes::webhook_endpoints::list).post(routes::webhook_endpoints::create),
        )
        .route(
            "/webhook_endpoints/{id}",
            get(routes::webhook_endpoints::show)
                .post(routes::webhook_endpoints::update)
                .delete(routes::webhook_endpoints::delete),
        )
        .route(
            "/webhook_endpoints/{id}/rotate_secret",
            post(routes::webhook_endpoints::rotate_secret),
        )
        .route(
            "/webhook_endpoints/{id}/attempts",
            get(routes::webhook_endpoints::attempts),
        )
        .route(
            "/fraud/rules",
            get(routes::fraud::show_rules).post(routes::fraud::save_rules),
        )
        .route("/fraud/rules/dry_run", post(routes::fraud::dry_run))
        .route("/fraud/rules/{version}/activate", post(routes::fraud::activate_rules))
        .route(
            "/fraud/lists/{name}",
            get(routes::fraud::show_list).post(routes::fraud::replace_list),
        )
        .route("/reviews", get(routes::reviews::list))
        .route("/reviews/{id}/approve", post(routes::reviews::approve))
        .route("/reviews/{id}/reject", post(routes::reviews::reject))
        // Innermost first: idempotency (a key belongs to the authenticated
        // merchant's key lineage) runs only for authorized requests, so a
        // refusal is never stored and reserves no key.
        .route_layer(from_fn_with_state(state.clone(), idempotency::idempotency))
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate));
    // Unauthenticated pages and assets: limited per client address.
    let public = Router::new()
        .route("/openapi.json", get(openapi::serve))
        .route("/elements/card", get(routes::elements::card_page))
        .route("/elements/card.js", get(routes::elements::card_script))
        .route("/elements/card.css", get(routes::elements::card_style))
        .route(
            "/sandbox/3ds/{id}",
            get(routes::sandbox_3ds::page).post(routes::sandbox_3ds::answer),
        )
        .route_layer(from_fn_with_state(state.clone(), rate_limit::limit_anonymous));
    // Processors' webhooks: authenticated by the processor's signature, not
    // by an API key; limited per client address like the public pages.
    let inbound = Router::new()
        .route(
            "/v1/connectors/{id}/webhooks",
            post(routes::connector_webhooks::receive),
        )
        .route_layer(from_fn_with_state(state.clone(), rate_limit::limit_anonymous));
    let body_limit = state.body_limit;
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .merge(public)
        .merge(inbound)
        .nest("/v1", v1)
        .fallback(|| async { ApiError::route_not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(from_fn_with_state(state.clone(), context::request_context))
        .layer(axum::Extension(BodyLimit(body_limit)))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .with_state(state)
}
