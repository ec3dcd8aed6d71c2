//! The `Idempotency-Key` middleware of `/v1` POST routes, inside
//! authentication (a key is scoped to the authenticated merchant), and the
//! `IdempotencyKey` extractor for handlers that keep it as a recovery point.
//!
//! A POST with the header: the key is validated (1–255 printable ASCII
//! characters, else 400 naming `Idempotency-Key`), the body is buffered and
//! MACed (never stored), and `services::idempotency` decides: run the handler,
//! replay the stored answer (same status, body and content type, plus
//! `Idempotent-Replayed: true`), or refuse (409 still running, 422 key reused).
//! A handler's answer below 500 is stored (4xx too: the same request would
//! get the same refusal), except 429 and any answer carrying `Retry-After`
//! (a payment held by another request), which say "try again later", and the
//! refusals of authorization (401, 403: the key's permissions and limits),
//! which are never stored; these and 5xx release the key so that a retry
//! runs again. Authorization by route (`access`) runs before this layer,
//! so its refusals never reach it. Once claimed, the handler
//! runs to the end in its own task even if the client goes away, so its answer
//! is stored rather than left for the lock to expire.
//!
//! Routes listed in [`NOT_IDEMPOTENT`] (by route template, as `MatchedPath`
//! names them) opt out: a request to one of them that carries the header is
//! refused with 400 `idempotency_not_supported` before anything is stored or
//! the handler runs; without the header it runs as usual.

use std::panic::AssertUnwindSafe;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;

use crate::domain::idempotency_key::IdempotencyKey;
use crate::services::actor::RequestMeta;
use crate::services::idempotency::{Begun, Claim, StoredResponse};

use super::auth::Authenticated;
use super::error::{ApiError, ErrorSummary};
use super::extract::BodyLimit;
use super::request_id::with_request_id;
use super::AppState;

/// The request header naming the key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// The response header that marks a replayed answer.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Largest answer buffered for storage; ours are a few KiB at most.
const MAX_STORED_RESPONSE: usize = 4 * 1024 * 1024;

/// A POST route that does not take part in idempotency.
#[derive(Debug)]
pub struct NotIdempotent {
    /// The route template, as `MatchedPath` and the OpenAPI document name it.
    pub route: &'static str,
    /// What the route does, for the refusal's message.
    pub action: &'static str,
}

/// The POST routes that refuse `Idempotency-Key`.
///
/// A card reveal answers with the full number: a stored answer would keep a
/// second (sealed) copy of it outside the vault for a day, and a replay would
/// hand it out again past the reveal rate limit and without a
/// `token.revealed` audit entry. Each reveal must run, and be counted and
/// audited, on its own.
pub const NOT_IDEMPOTENT: &[NotIdempotent] = &[NotIdempotent {
    route: "/v1/tokens/{id}/reveal",
    action: "Revealing a card",
}];

/// The opt-out entry of `route` (a route template), if it has one.
pub fn not_idempotent(route: &str) -> Option<&'static NotIdempotent> {
    NOT_IDEMPOTENT.iter().find(|n| n.route == route)
}

pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return next.run(req).await;
    };
    let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    if let Some(opted_out) = route.and_then(not_idempotent) {
        return ApiError::idempotency_not_supported(opted_out.action).into_response();
    }
    if values.next().is_some() {
        return invalid_key("Send one Idempotency-Key header, not several").into_response();
    }
    let Ok(key) = IdempotencyKey::parse(value.as_bytes()) else {
        return invalid_key("Idempotency-Key must be 1 to 255 printable ASCII characters").into_response();
    };
    let (Some(auth), Some(meta)) = (
        req.extensions().get::<Authenticated>().cloned(),
        req.extensions().get::<RequestMeta>().cloned(),
    ) else {
        return ApiError::internal("idempotency middleware outside authentication").into_response();
    };
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().clone(), |o| o.0.clone());
    let path = path
        .path_and_query()
        .map_or_else(|| path.path().to_owned(), ToString::to_string);
    let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
    let (parts, body) = req.into_parts();
    let bytes = match Bytes::from_request(Request::from_parts(parts.clone(), body), &()).await {
        Ok(bytes) => bytes,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::payload_too_large(limit).into_response()
        }
        Err(_) => {
            return ApiError::invalid("body", "invalid_body", "The request body could not be read").into_response()
        }
    };
    let lineage = &auth.key().lineage;
    let mac = state
        .idempotency
        .request_mac(lineage, parts.method.as_str(), &path, &bytes);
    match state
        .idempotency
        .begin(auth.tenant(), lineage, &key, mac, &meta.request_id)
        .await
    {
        Ok(Begun::Proceed(claim)) => {
            let mut req = Request::from_parts(parts, Body::from(bytes));
            req.extensions_mut().insert(key);
            run_to_completion(*claim, next, req, meta.request_id.to_string()).await
        }
        Ok(Begun::Replay(stored)) => replay(stored),
        Ok(Begun::Reused) => ApiError::idempotency_key_reused().into_response(),
        Ok(Begun::InUse) => ApiError::idempotency_key_in_use().into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Runs the handler in its own task (it completes, and its answer is stored,
/// even if the client disconnects), then stores the answer or releases the key.
async fn run_to_completion(claim: Claim, next: Next, req: Request, request_id: String) -> Response {
    let task = tokio::spawn(with_request_id(request_id, async move {
        match AssertUnwindSafe(next.run(req)).catch_unwind().await {
            Ok(response) => record(claim, response).await,
            Err(_) => {
                release(claim).await;
                ApiError::internal("handler panicked").into_response()
            }
        }
    }));
    match task.await {
        Ok(response) => response,
        Err(e) => ApiError::internal(format!("idempotent request task failed: {e}")).into_response(),
    }
}

/// True for an answer that a retry must get again (below 500, except 429,
/// 401 and 403); a server error or a rate limit says "try again", so the
/// retry must run, and a refusal of authorization is never stored (records
/// hold only what a key was allowed to do).
fn is_final(status: StatusCode) -> bool {
    !(status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::UNAUTHORIZED
        || status == StatusCode::FORBIDDEN)
}

/// Stores the handler's final answer, or releases the key.
async fn record(claim: Claim, response: Response) -> Response {
    let status = response.status();
    // An answer that says when to retry (429, 503, a payment held by another
    // request) is not the request's final answer either.
    if !is_final(status) || response.headers().contains_key(header::RETRY_AFTER) {
        release(claim).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_STORED_RESPONSE).await else {
        release(claim).await;
        return ApiError::internal("the response could not be buffered for idempotency").into_response();
    };
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if let Err(e) = claim.finish(status.as_u16(), content_type, &bytes).await {
        // The client still gets the answer; a retry within the lock timeout
        // gets 409, and after it runs again.
        tracing::error!(error = %e, "storing the answer of an idempotent request failed");
    }
    Response::from_parts(parts, Body::from(bytes))
}

async fn release(claim: Claim) {
    if let Err(e) = claim.abandon().await {
        tracing::error!(error = %e, "releasing an idempotency key failed; it frees itself when its lock expires");
    }
}

/// The stored answer, marked as replayed. The `Request-Id` header is this
/// request's own (added by `request_context`).
fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let summary = status.is_client_error().then(|| ErrorSummary {
        code: error_code(&stored.body).unwrap_or_else(|| "idempotent_replay".to_owned()),
        status,
        reason: Some("idempotent replay".to_owned()),
    });
    let mut response = Response::new(Body::from(stored.body.to_vec()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(v) = stored.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    if let Some(summary) = summary {
        // For the audit entry: a replayed refusal is recorded as a refusal.
        response.extensions_mut().insert(summary);
    }
    response
}

/// `error.code` of one of our error bodies (only read for 4xx answers, which
/// never hold card data).
fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(value.get("error")?.get("code")?.as_str()?.to_owned())
}

fn invalid_key(message: &str) -> ApiError {
    ApiError::invalid("Idempotency-Key", "idempotency_key_invalid", message)
}

/// The request's validated `Idempotency-Key`, if it was sent: a handler may
/// keep it with what it creates, to recover after a crash mid-request.
impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<IdempotencyKey>()
            .cloned()
            .ok_or_else(|| ApiError::invalid("Idempotency-Key", "parameter_missing", "Missing Idempotency-Key header"))
    }
}

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for IdempotencyKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<IdempotencyKey>().cloned())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::{is_final, not_idempotent};

    #[test]
    fn answers_below_500_are_final_except_429_and_refusals_of_authorization() {
        for status in [200, 201, 400, 404, 409, 422] {
            assert!(is_final(StatusCode::from_u16(status).unwrap()), "{status}");
        }
        for status in [401, 403, 429, 500, 502, 503] {
            assert!(!is_final(StatusCode::from_u16(status).unwrap()), "{status}");
        }
    }

    #[test]
    fn a_card_reveal_is_not_idempotent() {
        assert!(not_idempotent("/v1/tokens/{id}/reveal").is_some());
        assert!(not_idempotent("/v1/tokens").is_none());
        // A template, not a concrete path.
        assert!(not_idempotent("/v1/tokens/tok_123/reveal").is_none());
    }
}
