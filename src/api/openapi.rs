//! The OpenAPI 3.1 document, generated from the handlers' annotations and the
//! response types, so it cannot drift from the code. Served at `/openapi.json`.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, ErrorEnvelope, ErrorType};
use super::routes::{api_keys, health, merchant};

#[derive(OpenApi)]
#[openapi(
    info(title = "paywarden", description = "Security-first payment gateway API. Amounts are integers in minor units; errors share one format."),
    paths(health::healthz, merchant::show, merchant::update, api_keys::list, api_keys::show, api_keys::revoke),
    components(schemas(ErrorEnvelope, ErrorBody, ErrorType)),
    modifiers(&BearerAuth),
    tags((name = "merchant"), (name = "api_keys"), (name = "health"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("API key")
                    .build(),
            ),
        );
    }
}

/// The document, rendered once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".to_owned()))
}

pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}
