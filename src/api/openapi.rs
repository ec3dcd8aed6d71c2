//! The OpenAPI 3.1 document, generated from the handlers' annotations and the
//! response types, so it cannot drift from the code. Served at `/openapi.json`.
//!
//! Each handler's annotation lists the statuses the handler itself answers
//! (400 for a bad query or body, 403, 404, 409, 413, 415). The statuses that
//! the `/v1` authentication middleware and the error path answer on every
//! authenticated route (401, 429, 500, 503) are added by [`SharedResponses`]
//! to every operation that declares `security`, so a new route cannot forget
//! them. 405 belongs to no operation: it answers a method the document does
//! not list for a path (with `Allow`). Every authenticated POST honours
//! `Idempotency-Key`: [`IdempotencyHeader`] adds the optional header, its
//! 400/409/422 answers and the `Idempotent-Replayed` response header, except
//! to the routes in `idempotency::NOT_IDEMPOTENT` (a card reveal), which refuse
//! the header and document that refusal in their own annotation.
//! `scripts/schema-fuzz.sh` checks the document against a running server.

use std::sync::OnceLock;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ArrayItems, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Header, Ref, RefOr, Required, Response};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, ErrorEnvelope, ErrorType};
use super::field_schemas::ConfirmNeedsPaymentMethod;
use super::idempotency;
use super::pagination::ListResponse;
use super::routes::{
    anomalies, api_keys, connectors, events, fraud, health, merchant, payments, refunds, reviews, tokens,
    webhook_endpoints,
};
use super::views::{
    AnomalyView, ApiKeyView, ConnectorView, EventView, PaymentView, RefundView, WebhookAttemptView, WebhookEndpointView,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "paywarden", description = "Security-first payment gateway API. Amounts are integers in minor units; errors share one format."),
    paths(
        health::healthz, health::readyz, merchant::show, merchant::update, api_keys::list, api_keys::show, api_keys::revoke,
        tokens::create, tokens::show, tokens::delete, tokens::reveal,
        payments::create, payments::show, payments::list, payments::confirm, payments::capture, payments::cancel,
        refunds::create, refunds::show, refunds::list,
        events::list, events::show, anomalies::list,
        webhook_endpoints::create, webhook_endpoints::list, webhook_endpoints::show, webhook_endpoints::update,
        webhook_endpoints::delete, webhook_endpoints::rotate_secret, webhook_endpoints::attempts,
        fraud::show_rules, fraud::save_rules, fraud::dry_run, fraud::activate_rules, fraud::show_list, fraud::replace_list,
        reviews::list, reviews::approve, reviews::reject,
        connectors::create, connectors::list, connectors::show, connectors::update, connectors::disable
    ),
    components(schemas(ErrorEnvelope, ErrorBody, ErrorType, ApiKeyView, ListResponse<ApiKeyView>,
        PaymentView, ListResponse<PaymentView>, RefundView, ListResponse<RefundView>,
        EventView, ListResponse<EventView>, WebhookEndpointView, ListResponse<WebhookEndpointView>,
        WebhookAttemptView, ListResponse<WebhookAttemptView>, ConnectorView, ListResponse<ConnectorView>,
        AnomalyView, ListResponse<AnomalyView>)),
    modifiers(&BearerAuth, &IdempotencyHeader, &SharedResponses, &ListItemRefs, &AtLeastOneField,
        &ConfirmNeedsPaymentMethod),
    tags((name = "merchant"), (name = "api_keys"), (name = "health"), (name = "tokens"), (name = "payments"),
        (name = "refunds"), (name = "events"), (name = "webhook_endpoints"), (name = "fraud"), (name = "connectors"), (name = "anomalies"))
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

/// The responses every authenticated route can give whatever its handler
/// does: (status, name under `#/components/responses`, description).
const SHARED_RESPONSES: [(&str, &str, &str); 4] = [
    (
        "401",
        "Unauthenticated",
        "No valid API key: missing, malformed, unknown, expired or revoked (`authentication_failed`).",
    ),
    (
        "429",
        "RateLimited",
        "Too many requests (`rate_limit_error`): a rate-limit bucket of this key, merchant or client address is empty (`rate_limited`; `RateLimit-Limit`, `RateLimit-Remaining: 0` and `RateLimit-Reset` say which budget), or too many failed authentications from this client address (`too_many_failed_authentications`); retry after `Retry-After` seconds.",
    ),
    (
        "500",
        "InternalError",
        "An internal error (`internal_error`); the detail is logged under the request id, never returned.",
    ),
    (
        "503",
        "Unavailable",
        "Keys cannot be verified right now, e.g. the database is unreachable (`service_unavailable`).",
    ),
];

/// Adds the shared responses to every authenticated operation, and the
/// `Request-Id` header to every response.
struct SharedResponses;

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                add_shared_responses(operation);
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        for (status, name, description) in SHARED_RESPONSES {
            let mut response = error_response(description);
            if status == "429" {
                add_retry_after(&mut response);
            }
            components.responses.insert(name.to_owned(), RefOr::T(response));
        }
    }
}

/// The answers of the idempotency middleware: (status, name under
/// `#/components/responses`, description).
const IDEMPOTENCY_RESPONSES: [(&str, &str, &str); 3] = [
    (
        "400",
        "InvalidIdempotencyKey",
        "`Idempotency-Key` is not 1 to 255 printable ASCII characters, or was sent more than once (`idempotency_key_invalid`).",
    ),
    (
        "409",
        "IdempotencyKeyInUse",
        "A request with this `Idempotency-Key` is still being processed (`idempotency_key_in_use`); retry later.",
    ),
    (
        "422",
        "IdempotencyKeyReused",
        "This `Idempotency-Key` was already used with a different request: another body, path or API key (`idempotency_key_reused`).",
    ),
];

/// Adds `Idempotency-Key` to every authenticated POST but those that opt out
/// (see the module docs). A handler's own 400/409 keeps its entry, with the
/// middleware's answer appended to its description.
struct IdempotencyHeader;

impl Modify for IdempotencyHeader {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            if idempotency::not_idempotent(path).is_some() {
                continue;
            }
            let Some(operation) = item.post.as_mut() else {
                continue;
            };
            if operation.security.as_ref().is_none_or(|s| s.is_empty()) {
                continue;
            }
            let key = ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(crate::domain::idempotency_key::MAX_LEN))
                // Printable ASCII; HTTP strips spaces at either end.
                .pattern(Some("^[!-~](?:[ -~]{0,253}[!-~])?$"));
            let parameter = ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Makes the request safe to retry: the same key with the same request (API key, path, body) \
                     within 24 hours replays the first answer with `Idempotent-Replayed: true`, without running \
                     the request again. Scoped to the merchant.",
                ))
                .schema(Some(key))
                .build();
            operation.parameters.get_or_insert_with(Vec::new).push(parameter);
            for (status, name, description) in IDEMPOTENCY_RESPONSES {
                match operation.responses.responses.get_mut(status) {
                    Some(RefOr::T(own)) => {
                        own.description = if own.description.is_empty() {
                            description.to_owned()
                        } else {
                            format!("{} Or: {description}", own.description)
                        };
                    }
                    Some(RefOr::Ref(_)) => {}
                    None => {
                        operation
                            .responses
                            .responses
                            .insert(status.to_owned(), RefOr::Ref(Ref::from_response_name(name)));
                    }
                }
            }
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    add_replayed(response);
                }
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        for (_, name, description) in IDEMPOTENCY_RESPONSES {
            let mut response = error_response(description);
            add_replayed(&mut response);
            components.responses.insert(name.to_owned(), RefOr::T(response));
        }
    }
}

/// A stored answer replayed for a repeated `Idempotency-Key` says so.
fn add_replayed(response: &mut Response) {
    let flag = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["true"]));
    let mut replayed = Header::new(flag);
    replayed.description =
        Some("`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`.".to_owned());
    response.headers.insert("Idempotent-Replayed".to_owned(), replayed);
}

/// A handler's own entry for a shared status (e.g. a route-specific 429) is
/// kept; a response without a description gets the status's reason phrase.
fn add_shared_responses(operation: &mut Operation) {
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        for (status, name, _) in SHARED_RESPONSES {
            operation
                .responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
        }
    }
    for (status, response) in &mut operation.responses.responses {
        if let RefOr::T(response) = response {
            if response.description.is_empty() {
                let reason = status.parse().ok().and_then(|s: u16| StatusCode::from_u16(s).ok());
                response.description = reason.and_then(|s| s.canonical_reason()).unwrap_or_default().to_owned();
            }
            if status == "429" {
                add_retry_after(response);
            }
            add_request_id(response);
        }
    }
}

/// Every 429 says when to retry (`ApiError::into_response`).
fn add_retry_after(response: &mut Response) {
    let seconds = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1));
    let mut retry_after = Header::new(seconds);
    retry_after.description = Some("Seconds to wait before retrying.".to_owned());
    response.headers.insert("Retry-After".to_owned(), retry_after);
}

/// utoipa inlines a generic argument (juhaku/utoipa#1586), so each
/// `ListResponse_X` would carry its own copy of `X`: point `data.items` back
/// at the `X` component instead, when that is what was inlined.
struct ListItemRefs;

impl Modify for ListItemRefs {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let items: Vec<(String, RefOr<Schema>)> = components
            .schemas
            .keys()
            .filter_map(|name| name.strip_prefix("ListResponse_"))
            .filter_map(|item| Some((item.to_owned(), components.schemas.get(item)?.clone())))
            .collect();
        for (item, component) in items {
            let Some(RefOr::T(Schema::Object(list))) = components.schemas.get_mut(&format!("ListResponse_{item}"))
            else {
                continue;
            };
            let Some(RefOr::T(Schema::Array(data))) = list.properties.get_mut("data") else {
                continue;
            };
            if matches!(&data.items, ArrayItems::RefOrSchema(inlined) if **inlined == component) {
                data.items = ArrayItems::RefOrSchema(Box::new(RefOr::Ref(Ref::from_schema_name(item))));
            }
        }
    }
}

/// Request bodies whose fields are all optional and may be `null` (= not
/// given), but one of which must be given non-null: `allOf` the derived
/// schema and `anyOf` "field F is present and not null". utoipa's derive
/// cannot say this (and its `min_properties` emits `maxProperties`).
const AT_LEAST_ONE_FIELD: [&str; 1] = ["UpdateMerchant"];

struct AtLeastOneField;

impl Modify for AtLeastOneField {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in AT_LEAST_ONE_FIELD {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get(name) else {
                continue;
            };
            let mut one_of_them = AnyOfBuilder::new();
            for (field, property) in &object.properties {
                let types = match property {
                    RefOr::T(Schema::Object(o)) => &o.schema_type,
                    RefOr::T(Schema::Array(a)) => &a.schema_type,
                    _ => continue,
                };
                let present = match types {
                    SchemaType::Array(types) => {
                        SchemaType::Array(types.iter().filter(|t| **t != Type::Null).cloned().collect())
                    }
                    other => other.clone(),
                };
                let not_null = ObjectBuilder::new().schema_type(present);
                one_of_them = one_of_them.item(ObjectBuilder::new().property(field, not_null).required(field));
            }
            let combined = AllOfBuilder::new()
                .item(Schema::Object(object.clone()))
                .item(one_of_them);
            components
                .schemas
                .insert(name.to_owned(), RefOr::T(Schema::AllOf(combined.build())));
        }
    }
}

/// An `ErrorEnvelope` response.
fn error_response(description: &str) -> Response {
    let mut response = Response::new(description);
    response.content.insert(
        "application/json".to_owned(),
        Content::new(Some(Ref::from_schema_name("ErrorEnvelope"))),
    );
    add_request_id(&mut response);
    response
}

/// Every response carries the request id (`context::request_context`).
fn add_request_id(response: &mut Response) {
    let mut request_id = Header::new(ObjectBuilder::new().schema_type(Type::String));
    request_id.description = Some("This request's id, also in the audit trail and the server log.".to_owned());
    response.headers.insert("Request-Id".to_owned(), request_id);
}

/// The document, rendered once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        camel_case_links(&mut doc);
        serde_json::to_string(&doc).unwrap_or_else(|_| "{}".to_owned())
    })
}

/// utoipa 5 writes a response link's fields in snake case (`operation_id`);
/// OpenAPI (and every client that follows links) reads `operationId`,
/// `operationRef` and `requestBody`.
fn camel_case_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(serde_json::Value::as_object_mut) else {
        return;
    };
    let responses = paths
        .values_mut()
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(serde_json::Value::as_object_mut))
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let Some(links) = response.get_mut("links").and_then(serde_json::Value::as_object_mut) else {
            continue;
        };
        for link in links.values_mut().filter_map(serde_json::Value::as_object_mut) {
            for (snake, camel) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(value) = link.remove(snake) {
                    link.insert(camel.to_owned(), value);
                }
            }
        }
    }
}

pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}

#[cfg(test)]
mod tests;
