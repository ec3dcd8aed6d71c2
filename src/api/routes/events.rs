//! `/v1/events`: the merchant's events, newest first, optionally of one
//! type; the same JSON that webhook deliveries carry.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::Required;
use utoipa::IntoParams;

use crate::domain::event::EventType;
use crate::domain::ids::EventId;
use crate::services::events;

use super::super::auth::Authenticated;
use super::super::error::{ApiError, ErrorEnvelope};
use super::super::extract::{AppQuery, PathId};
use super::super::pagination::{self, ListParams, ListResponse};
use super::super::views::EventView;
use super::super::AppState;

/// `limit`, `starting_after` (an event id: the events older than it) and
/// `type`. Anything else is a 400.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    pub limit: Option<i64>,
    pub starting_after: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
}

impl IntoParams for EventsQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut params = pagination::list_params(EventId::PREFIX);
        let types: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        params.push(
            ParameterBuilder::new()
                .name("type")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some("Only events of this type."))
                .schema(Some(
                    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(types)),
                ))
                .build(),
        );
        params
    }
}

#[utoipa::path(get, path = "/v1/events", operation_id = "list_events", tag = "events", params(EventsQuery),
    responses(
        (status = 200, description = "The merchant's events, newest first.", body = ListResponse<EventView>),
        (status = 400, description = "A query parameter is invalid or unknown (`parameter_invalid`).", body = ErrorEnvelope),
        (status = 403, description = "A publishable key, or a key without `events:read`.", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    AppQuery(query): AppQuery<EventsQuery>,
) -> Result<Json<ListResponse<EventView>>, ApiError> {
    let event_type = query
        .event_type
        .as_deref()
        .map(|t| {
            EventType::parse(t)
                .ok_or_else(|| ApiError::invalid("type", "parameter_invalid", "type is not an event type"))
        })
        .transpose()?;
    let page = ListParams {
        limit: query.limit,
        starting_after: query.starting_after,
    }
    .page(EventId::parse)?;
    let event_type = event_type.map(EventType::as_str);
    let rows = events::list(&state.store, auth.tenant(), event_type, page.after(), page.fetch()).await?;
    Ok(page.respond(rows, EventView::from))
}

#[utoipa::path(get, path = "/v1/events/{id}", operation_id = "get_event", tag = "events",
    params(("id" = String, Path, pattern = r"^evt_[0-9A-Za-z]{24}$")),
    responses((status = 200, body = EventView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    auth: Authenticated,
    PathId(id): PathId,
) -> Result<Json<EventView>, ApiError> {
    let id = EventId::parse(&id).map_err(|_| ApiError::not_found("event", "id"))?;
    Ok(Json(events::get(&state.store, auth.tenant(), &id).await?.into()))
}
