//! `GET /v1/merchant`: the calling key's merchant and the key's own metadata.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::domain::api_key::Mode;
use crate::services::merchants;

use super::super::auth::Authenticated;
use super::super::error::{ApiError, ErrorEnvelope};
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
    Ok(Json(MerchantView {
        object: "merchant",
        id: merchant.id.to_string(),
        name: merchant.name.as_str().to_owned(),
        livemode: auth.key().mode == Mode::Live,
        created: merchant.created_at.as_secs(),
        key: ApiKeyView::from(auth.key()),
    }))
}
