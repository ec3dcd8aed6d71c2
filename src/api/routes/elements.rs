//! The hosted card fields page (`GET /elements/card?key=pk_…&origin=…`) and
//! its script and style. A merchant embeds the page in an iframe; the card goes
//! from the page straight to the gateway, so merchant pages never touch card
//! data. The page may only be framed by the one registered origin it was
//! opened for (CSP `frame-ancestors`), loads nothing but its own script and
//! style, and only accepts publishable keys.

use axum::extract::{MatchedPath, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

use crate::domain::api_key::{ApiKeySecret, KeyKind};
use crate::domain::merchant::ElementOrigin;
use crate::services::actor::RequestMeta;
use crate::services::auth::Credential;

use super::super::context::{describe_route, AllowFraming};
use super::super::error::ApiError;
use super::super::extract::AppQuery;
use super::super::AppState;

const PAGE: &str = include_str!("../elements/card.html");
const SCRIPT: &str = include_str!("../elements/card.js");
const STYLE: &str = include_str!("../elements/card.css");

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ElementQuery {
    /// The merchant's publishable key (`pk_test_…` / `pk_live_…`).
    pub key: String,
    /// The origin of the page that embeds the iframe; must be registered.
    pub origin: String,
}

pub async fn card_page(
    State(state): State<AppState>,
    Extension(mut meta): Extension<RequestMeta>,
    matched: Option<MatchedPath>,
    AppQuery(query): AppQuery<ElementQuery>,
) -> Result<Response, ApiError> {
    meta.route = describe_route(&axum::http::Method::GET, matched.as_ref());
    // A secret key in a URL is a leak waiting to happen: refuse it before any lookup.
    if ApiKeySecret::parse(&query.key).is_ok_and(|k| k.kind() != KeyKind::Publishable) {
        return Err(ApiError::invalid(
            "key",
            "publishable_key_required",
            "The card fields page takes a publishable key; never put a secret key in a web page",
        ));
    }
    let origin = ElementOrigin::parse(&query.origin)
        .map_err(|e| ApiError::invalid("origin", "parameter_invalid", e.to_string()))?;
    let caller = state
        .auth
        .authenticate(Credential::Given(&query.key), &meta)
        .await
        .map_err(ApiError::from)?;
    if !caller.merchant.element_origins.contains(&origin) {
        return Err(ApiError::forbidden(
            "origin_not_registered",
            "This origin is not registered for the card fields page; add it to the merchant's element_origins",
        ));
    }
    // The page works in its key's own mode: its tokens are that mode's, and
    // a test page says so to whoever fills it in.
    let html = PAGE
        .replace("{{MODE}}", caller.key.mode.as_str())
        .replace("{{KEY}}", &escape(&query.key))
        .replace("{{ORIGIN}}", &escape(origin.as_str()));
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'none'; \
         form-action 'none'; base-uri 'none'; frame-ancestors {}",
        origin.as_str()
    );
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    response.extensions_mut().insert(AllowFraming);
    Ok(response)
}

pub async fn card_script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

pub async fn card_style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// HTML attribute escaping (the values are already validated shapes).
fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}
