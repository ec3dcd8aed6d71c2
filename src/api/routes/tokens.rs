//! `/v1/tokens`: tokenize a card, show its masked view, shred it, and (with
//! the explicit `tokens:reveal` permission only) reveal it.
//!
//! The card number and CVC are deserialised straight into secret types; they
//! are parsed into domain types here and never echoed in an error.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::card::{CardError, CardNumber, CardholderName, Cvc, ExpiryDate};
use crate::domain::ids::TokenId;
use crate::domain::permission::Permission;
use crate::domain::time::Timestamp;
use crate::services::tokens::{self, CardInput, Token};

use super::super::auth::{AuditedInTx, Authenticated};
use super::super::error::{ApiError, ErrorEnvelope};
use super::super::extract::{AppJson, PathId};
use super::super::views::{DeletedToken, RevealedCardView, TokenView};
use super::super::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub card: CardParams,
}

/// Card details. `number` and `cvc` are held in zeroizing memory from the moment
/// they are read.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardParams {
    /// Digits, optionally with spaces or dashes.
    #[schema(value_type = String, example = "4242424242424242")]
    pub number: SecretString,
    #[schema(minimum = 1, maximum = 12)]
    pub exp_month: i64,
    /// Four digits (two are accepted).
    pub exp_year: i64,
    /// 3 digits (4 for American Express).
    #[schema(value_type = Option<String>)]
    pub cvc: Option<SecretString>,
    /// Cardholder name, up to 200 characters.
    pub name: Option<String>,
}

/// The token as `auth` may see it: the fingerprint only for a key that may
/// read tokens.
fn view_for(t: &Token, auth: &Authenticated) -> TokenView {
    TokenView::new(t, auth.key().grants(Permission::TokensRead))
}

fn card_error(e: CardError) -> ApiError {
    let message = match e.code() {
        "incorrect_number" => "The card number is not a valid card number",
        "invalid_expiry_month" => "The card's expiration month is invalid or in the past",
        "invalid_expiry_year" => "The card's expiration year is invalid or in the past",
        "invalid_cvc" => "The card's security code is invalid",
        _ => "The card details are invalid",
    };
    ApiError::invalid(format!("card[{}]", e.param()), e.code(), message)
}

fn parse_card(params: CardParams) -> Result<CardInput, ApiError> {
    let number = CardNumber::parse(params.number.expose_secret()).map_err(card_error)?;
    let expiry = ExpiryDate::parse(params.exp_month, params.exp_year, Timestamp::now()).map_err(card_error)?;
    let cvc = params
        .cvc
        .as_ref()
        .map(|c| Cvc::parse(c.expose_secret(), number.brand()))
        .transpose()
        .map_err(card_error)?;
    let name = params
        .name
        .as_deref()
        .map(CardholderName::parse)
        .transpose()
        .map_err(card_error)?;
    Ok(CardInput {
        number,
        expiry,
        cvc,
        name,
    })
}

fn token_id(raw: &str) -> Result<TokenId, ApiError> {
    TokenId::parse(raw).map_err(|_| ApiError::not_found("token", "id"))
}

#[utoipa::path(post, path = "/v1/tokens", operation_id = "create_token", tag = "tokens", request_body = CreateToken,
    responses((status = 200, body = TokenView, links(("get_token" = (operation_id = "get_token", parameters(("id" = "$response.body#/id")))), ("delete_token" = (operation_id = "delete_token", parameters(("id" = "$response.body#/id")))))),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope),
        (status = 429, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    AppJson(body): AppJson<CreateToken>,
) -> Result<Json<TokenView>, ApiError> {
    let card = parse_card(body.card)?;
    let token = tokens::tokenize(&state.store, &state.vault, &auth.actor(), auth.tenant(), card).await?;
    audited.mark();
    Ok(Json(view_for(&token, &auth)))
}

#[utoipa::path(get, path = "/v1/tokens/{id}", operation_id = "get_token", tag = "tokens", params(("id" = String, Path)),
    responses((status = 200, body = TokenView), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    auth: Authenticated,
    PathId(id): PathId,
) -> Result<Json<TokenView>, ApiError> {
    let token = tokens::get(&state.store, auth.tenant(), &token_id(&id)?).await?;
    Ok(Json(view_for(&token, &auth)))
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", operation_id = "delete_token", tag = "tokens", params(("id" = String, Path)),
    responses((status = 200, body = DeletedToken), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    PathId(id): PathId,
) -> Result<Json<DeletedToken>, ApiError> {
    let id = token_id(&id)?;
    tokens::shred(&state.store, &state.vault, &auth.actor(), auth.tenant(), &id).await?;
    audited.mark();
    Ok(Json(DeletedToken::new(id.to_string())))
}

/// Reveals a token's full card number.
///
/// Only for a restricted key listing `tokens:reveal`; audited (`token.revealed`) before the number is
/// returned; at most 10 reveals per key per minute. Not idempotent: every reveal runs, counts against the
/// limit and is audited, and its answer is never stored for replay, so a request carrying an
/// `Idempotency-Key` header is refused with 400 `idempotency_not_supported` (nothing is stored and nothing
/// is revealed); send it without the header.
#[utoipa::path(post, path = "/v1/tokens/{id}/reveal", operation_id = "reveal_token", tag = "tokens", params(("id" = String, Path)),
    responses((status = 200, body = RevealedCardView),
        (status = 400, body = ErrorEnvelope,
            description = "An `Idempotency-Key` header was sent: a reveal is not idempotent and must be sent without it (`idempotency_not_supported`)."),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn reveal(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<RevealedCardView>), ApiError> {
    let id = token_id(&id)?;
    let card = tokens::reveal(
        &state.store,
        &state.vault,
        &auth.actor(),
        auth.tenant(),
        &auth.key().id,
        &id,
    )
    .await?;
    audited.mark();
    Ok((StatusCode::OK, Json(RevealedCardView::new(id.to_string(), &card))))
}
