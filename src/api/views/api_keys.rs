//! How an API key looks to merchants (the API) and operators (the CLI's
//! `--json`): never the secret, only its prefix and last four.

use serde::Serialize;
use utoipa::openapi::schema::Object;

use crate::api::schema;
use crate::domain::api_key::{ApiKey, KeyKind, Mode};
use crate::domain::ids::ApiKeyId;
use crate::domain::permission::Permission;
use crate::domain::time::Timestamp;

/// A key as the API shows it: never the secret, only its prefix and last four.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    #[schema(schema_with = api_key_object)]
    pub object: &'static str,
    #[schema(schema_with = api_key_id)]
    pub id: String,
    pub kind: KeyKind,
    pub livemode: bool,
    /// e.g. `sk_test_…a1B2`.
    pub redacted: String,
    pub prefix: String,
    pub last4: String,
    pub permissions: Vec<Permission>,
    pub restrictions: RestrictionsView,
    pub description: Option<String>,
    /// Unix time, seconds.
    pub created: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used: Option<i64>,
    #[schema(schema_with = rotated_to)]
    pub rotated_to: Option<String>,
}

fn api_key_object() -> Object {
    schema::literal("api_key")
}

fn api_key_id() -> Object {
    schema::id_schema(ApiKeyId::PREFIX).build()
}

fn rotated_to() -> Object {
    schema::id_schema(ApiKeyId::PREFIX)
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::Type::String,
            utoipa::openapi::Type::Null,
        ]))
        .description(Some("The key that replaced this one, when it was rotated."))
        .build()
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RestrictionsView {
    pub max_amount: Option<i64>,
    pub currencies: Vec<String>,
    pub allowed_ips: Vec<String>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        ApiKeyView {
            object: "api_key",
            id: k.id.to_string(),
            kind: k.kind,
            livemode: k.mode == Mode::Live,
            redacted: format!("{}…{}", k.prefix, k.last4),
            prefix: k.prefix.clone(),
            last4: k.last4.clone(),
            permissions: k.permissions.clone(),
            restrictions: RestrictionsView {
                max_amount: k.restrictions.max_amount,
                currencies: k.restrictions.currencies.iter().map(|c| c.api_code()).collect(),
                allowed_ips: k.restrictions.allowed_ips.iter().map(ToString::to_string).collect(),
            },
            description: k.description.clone(),
            created: k.created_at.as_secs(),
            expires_at: k.expires_at.map(Timestamp::as_secs),
            revoked_at: k.revoked_at.map(Timestamp::as_secs),
            last_used: k.last_used_at.map(Timestamp::as_secs),
            rotated_to: k.rotated_to.as_ref().map(ToString::to_string),
        }
    }
}
