//! The one place every request passes: it assigns the request id, resolves the
//! client address, adds the security headers, and appends the request's audit
//! entry (unless a service already wrote it inside its own transaction).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::domain::api_key::Mode;
use crate::domain::audit::{AuditEvent, Outcome};
use crate::domain::ids::{ApiKeyId, MerchantId, RequestId};
use crate::services::actor::RequestMeta;
use crate::services::audit_writer::API_REQUEST;

use super::client_address::{client_ip, ForwardedForError};
use super::drain;
use super::error::{ApiError, ErrorSummary};
use super::request_id;
use super::AppState;

/// The TCP peer of the connection, inserted by the server for each connection.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Marks a response that may be framed (the hosted card fields page): its own
/// CSP `frame-ancestors` names the one allowed origin, so `X-Frame-Options:
/// DENY` is not added.
#[derive(Debug, Clone, Copy)]
pub struct AllowFraming;

/// Filled in while a request is handled; read back for its audit entry.
#[derive(Debug, Default)]
pub struct AuditSlot {
    inner: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    /// The matched route template, once routing has happened.
    route: Option<String>,
    merchant: Option<MerchantId>,
    mode: Option<Mode>,
    key: Option<ApiKeyId>,
    /// A service (or the authenticator) already appended this request's entry.
    recorded: bool,
}

impl AuditSlot {
    pub fn attribute(&self, merchant: &MerchantId, mode: Mode, key: &ApiKeyId) {
        if let Ok(mut s) = self.inner.lock() {
            s.merchant = Some(merchant.clone());
            s.mode = Some(mode);
            s.key = Some(key.clone());
        }
    }

    pub fn set_route(&self, route: &str) {
        if let Ok(mut s) = self.inner.lock() {
            s.route = Some(route.to_owned());
        }
    }

    /// A copy of what was learned while handling the request.
    fn snapshot(&self) -> Option<SlotState> {
        let s = self.inner.lock().ok()?;
        Some(SlotState {
            route: s.route.clone(),
            merchant: s.merchant.clone(),
            mode: s.mode,
            key: s.key.clone(),
            recorded: s.recorded,
        })
    }

    pub fn mark_recorded(&self) {
        if let Ok(mut s) = self.inner.lock() {
            s.recorded = true;
        }
    }
}

static SECURITY_HEADERS: [(HeaderName, &str); 6] = [
    (header::STRICT_TRANSPORT_SECURITY, "max-age=63072000; includeSubDomains"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::CACHE_CONTROL, "no-store"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    ),
];

pub async fn request_context(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // What the handler leaves of the body is read once the answer is ready,
    // so that an early refusal reaches the client as an answer (`drain`).
    let (mut req, unread) = drain::track(req);
    let request_id = RequestId::generate()
        .map(|id| id.to_string())
        .unwrap_or_else(|_| "req_unavailable".into());
    let peer = req.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    let resolved = client_ip(peer, req.headers(), &state.trusted_proxies);
    // An unreadable chain is the proxy's request: audited under its address.
    let client_ip = match resolved {
        Ok(ip) => ip,
        Err(ForwardedForError { proxy, .. }) => proxy,
    };
    let route = describe_route(req.method(), None);
    let audited = route_is_audited(req.method(), req.uri().path());
    let meta = RequestMeta {
        request_id: RequestId::from_trusted(request_id.clone()),
        client_ip,
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        route: route.clone(),
    };
    let slot = Arc::new(AuditSlot::default());
    req.extensions_mut().insert(meta.clone());
    req.extensions_mut().insert(Arc::clone(&slot));

    let mut response = match resolved {
        Ok(_) => request_id::scope(request_id.clone(), next.run(req)).await,
        Err(e) => {
            tracing::warn!(request_id = %request_id, error = %e, "refused a request whose X-Forwarded-For chain cannot be read; check the proxy's configuration");
            request_id::sync_scope(request_id.clone(), || forwarded_for_invalid().into_response())
        }
    };

    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(HeaderName::from_static("request-id"), v);
    }
    let framable = response.extensions().get::<AllowFraming>().is_some();
    let headers = response.headers_mut();
    for (name, value) in &SECURITY_HEADERS {
        if framable && name == header::X_FRAME_OPTIONS {
            continue;
        }
        if !headers.contains_key(name) {
            headers.insert(name.clone(), HeaderValue::from_static(value));
        }
    }
    if audited {
        let summary = response.extensions().get::<ErrorSummary>().cloned();
        audit_request(&state, &meta, &slot, response.status(), summary).await;
    }
    drain::finish(unread, state.body_limit).await;
    response
}

/// 400 for a request whose client address cannot be read from its trusted
/// proxy's `X-Forwarded-For` (rather than blaming the proxy's own address).
fn forwarded_for_invalid() -> ApiError {
    ApiError::invalid(
        "X-Forwarded-For",
        "forwarded_for_invalid",
        "The X-Forwarded-For header set by the proxy could not be read, so the client's address cannot be determined",
    )
}

/// Health checks, the OpenAPI document and static page assets are not API
/// requests of a merchant.
fn route_is_audited(method: &Method, path: &str) -> bool {
    !(method == Method::GET
        && matches!(
            path,
            "/healthz" | "/readyz" | "/openapi.json" | "/elements/card.js" | "/elements/card.css"
        ))
}

async fn audit_request(
    state: &AppState,
    meta: &RequestMeta,
    slot: &AuditSlot,
    status: axum::http::StatusCode,
    summary: Option<ErrorSummary>,
) {
    let Some(SlotState {
        route,
        merchant,
        mode,
        key,
        recorded,
    }) = slot.snapshot()
    else {
        return;
    };
    if recorded {
        return;
    }
    let (action, outcome, reason) = match summary {
        None => (API_REQUEST, Outcome::Success, None),
        Some(s) if s.code == "permission_denied" => ("auth.permission_denied", Outcome::Denied, s.reason.clone()),
        Some(s) if s.status.is_client_error() => (API_REQUEST, Outcome::Denied, Some(s.code.clone())),
        Some(s) => (API_REQUEST, Outcome::Failure, Some(s.code.clone())),
    };
    let mut event = AuditEvent::new(action, outcome);
    event.request_id = Some(meta.request_id.to_string());
    event.client_ip = Some(meta.client_ip.to_string());
    event.user_agent = meta.user_agent.as_deref().map(AuditEvent::sanitize_user_agent);
    event.merchant_id = merchant.map(|m| m.to_string());
    event.mode = mode;
    event.key_id = key.map(|k| k.to_string());
    let route = route.unwrap_or_else(|| meta.route.clone());
    event.resource = Some(format!("{route} -> {}", status.as_u16()));
    event.reason = reason;
    state.audit.record(event).await;
}

/// `METHOD /route/{param}`: the matched route template, never raw ids or query.
pub fn describe_route(method: &Method, matched: Option<&MatchedPath>) -> String {
    format!("{method} {}", matched.map_or("(unmatched)", MatchedPath::as_str))
}
