//! `GET /v1/merchant`: the calling key's merchant and the key's own metadata.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use crate::domain::api_key::Mode;
use crate::domain::merchant::{ElementOrigin, MerchantName, MAX_ELEMENT_ORIGINS};
use crate::services::merchants;

use super::super::auth::{AuditedInTx, Authenticated};
use super::super::error::{ApiError, ErrorEnvelope};
use super::super::extract::AppJson;
use super::super::views::MerchantView;
use super::super::AppState;

#[utoipa::path(get, path = "/v1/merchant", operation_id = "get_merchant", tag = "merchant",
    responses(
        (status = 200, description = "The calling key's merchant, and the key itself.", body = MerchantView),
        (status = 403, description = "A publishable key was used (`publishable_key_not_allowed`).", body = ErrorEnvelope),
    ),
    security(("bearer" = [])))]
pub async fn show(auth: Authenticated) -> Result<Json<MerchantView>, ApiError> {
    // The merchant was read together with the key: no second query.
    Ok(Json(MerchantView::new(auth.merchant_record(), auth.key())))
}

/// The fields a merchant may change about itself: at least one, not `null`
/// (`null` counts as not given; see `openapi::AT_LEAST_ONE_FIELD`). Anything
/// else (id, created, livemode, …) is an unknown field and rejected.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMerchant {
    /// 1 to 200 characters once leading and trailing whitespace is trimmed,
    /// without control, bidirectional-override or zero-width characters.
    #[schema(
        min_length = 1,
        pattern = r"^[\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200F\u2028-\u202F\u205F\u2066-\u2069\u3000\uFEFF](?:[^\u0000-\u001F\u007F-\u009F\u200B-\u200F\u202A-\u202E\u2066-\u2069\uFEFF]{0,198}[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200F\u2028-\u202F\u205F\u2066-\u2069\u3000\uFEFF])?[\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    pub name: Option<String>,
    /// Origins (`https://host[:port]`; `http` only for localhost) allowed to
    /// embed the hosted card fields page; replaces the current list (at most 10).
    #[schema(schema_with = element_origins)]
    pub element_origins: Option<Vec<String>>,
}

/// `ElementOrigin::parse`: surrounding whitespace trimmed, case-insensitive,
/// `https://` with a hostname, or `http://` with a loopback host; port 1–65535.
fn element_origins() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let origin = ObjectBuilder::new().schema_type(Type::String).pattern(Some(
        r"^[\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[Hh][Tt][Tt][Pp][Ss]://(?:[0-9A-Za-z](?:[-.0-9A-Za-z]{0,251}[0-9A-Za-z])?|\[::1\])|[Hh][Tt][Tt][Pp]://(?:[Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt]|127\.0\.0\.1|\[::1\]))(?::0*(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?[\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
    ));
    ArrayBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Array,
            Type::Null,
        ]))
        .items(origin)
        .max_items(Some(MAX_ELEMENT_ORIGINS))
        .description(Some(
            "Origins (`https://host[:port]`; `http` only for localhost) allowed to embed the hosted card fields \
             page; replaces the current list.",
        ))
        .build()
}

#[utoipa::path(post, path = "/v1/merchant", operation_id = "update_merchant", tag = "merchant", request_body = UpdateMerchant,
    responses(
        (status = 200, description = "The merchant, updated.", body = MerchantView),
        (status = 400, description = "The body is not valid JSON, has neither `name` nor `element_origins`, has an unknown field, or a value is invalid (`invalid_json`, `parameter_missing`, `parameter_unknown`, `parameter_invalid`).", body = ErrorEnvelope),
        (status = 403, description = "Not a secret key (`secret_key_required`), or a test key of a merchant that has live keys (`live_secret_key_required`).", body = ErrorEnvelope),
        (status = 413, description = "The body exceeds the configured limit (`body_too_large`).", body = ErrorEnvelope),
        (status = 415, description = "The body is not `application/json` (`unsupported_content_type`).", body = ErrorEnvelope),
    ),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    AppJson(body): AppJson<UpdateMerchant>,
) -> Result<Json<MerchantView>, ApiError> {
    // Name and element origins are the merchant's, not one mode's: once the
    // merchant has live keys, a test key (handed to developers and CI) may no
    // longer change what live customers see.
    if auth.key().mode != Mode::Live && merchants::has_live_keys(&state.store, auth.merchant()).await? {
        return Err(ApiError::forbidden(
            "live_secret_key_required",
            "This merchant has live keys: its settings can only be changed with a live secret key",
        ));
    }
    let name = body
        .name
        .as_deref()
        .map(MerchantName::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("name", "parameter_invalid", e.to_string()))?;
    let element_origins = body.element_origins.as_deref().map(parse_origins).transpose()?;
    if name.is_none() && element_origins.is_none() {
        return Err(ApiError::invalid(
            "name",
            "parameter_missing",
            "Pass `name` or `element_origins` to change",
        ));
    }
    let changes = merchants::MerchantChanges { name, element_origins };
    let merchant = merchants::update(&state.store, &auth.actor(), auth.merchant(), changes).await?;
    audited.mark();
    Ok(Json(MerchantView::new(&merchant, auth.key())))
}

fn parse_origins(raw: &[String]) -> Result<Vec<ElementOrigin>, ApiError> {
    if raw.len() > MAX_ELEMENT_ORIGINS {
        return Err(ApiError::invalid(
            "element_origins",
            "parameter_invalid",
            format!("At most {MAX_ELEMENT_ORIGINS} origins"),
        ));
    }
    let mut origins = Vec::with_capacity(raw.len());
    for (i, o) in raw.iter().enumerate() {
        let origin = ElementOrigin::parse(o)
            .map_err(|e| ApiError::invalid(format!("element_origins[{i}]"), "parameter_invalid", e.to_string()))?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}
