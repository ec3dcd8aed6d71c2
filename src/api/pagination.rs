//! List parameters (`limit`, `starting_after`) and the list envelope shared by
//! every list endpoint.

use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{KnownFormat, Required, SchemaFormat};

use super::error::ApiError;
use super::schema;

pub const DEFAULT_LIMIT: i64 = 10;
pub const MAX_LIMIT: i64 = 100;

/// The query of a list endpoint. Any other query parameter is a 400. Its
/// OpenAPI description is [`list_params`], which also knows the id shape of
/// the listed resource.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// How many items to return, 1 to 100 (default 10).
    pub limit: Option<i64>,
    /// An object id: return the items after it.
    pub starting_after: Option<String>,
}

/// The OpenAPI query parameters of a list of resources whose ids start with
/// `id_prefix` (for a handler's `IntoParams`).
pub fn list_params(id_prefix: &str) -> Vec<Parameter> {
    let limit = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(1))
        .maximum(Some(MAX_LIMIT))
        .default(Some(DEFAULT_LIMIT.into()));
    vec![
        ParameterBuilder::new()
            .name("limit")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(format!(
                "How many items to return, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}); anything else is a 400."
            )))
            .schema(Some(limit))
            .build(),
        ParameterBuilder::new()
            .name("starting_after")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(
                "The id of an item of this list: return the items after it. A malformed id is a 400.",
            ))
            .schema(Some(schema::id_schema(id_prefix)))
            .build(),
    ]
}

impl ListParams {
    /// The validated limit.
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::invalid(
                "limit",
                "parameter_invalid",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            )),
        }
    }

    /// The validated page: the limit, and the cursor parsed with `parse` (an
    /// id type's parser). A limit out of range or a malformed cursor is a 400.
    pub fn page<Id, E>(&self, parse: impl Fn(&str) -> Result<Id, E>) -> Result<Page<Id>, ApiError> {
        Ok(Page {
            limit: self.limit()?,
            after: self.cursor(parse)?,
        })
    }

    /// The cursor parsed with `parse` (an id type's parser); a malformed one is a 400.
    pub fn cursor<T, E>(&self, parse: impl Fn(&str) -> Result<T, E>) -> Result<Option<T>, ApiError> {
        self.starting_after
            .as_deref()
            .map(|s| {
                parse(s).map_err(|_| {
                    ApiError::invalid(
                        "starting_after",
                        "parameter_invalid",
                        "starting_after is not a valid id",
                    )
                })
            })
            .transpose()
    }
}

/// One validated page request of a list endpoint. A handler fetches
/// [`Page::fetch`] rows after [`Page::after`] and answers with
/// [`Page::respond`], which keeps `limit` and reports whether more follow.
#[derive(Debug)]
pub struct Page<Id> {
    limit: i64,
    after: Option<Id>,
}

impl<Id> Page<Id> {
    /// The cursor: the id the page starts after (or before, for lists that
    /// run newest first).
    pub fn after(&self) -> Option<&Id> {
        self.after.as_ref()
    }

    /// How many rows to fetch: one more than the limit, so that the extra
    /// row tells whether more follow.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// The response from the fetched rows, each turned into its view.
    pub fn respond<R, V>(&self, rows: impl IntoIterator<Item = R>, view: impl FnMut(R) -> V) -> Json<ListResponse<V>> {
        Json(ListResponse::from_overfetch(
            rows.into_iter().map(view).collect(),
            self.limit,
        ))
    }
}

/// `{"object": "list", "data": [...], "has_more": bool}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListResponse<T> {
    #[schema(schema_with = list_object)]
    pub object: &'static str,
    /// At most `limit` items, in id order.
    pub data: Vec<T>,
    /// Whether more items follow the last one (pass its id as `starting_after`).
    pub has_more: bool,
}

fn list_object() -> utoipa::openapi::schema::Object {
    schema::literal("list")
}

impl<T> ListResponse<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only tells
    /// whether there is more.
    pub fn from_overfetch(mut rows: Vec<T>, limit: i64) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        Self {
            object: "list",
            data: rows,
            has_more,
        }
    }
}
