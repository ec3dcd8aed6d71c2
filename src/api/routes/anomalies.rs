//! `GET /v1/anomalies`: the alerts of the anomaly detectors about the
//! caller's own subjects (its keys, its merchant, addresses using its keys),
//! in its own mode, newest first. A secret key, or a restricted key with
//! `anomalies:read`; another merchant's or mode's alerts are never listed.

use axum::extract::State;
use axum::Json;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::IntoParams;

use crate::domain::ids::AnomalyId;
use crate::services::anomaly;

use super::super::auth::Authenticated;
use super::super::error::{ApiError, ErrorEnvelope};
use super::super::extract::AppQuery;
use super::super::pagination::{self, ListParams, ListResponse};
use super::super::views::AnomalyView;
use super::super::AppState;

/// `limit` and `starting_after` (an anomaly id: the older ones).
pub struct AnomaliesQuery;

impl IntoParams for AnomaliesQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        pagination::list_params(AnomalyId::PREFIX)
    }
}

#[utoipa::path(get, path = "/v1/anomalies", operation_id = "list_anomalies", tag = "anomalies", params(AnomaliesQuery),
    responses(
        (status = 200, description = "The alerts about the merchant's own keys, account and traffic, newest first.", body = ListResponse<AnomalyView>),
        (status = 400, description = "A query parameter is invalid or unknown (`parameter_invalid`).", body = ErrorEnvelope),
        (status = 403, description = "A publishable key, or a restricted key without `anomalies:read`.", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    AppQuery(page): AppQuery<ListParams>,
) -> Result<Json<ListResponse<AnomalyView>>, ApiError> {
    let page = page.page(AnomalyId::parse)?;
    let found = anomaly::list_for_tenant(&state.store, auth.tenant(), page.after(), page.fetch()).await?;
    Ok(page.respond(&found, AnomalyView::from))
}
