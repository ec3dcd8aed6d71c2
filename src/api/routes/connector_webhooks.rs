//! `POST /v1/connectors/{id}/webhooks`: a processor's webhooks for one of a
//! merchant's connections. Not authenticated by an API key: by the
//! processor's signature over the body, checked with the connection's own
//! sealed signing secret (Stripe: `Stripe-Signature`, 300 s tolerance).
//!
//! Invariants: every refusal (no such connection, no secret, a missing,
//! wrong or stale signature, an unreadable body) is the same 400, so an
//! unsigned caller learns nothing about which connection ids exist; the body
//! is bounded by the gateway's body limit and read whole, exactly as
//! received, before anything verifies it; no part of it is logged, audited
//! or echoed. Accepted deliveries (applied, ignored, repeated) answer 200.
//!
//! Not in the OpenAPI document, which describes the merchants' API (like the
//! sandbox's challenge page): processors call this route, and docs/api.md
//! describes it.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::Extension;
use axum::Json;

use crate::connectors::InboundHeaders;
use crate::services::actor::{Actor, RequestMeta};
use crate::services::connections::inbound::{self, InboundError, Received};

use super::super::auth::AuditedInTx;
use super::super::error::ApiError;
use super::super::extract::PathId;
use super::super::AppState;

/// The answer to an accepted delivery.
#[derive(serde::Serialize)]
pub struct WebhookReceipt {
    /// Always `true`.
    pub received: bool,
    /// `applied`, `ignored` (nothing to change) or `duplicate` (delivered
    /// before).
    pub outcome: &'static str,
}

/// The one refusal.
fn unverified() -> ApiError {
    ApiError::invalid("signature", "webhook_unverified", "The webhook could not be verified")
}

pub async fn receive(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    audited: AuditedInTx,
    PathId(id): PathId,
    headers: HeaderMap,
    req: Request,
) -> Result<Json<WebhookReceipt>, ApiError> {
    let body = axum::body::to_bytes(req.into_body(), state.body_limit)
        .await
        .map_err(|_| ApiError::payload_too_large(state.body_limit))?;
    let inbound = InboundHeaders::new(headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
    let actor = Actor::Anonymous { meta };
    let outcome = inbound::receive(&state.payments, &state.store, &actor, &id, &inbound, &body).await;
    let outcome = match outcome {
        Ok(Received::Applied(_)) => "applied",
        Ok(Received::Ignored) => "ignored",
        Ok(Received::Duplicate) => "duplicate",
        Err(InboundError::Refused) => {
            audited.mark();
            return Err(unverified());
        }
        Err(InboundError::Service(e)) => return Err(e.into()),
    };
    if outcome != "duplicate" {
        audited.mark();
    }
    Ok(Json(WebhookReceipt {
        received: true,
        outcome,
    }))
}
