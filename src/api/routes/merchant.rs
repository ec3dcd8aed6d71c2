//! `GET /v1/merchant`: the calling key's merchant and the key's own metadata.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::domain::api_key::Mode;
use crate::domain::merchant::{Merchant, MerchantName};
use crate::services::merchants;

use super::super::auth::{AuditedInTx, Authenticated};
use super::super::error::{ApiError, ErrorEnvelope};
use super::super::extract::AppJson;
use super::super::AppState;
use super::api_keys::ApiKeyView;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MerchantView {
    pub object: &'static str,
    pub id: String,
    pub name: String,
    /// Whether the calling key is a live key.
    pub livemode: bool,
    pub created: i64,
    /// The key that made this request.
    pub key: ApiKeyView,
}

#[utoipa::path(get, path = "/v1/merchant", tag = "merchant",
    responses((status = 200, body = MerchantView), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn show(State(state): State<AppState>, auth: Authenticated) -> Result<Json<MerchantView>, ApiError> {
    auth.require_private_key()?;
    let merchant = merchants::get(&state.store, auth.merchant()).await?;
    Ok(Json(view(&merchant, &auth)))
}

/// The fields a merchant may change about itself. Anything else (id,
/// created, livemode, …) is an unknown field and rejected.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMerchant {
    /// 1 to 200 characters, no control characters.
    pub name: String,
}

#[utoipa::path(post, path = "/v1/merchant", tag = "merchant", request_body = UpdateMerchant,
    responses((status = 200, body = MerchantView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    AppJson(body): AppJson<UpdateMerchant>,
) -> Result<Json<MerchantView>, ApiError> {
    auth.require_secret_key()?;
    let name =
        MerchantName::parse(&body.name).map_err(|e| ApiError::invalid("name", "parameter_invalid", e.to_string()))?;
    let merchant = merchants::rename(&state.store, &auth.actor(), auth.merchant(), name).await?;
    audited.mark();
    Ok(Json(view(&merchant, &auth)))
}

fn view(merchant: &Merchant, auth: &Authenticated) -> MerchantView {
    MerchantView {
        object: "merchant",
        id: merchant.id.to_string(),
        name: merchant.name.as_str().to_owned(),
        livemode: auth.key().mode == Mode::Live,
        created: merchant.created_at.as_secs(),
        key: ApiKeyView::from(auth.key()),
    }
}
