//! List parameters (`limit`, `starting_after`) and the list envelope shared by
//! every list endpoint.

use serde::{Deserialize, Serialize};

use super::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 10;
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// How many items to return, 1 to 100 (default 10).
    pub limit: Option<i64>,
    /// An object id: return the items after it.
    pub starting_after: Option<String>,
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

/// `{"object": "list", "data": [...], "has_more": bool}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListResponse<T> {
    pub object: &'static str,
    pub data: Vec<T>,
    pub has_more: bool,
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
