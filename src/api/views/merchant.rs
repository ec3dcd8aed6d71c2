//! The calling key's merchant as `GET /v1/merchant` shows it, with the key
//! itself.

use serde::Serialize;
use utoipa::openapi::schema::Object;

use crate::api::schema;
use crate::domain::api_key::{ApiKey, Mode};
use crate::domain::ids::MerchantId;
use crate::domain::merchant::Merchant;

use super::ApiKeyView;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MerchantView {
    #[schema(schema_with = merchant_object)]
    pub object: &'static str,
    #[schema(schema_with = merchant_id)]
    pub id: String,
    pub name: String,
    /// Whether the calling key is a live key.
    pub livemode: bool,
    pub created: i64,
    /// Origins allowed to embed the hosted card fields page.
    pub element_origins: Vec<String>,
    /// The key that made this request.
    pub key: ApiKeyView,
}

fn merchant_object() -> Object {
    schema::literal("merchant")
}

fn merchant_id() -> Object {
    schema::id_schema(MerchantId::PREFIX).build()
}

impl MerchantView {
    /// `merchant` as the caller holding `key` sees it.
    pub fn new(merchant: &Merchant, key: &ApiKey) -> Self {
        MerchantView {
            object: "merchant",
            id: merchant.id.to_string(),
            name: merchant.name.as_str().to_owned(),
            livemode: key.mode == Mode::Live,
            created: merchant.created_at.as_secs(),
            element_origins: merchant.element_origins.iter().map(|o| o.as_str().to_owned()).collect(),
            key: ApiKeyView::from(key),
        }
    }
}
