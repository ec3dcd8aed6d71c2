//! The sandbox ACS (the issuer's access control server, simulated), its
//! challenge page `GET/POST /sandbox/3ds/{id}`: what a customer's browser is
//! sent to when a payment needs a 3-D Secure challenge. It shows the amount
//! and asks for a one-time code (shown on the page in test mode: no bank is
//! involved), with a button to fail authentication and one to abandon it.
//! A correct code resumes the payment; a wrong one shows the page again
//! with the attempts left (the last wrong one fails the payment); the
//! browser then goes back to the merchant's `return_url` with
//! `?payment=pay_…`.
//!
//! The page is not behind an API key: the unguessable challenge secret in its
//! URL is the credential. It runs no script (CSP `default-src 'none'`),
//! posts only to itself, and cannot be framed (`frame-ancestors 'none'`,
//! `X-Frame-Options: DENY`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

use crate::domain::ids::PaymentId;
use crate::domain::money::Currency;
use crate::services::actor::{Actor, RequestMeta};
use crate::services::payments::{ChallengeAnswer, ChallengePage};
use crate::services::ServiceError;

use super::super::error::ApiError;
use super::super::extract::{AppQuery, PathId};
use super::super::AppState;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// The page's policy: [`CSP`], its form also allowed to end at the merchant's
/// `return_url` origin (browsers apply `form-action` to the redirect that
/// answers the form).
fn csp_returning_to(origin: Option<&str>) -> HeaderValue {
    origin
        .and_then(|origin| {
            HeaderValue::from_str(&format!(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {origin}; base-uri 'none'; \
                 frame-ancestors 'none'"
            ))
            .ok()
        })
        .unwrap_or_else(|| HeaderValue::from_static(CSP))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeQuery {
    pub challenge: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeForm {
    challenge: String,
    decision: Decision,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Decision {
    /// Submit the one-time code.
    Submit,
    Fail,
    Abandon,
}

fn no_such_challenge() -> ApiError {
    ApiError::not_found("challenge", "challenge")
}

fn html(status: StatusCode, body: String) -> Response {
    html_with(status, body, HeaderValue::from_static(CSP))
}

fn html_with(status: StatusCode, body: String, csp: HeaderValue) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Minor units shown with the currency's decimals (`12.34 USD`, `500 JPY`).
fn display_amount(amount: i64, currency: &str) -> String {
    let exponent = Currency::parse(currency).map_or(2, |c| u32::from(c.exponent()));
    let code = currency.to_ascii_uppercase();
    if exponent == 0 {
        return format!("{amount} {code}");
    }
    let scale = 10i64.pow(exponent);
    let width = usize::try_from(exponent).unwrap_or(2);
    format!("{}.{:0width$} {code}", amount / scale, amount % scale)
}

/// The secret is echoed into the page: only the alphabet it is made of.
fn plausible_secret(secret: &str) -> bool {
    !secret.is_empty() && secret.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The challenge page (the code, amount and counts are digits and
/// currency letters only: nothing here needs escaping).
fn challenge_html(id: &PaymentId, secret: &str, page: &ChallengePage, wrong: bool) -> String {
    let code = match &page.code {
        Some(code) => format!("<p>Test mode: your one-time code is <strong id=\"otp\">{code}</strong>.</p>"),
        None => "<p>Enter the one-time code your bank sent you.</p>".to_owned(),
    };
    let wrong = if wrong {
        format!(
            "<p id=\"wrong\" role=\"alert\">That code is not right. {} attempts left.</p>",
            page.attempts_left
        )
    } else {
        String::new()
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authenticate your payment</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
         <body style=\"font-family: sans-serif; max-width: 28rem; margin: 3rem auto\">\
         <h1>Sandbox 3-D Secure</h1><p>Authenticate a payment of <strong>{amount}</strong>.</p>\
         <p>This is the sandbox's simulated bank page: no bank is involved.</p>{code}{wrong}\
         <form method=\"post\" action=\"/sandbox/3ds/{id}\">\
         <input type=\"hidden\" name=\"challenge\" value=\"{secret}\">\
         <label for=\"code\">One-time code</label> \
         <input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"6\"> \
         <button type=\"submit\" name=\"decision\" value=\"submit\" id=\"submit\">Submit</button>\
         <p><button type=\"submit\" name=\"decision\" value=\"fail\" id=\"fail\">Fail authentication</button> \
         <button type=\"submit\" name=\"decision\" value=\"abandon\" id=\"abandon\">Cancel and return to the shop</button></p>\
         </form></body></html>\n",
        amount = display_amount(page.money.amount.get(), page.money.currency.code()),
        id = id.as_str(),
    )
}

pub async fn page(
    State(state): State<AppState>,
    PathId(id): PathId,
    AppQuery(query): AppQuery<ChallengeQuery>,
) -> Result<Response, ApiError> {
    let id = PaymentId::parse(&id).map_err(|_| no_such_challenge())?;
    if !plausible_secret(&query.challenge) {
        return Err(no_such_challenge());
    }
    let page = match state.payments.challenge_page(&id, &query.challenge).await {
        Ok(page) => page,
        Err(ServiceError::Store(e)) => return Err(ApiError::internal(e.to_string())),
        Err(_) => return Err(no_such_challenge()),
    };
    Ok(html_with(
        StatusCode::OK,
        challenge_html(&id, &query.challenge, &page, false),
        csp_returning_to(page.return_origin.as_deref()),
    ))
}

pub async fn answer(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    PathId(id): PathId,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = PaymentId::parse(&id).map_err(|_| no_such_challenge())?;
    let form: ChallengeForm = serde_urlencoded::from_bytes(&body).map_err(|_| {
        ApiError::invalid(
            "decision",
            "parameter_invalid",
            "Answer with decision=submit (and the code), decision=fail or decision=abandon",
        )
    })?;
    if !plausible_secret(&form.challenge) {
        return Err(no_such_challenge());
    }
    let answer = match (form.decision, form.code) {
        (Decision::Submit, Some(code)) if !code.is_empty() && code.len() <= 16 => ChallengeAnswer::Code(code),
        (Decision::Submit, _) => {
            return Err(ApiError::invalid(
                "code",
                "parameter_missing",
                "Enter the one-time code to submit it",
            ))
        }
        (Decision::Fail, _) => ChallengeAnswer::Fail,
        (Decision::Abandon, _) => ChallengeAnswer::Abandon,
    };
    let actor = Actor::Anonymous { meta };
    let result = state
        .payments
        .complete_challenge(&actor, &id, &form.challenge, answer)
        .await?;
    if let Some(page) = &result.retry {
        return Ok(html_with(
            StatusCode::OK,
            challenge_html(&id, &form.challenge, page, true),
            csp_returning_to(page.return_origin.as_deref()),
        ));
    }
    let payment = result.payment;
    super::payments::count_outcome(&state, &payment, false).await;
    match result.return_url.and_then(|u| url::Url::parse(&u).ok()) {
        Some(mut url) => {
            url.query_pairs_mut().append_pair("payment", payment.id.as_str());
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(url.as_str()) {
                response.headers_mut().insert(header::LOCATION, v);
            }
            Ok(response)
        }
        None => Ok(html(
            StatusCode::OK,
            format!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authentication finished</title>\
                 </head><body><p>Authentication finished: the payment is now <strong>{}</strong>. You may close this page.</p>\
                 </body></html>\n",
                payment.status()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::display_amount;

    #[test]
    fn amounts_show_the_currency_decimals() {
        assert_eq!(display_amount(1234, "usd"), "12.34 USD");
        assert_eq!(display_amount(5, "eur"), "0.05 EUR");
        assert_eq!(display_amount(500, "jpy"), "500 JPY");
        assert_eq!(display_amount(1500, "kwd"), "1.500 KWD");
    }
}
