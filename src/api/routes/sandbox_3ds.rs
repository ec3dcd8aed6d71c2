//! The sandbox's 3-D Secure challenge page, `GET/POST /sandbox/3ds/{id}`: what
//! a customer's browser is sent to when a payment needs authentication. It
//! shows the amount and two buttons (approve, fail); the answer resumes or
//! fails the payment, and the browser goes back to the merchant's
//! `return_url` with `?payment=pay_…`.
//!
//! The page is not behind an API key: the unguessable challenge secret in its
//! URL is the credential. It runs no script, posts only to itself, and cannot
//! be framed.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

use crate::domain::ids::PaymentId;
use crate::domain::money::Currency;
use crate::services::actor::{Actor, RequestMeta};
use crate::services::ServiceError;

use super::super::error::ApiError;
use super::super::extract::{AppQuery, PathId};
use super::super::AppState;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; \
                   frame-ancestors 'none'";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeQuery {
    pub challenge: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeAnswer {
    challenge: String,
    decision: Decision,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Decision {
    Approve,
    Fail,
}

fn no_such_challenge() -> ApiError {
    ApiError::not_found("challenge", "challenge")
}

fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
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

pub async fn page(
    State(state): State<AppState>,
    PathId(id): PathId,
    AppQuery(query): AppQuery<ChallengeQuery>,
) -> Result<Response, ApiError> {
    let id = PaymentId::parse(&id).map_err(|_| no_such_challenge())?;
    // The secret is echoed into the page: only the alphabet it is made of.
    if !query.challenge.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(no_such_challenge());
    }
    let money = match state.payments.challenge_page(&id, &query.challenge).await {
        Ok(money) => money,
        Err(ServiceError::Store(e)) => return Err(ApiError::internal(e.to_string())),
        Err(_) => return Err(no_such_challenge()),
    };
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authenticate your payment</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
         <body style=\"font-family: sans-serif; max-width: 28rem; margin: 3rem auto\">\
         <h1>Sandbox 3-D Secure</h1><p>Authenticate a payment of <strong>{amount}</strong>.</p>\
         <p>This is a test page: no bank is involved.</p>\
         <form method=\"post\" action=\"/sandbox/3ds/{id}\">\
         <input type=\"hidden\" name=\"challenge\" value=\"{challenge}\">\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Complete authentication</button> \
         <button type=\"submit\" name=\"decision\" value=\"fail\">Fail authentication</button>\
         </form></body></html>\n",
        amount = display_amount(money.amount.get(), money.currency.code()),
        id = id.as_str(),
        challenge = query.challenge,
    );
    Ok(html(StatusCode::OK, body))
}

pub async fn answer(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    PathId(id): PathId,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = PaymentId::parse(&id).map_err(|_| no_such_challenge())?;
    let answer: ChallengeAnswer = serde_urlencoded::from_bytes(&body).map_err(|_| {
        ApiError::invalid(
            "decision",
            "parameter_invalid",
            "Answer with decision=approve or decision=fail",
        )
    })?;
    let actor = Actor::Anonymous { meta };
    let approved = matches!(answer.decision, Decision::Approve);
    let result = state
        .payments
        .complete_challenge(&actor, &id, &answer.challenge, approved)
        .await?;
    let payment = result.payment;
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
