//! Rate limits at the edge: every limited request takes its tokens here,
//! and its answer carries what is left of the tightest bucket it took from
//! (`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`, as in the
//! IETF draft `draft-ietf-httpapi-ratelimit-headers`); a refused one is
//! `429 rate_limited` with `Retry-After`, audited once per subject and
//! window by the throttle log instead of once per request.
//!
//! On `/v1`, [`admit_key`] is called by authentication once the key is
//! known and before the route's access check (so requests a key may not
//! even make count too), without a layer of its own; [`limit_anonymous`] is
//! the layer of the public pages and assets. `/healthz` and `/readyz` are
//! never limited.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::services::actor::{Actor, RequestMeta};
use crate::services::rate_limit::{Budget, Caller, RouteClass, Throttled};

use super::auth::Authenticated;
use super::context::{describe_route, AuditSlot};
use super::error::ApiError;
use super::AppState;

static LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The class of an authenticated `/v1` request.
pub fn class_of(method: &Method, route: Option<&MatchedPath>) -> RouteClass {
    match (method, route.map(MatchedPath::as_str)) {
        (&Method::POST, Some("/v1/tokens")) => RouteClass::Tokenize,
        (&Method::GET | &Method::HEAD, _) => RouteClass::Read,
        _ => RouteClass::Write,
    }
}

/// Whole seconds, rounded up (a client waiting that long finds the token).
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The remaining budget of the tightest bucket, if one applied.
pub fn add_headers(response: &mut Response, budget: Option<Budget>) {
    let Some(b) = budget else { return };
    let headers = response.headers_mut();
    for (name, value) in [
        (&LIMIT, u64::from(b.limit)),
        (&REMAINING, u64::from(b.remaining)),
        (&RESET, ceil_secs(b.reset)),
    ] {
        headers.insert(name.clone(), HeaderValue::from(value));
    }
}

/// The refusal: one audit entry per subject and window (the throttle log),
/// none per request.
async fn refuse(
    state: &AppState,
    slot: Option<&AuditSlot>,
    route: &str,
    actor: &Actor,
    client: std::net::IpAddr,
    throttled: Throttled,
) -> Response {
    if let Some(slot) = slot {
        slot.mark_recorded();
    }
    state.throttles.note(actor, client, route, &throttled).await;
    let message = match throttled.class {
        RouteClass::Tokenize => "Too many cards tokenized with this key or from this address; try again later",
        _ => "Too many requests with this key or from this address; try again later",
    };
    let mut response = ApiError::rate_limited_for(throttled.retry_after, message).into_response();
    add_headers(&mut response, Some(throttled.budget));
    response
}

/// A subject an anomaly policy throttled (`services::anomaly`): the same
/// 429, headers and once-per-window audit as an empty bucket, the bucket
/// named `anomaly`.
pub async fn refuse_throttled(
    state: &AppState,
    slot: Option<&AuditSlot>,
    route: &str,
    actor: &Actor,
    client: std::net::IpAddr,
    class: RouteClass,
    retry_after: Duration,
) -> Response {
    let throttled = Throttled {
        retry_after,
        class,
        bucket: "anomaly",
        budget: Budget {
            limit: 0,
            remaining: 0,
            reset: retry_after,
        },
    };
    refuse(state, slot, route, actor, client, throttled).await
}

/// `/v1`: takes from the caller's key, merchant and (publishable keys)
/// address buckets of the route's `class`; `Err` is the 429 to answer.
/// `route` is the matched route (`METHOD /v1/…`) for the audit entry.
pub async fn admit_key(
    state: &AppState,
    class: RouteClass,
    auth: &Authenticated,
    slot: Option<&AuditSlot>,
    route: &str,
) -> Result<Option<Budget>, Response> {
    match state
        .rate_limits
        .admit(class, Caller::Key(auth.key()), auth.client_ip())
        .await
    {
        Ok(budget) => Ok(budget),
        Err(throttled) => Err(refuse(state, slot, route, &auth.actor(), auth.client_ip(), throttled).await),
    }
}

/// The public pages and assets: the client address's bucket.
pub async fn limit_anonymous(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(mut meta) = req.extensions().get::<RequestMeta>().cloned() else {
        return ApiError::internal("request context missing").into_response();
    };
    let client = meta.client_ip;
    match state
        .rate_limits
        .admit(RouteClass::Unauthenticated, Caller::Anonymous, client)
        .await
    {
        Ok(budget) => {
            let mut response = next.run(req).await;
            add_headers(&mut response, budget);
            response
        }
        Err(throttled) => {
            meta.route = describe_route(req.method(), req.extensions().get::<MatchedPath>());
            let slot = req.extensions().get::<Arc<AuditSlot>>().cloned();
            drop(req);
            let route = meta.route.clone();
            refuse(
                &state,
                slot.as_deref(),
                &route,
                &Actor::Anonymous { meta },
                client,
                throttled,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_rounds_up_to_whole_seconds() {
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(6)), 6);
        assert_eq!(ceil_secs(Duration::from_millis(6001)), 7);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
    }
}
