//! Authentication middleware for `/v1`, and the `Authenticated` extractor that
//! handlers use to learn the caller and to demand permissions.
//!
//! A handler can only reach a merchant's data through `Authenticated`, which
//! exists only after a key was verified; `require` turns it into a proof that
//! a permission is held.

use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::domain::api_key::ApiKey;
use crate::domain::ids::MerchantId;
use crate::domain::merchant::Merchant;
use crate::domain::permission::Permission;
use crate::domain::tenant::Tenant;
use crate::services::actor::{Actor, RequestMeta};
use crate::services::anomaly::Verdict;
use crate::services::auth::{AuthRejection, Credential};
use crate::services::rate_limit::RouteClass;

use super::access;
use super::context::{describe_route, AuditSlot};
use super::error::ApiError;
use super::rate_limit;
use super::AppState;

/// The verified caller of this request.
#[derive(Debug, Clone)]
pub struct Authenticated {
    key: Arc<ApiKey>,
    /// The key's merchant and mode: everything the caller reaches is scoped
    /// to it.
    tenant: Tenant,
    /// The key's merchant, read in the same lookup as the key.
    merchant: Arc<Merchant>,
    meta: RequestMeta,
}

impl Authenticated {
    pub fn key(&self) -> &ApiKey {
        &self.key
    }

    pub fn merchant(&self) -> &MerchantId {
        &self.key.merchant_id
    }

    /// The client's address (behind trusted proxies, the forwarded one).
    pub fn client_ip(&self) -> std::net::IpAddr {
        self.meta.client_ip
    }

    /// The caller's world: its key's merchant and mode.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The caller's merchant as it was when the request was authenticated.
    pub fn merchant_record(&self) -> &Merchant {
        &self.merchant
    }

    /// Ok only if the key holds `wanted`; otherwise a 403 naming it.
    pub fn require(&self, wanted: Permission) -> Result<&Self, ApiError> {
        access::require(&self.key, wanted).map(|()| self)
    }

    /// Ok for secret and restricted keys; publishable keys are refused (they
    /// are public by design and may only create card tokens).
    pub fn require_private_key(&self) -> Result<&Self, ApiError> {
        access::require_private_key(&self.key).map(|()| self)
    }

    /// Ok only for secret keys (account-level changes).
    pub fn require_secret_key(&self) -> Result<&Self, ApiError> {
        access::require_secret_key(&self.key).map(|()| self)
    }

    /// The audit identity for services acting on this caller's behalf.
    pub fn actor(&self) -> Actor {
        Actor::Api {
            meta: self.meta.clone(),
            tenant: self.tenant.clone(),
            key: self.key.id.clone(),
            kind: self.key.kind,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Authenticated>()
            .cloned()
            .ok_or_else(|| ApiError::internal("Authenticated extractor used on a route without authentication"))
    }
}

/// Marks, for the audit entry, that a service wrote it in its transaction.
#[derive(Debug, Clone)]
pub struct AuditedInTx(Arc<AuditSlot>);

impl AuditedInTx {
    pub fn mark(&self) {
        self.0.mark_recorded();
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuditedInTx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Arc<AuditSlot>>()
            .cloned()
            .map(AuditedInTx)
            .ok_or_else(|| ApiError::internal("audit slot missing"))
    }
}

pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(mut meta) = req.extensions().get::<RequestMeta>().cloned() else {
        return ApiError::internal("request context missing").into_response();
    };
    meta.route = describe_route(req.method(), req.extensions().get::<MatchedPath>());
    let slot = req.extensions().get::<Arc<AuditSlot>>().cloned();
    if let Some(slot) = &slot {
        slot.set_route(&meta.route);
    }
    let class = rate_limit::class_of(req.method(), req.extensions().get::<MatchedPath>());
    let token = bearer_token(&req);
    let presented = if req.headers().contains_key(header::AUTHORIZATION) {
        Credential::Header(token.as_deref())
    } else {
        Credential::Missing
    };
    match state.auth.authenticate(presented, &meta).await {
        Ok(caller) => {
            if let Some(slot) = &slot {
                slot.attribute(&caller.key.merchant_id, caller.key.mode, &caller.key.id);
            }
            let authenticated = Authenticated {
                tenant: Tenant::new(caller.key.merchant_id.clone(), caller.key.mode),
                key: Arc::new(caller.key),
                merchant: Arc::new(caller.merchant),
                meta,
            };
            // The key's rate-limit buckets, before the access check (a
            // request the key may not make still counts), and who may call
            // this route, decided before the idempotency layer (a refusal is
            // never stored, a throttled request reserves no key); no layers
            // of their own, which would cost every request a boxed future
            // and a clone of the router.
            let budget = match rate_limit::admit_key(
                &state,
                class,
                &authenticated,
                slot.as_deref(),
                &authenticated.meta.route,
            )
            .await
            {
                Ok(budget) => budget,
                Err(throttled) => return throttled,
            };
            // The anomaly detectors look at every authenticated request; a
            // policy may throttle (the key, its merchant or its address) or
            // freeze from this very request on.
            let verdict = state
                .anomalies
                .observe_request(&authenticated.key, authenticated.client_ip())
                .await;
            let refused = match verdict {
                Verdict::Proceed => None,
                Verdict::Throttled(left) => {
                    let route = authenticated.meta.route.clone();
                    let (actor, client) = (authenticated.actor(), authenticated.client_ip());
                    return rate_limit::refuse_throttled(&state, slot.as_deref(), &route, &actor, client, class, left)
                        .await;
                }
                Verdict::KeyFrozen => Some(AuthRejection::KeyFrozen),
                Verdict::MerchantFrozen => Some(AuthRejection::MerchantFrozen),
            };
            if let Some(rejection) = refused {
                return ApiError::from(rejection).into_response();
            }
            if let Err(refusal) =
                access::authorize(&authenticated.key, req.method(), req.extensions().get::<MatchedPath>())
            {
                let mut response = refusal.into_response();
                rate_limit::add_headers(&mut response, budget);
                return response;
            }
            let tokenizer =
                (class == RouteClass::Tokenize).then(|| (Arc::clone(&authenticated.key), authenticated.client_ip()));
            req.extensions_mut().insert(authenticated);
            let mut response = next.run(req).await;
            rate_limit::add_headers(&mut response, budget);
            // Cards actually tokenized feed the tokenization-burst detector.
            if let (Some((key, client)), true) = (tokenizer, response.status().is_success()) {
                state.anomalies.observe_tokenization(&key, client).await;
            }
            response
        }
        Err(rejection) => {
            state.metrics.auth_failure(match &rejection {
                AuthRejection::Unauthenticated => "missing_or_invalid_key",
                AuthRejection::LockedOut { .. } => "locked_out",
                AuthRejection::MerchantFrozen => "merchant_frozen",
                AuthRejection::KeyFrozen => "key_frozen",
                AuthRejection::Unavailable(_) => "unavailable",
            });
            // The authenticator audited the failure (in its transaction, or via the writer).
            if let (Some(slot), false) = (&slot, matches!(rejection, AuthRejection::Unavailable(_))) {
                slot.mark_recorded();
            }
            // An address an anomaly policy throttled (the failure that made
            // its burst an anomaly included) is answered as throttled; a
            // lockout keeps its own answer.
            if matches!(rejection, AuthRejection::Unauthenticated) {
                if let Some(left) = state.anomalies.throttled_address(meta.client_ip) {
                    let (route, client) = (meta.route.clone(), meta.client_ip);
                    let actor = Actor::Anonymous { meta };
                    return rate_limit::refuse_throttled(&state, None, &route, &actor, client, class, left).await;
                }
            }
            ApiError::from(rejection).into_response()
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header, if well-formed.
fn bearer_token(req: &Request) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}
