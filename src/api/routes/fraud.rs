//! `/v1/fraud`: the merchant's fraud rules (save a new version, read the
//! active one and the versions, activate an older one) and the lists the
//! rules refer to as `@name`. Every change is audited with the set's
//! SHA-256 (or the list's name and size) by the service; all of it is
//! scoped to the key's merchant and mode.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use crate::domain::fraud_rules::{ListName, Thresholds, MAX_TEXT_BYTES};
use crate::domain::permission::Permission;
use crate::services::fraud::{parse_thresholds, MAX_ENTRY_BYTES, MAX_LIST_ENTRIES};

use super::super::auth::{AuditedInTx, Authenticated};
use super::super::error::{ApiError, ErrorEnvelope};
use super::super::extract::{AppJson, PathId};
use super::super::views::{FraudDryRunView, FraudListView, FraudRulesView};
use super::super::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveRules {
    /// The rule set's text, in the rules language (see docs/api.md); up to
    /// 64 KiB and 200 rules.
    #[schema(max_length = 65536)]
    pub rules: String,
    /// The score from which the score alone holds a payment for review (1
    /// to 99, below `block_at`); given together with `block_at`. Without
    /// both, the active version's thresholds are kept (65 and 85 at first).
    #[schema(minimum = 1, maximum = 99)]
    pub review_at: Option<i64>,
    /// The score from which the score alone blocks a payment (2 to 100,
    /// above `review_at`); given together with `review_at`.
    #[schema(minimum = 2, maximum = 100)]
    pub block_at: Option<i64>,
}

impl SaveRules {
    /// The thresholds asked for, if any, validated.
    fn thresholds(&self) -> Result<Option<Thresholds>, ApiError> {
        match (self.review_at, self.block_at) {
            (None, None) => Ok(None),
            (Some(review), Some(block)) => Ok(Some(parse_thresholds(review, block)?)),
            (None, Some(_)) => Err(ApiError::invalid(
                "review_at",
                "parameter_missing",
                "review_at and block_at are given together",
            )),
            (Some(_), None) => Err(ApiError::invalid(
                "block_at",
                "parameter_missing",
                "review_at and block_at are given together",
            )),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceList {
    /// The list's values (at most 1000, each 1 to 256 bytes), stored
    /// trimmed, in lower case, sorted and each once.
    #[schema(max_items = 1000)]
    pub values: Vec<String>,
}

fn version(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|v| *v >= 1 && raw.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| ApiError::not_found("fraud_rules_version", "version"))
}

fn list_name(raw: &str) -> Result<ListName, ApiError> {
    ListName::parse(raw).map_err(|_| ApiError::not_found("fraud_list", "name"))
}

#[utoipa::path(get, path = "/v1/fraud/rules", operation_id = "get_fraud_rules", tag = "fraud",
    responses((status = 200, description = "The active rule set of the key's mode and the versions saved.", body = FraudRulesView),
        (status = 403, description = "A publishable key, or a key without `fraud:read`.", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn show_rules(State(state): State<AppState>, auth: Authenticated) -> Result<Json<FraudRulesView>, ApiError> {
    let overview = state.payments.fraud().rules(auth.tenant()).await?;
    Ok(Json(FraudRulesView::new(auth.tenant().mode(), overview)))
}

#[utoipa::path(post, path = "/v1/fraud/rules", operation_id = "save_fraud_rules", tag = "fraud", request_body = SaveRules,
    responses((status = 200, description = "Saved as a new version and active from the next confirm.", body = FraudRulesView),
        (status = 400, description = "The rules do not parse, or name a list that does not exist (`invalid_rules`, `param: rules`, the message giving line and column); thresholds out of range, not in order or given alone (`param: review_at` or `block_at`); or the body is invalid.", body = ErrorEnvelope),
        (status = 403, description = "A publishable key, or a key without `fraud:write`.", body = ErrorEnvelope),
        (status = 409, description = "Another request saved a version at the same time (`fraud_rules_conflict`).", body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn save_rules(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    AppJson(body): AppJson<SaveRules>,
) -> Result<Json<FraudRulesView>, ApiError> {
    if body.rules.len() > MAX_TEXT_BYTES {
        return Err(ApiError::invalid(
            "rules",
            "invalid_rules",
            format!("The rules are at most {MAX_TEXT_BYTES} bytes"),
        ));
    }
    let thresholds = body.thresholds()?;
    let overview = state
        .payments
        .fraud()
        .save_rules_with(&auth.actor(), auth.tenant(), &body.rules, thresholds)
        .await?;
    audited.mark();
    Ok(Json(FraudRulesView::new(auth.tenant().mode(), overview)))
}

#[utoipa::path(post, path = "/v1/fraud/rules/dry_run", operation_id = "dry_run_fraud_rules", tag = "fraud", request_body = SaveRules,
    responses((status = 200, description = "What the candidate would decide over the newest confirmed payments of the last 30 days (at most 1000); nothing is stored.", body = FraudDryRunView),
        (status = 400, description = "The rules do not parse, or name a list that does not exist (`invalid_rules`, `param: rules`); or the body is invalid.", body = ErrorEnvelope),
        (status = 403, description = "A publishable key, or a key without both `fraud:write` and `payments:read` (a dry run tells which payments match a condition).", body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn dry_run(
    State(state): State<AppState>,
    auth: Authenticated,
    AppJson(body): AppJson<SaveRules>,
) -> Result<Json<FraudDryRunView>, ApiError> {
    // Which payments a condition matches tells about their customers: the
    // key must also be one that may read payments.
    auth.require(Permission::PaymentsRead)?;
    if body.rules.len() > MAX_TEXT_BYTES {
        return Err(ApiError::invalid(
            "rules",
            "invalid_rules",
            format!("The rules are at most {MAX_TEXT_BYTES} bytes"),
        ));
    }
    let thresholds = body.thresholds()?;
    let run = state
        .payments
        .fraud()
        .dry_run_with(auth.tenant(), &body.rules, thresholds)
        .await?;
    Ok(Json(FraudDryRunView::new(auth.tenant().mode(), run)))
}

#[utoipa::path(post, path = "/v1/fraud/rules/{version}/activate", operation_id = "activate_fraud_rules", tag = "fraud",
    params(("version" = i64, Path, minimum = 1, description = "A version of the key's mode, as `GET /v1/fraud/rules` lists them.")),
    responses((status = 200, description = "The version is active from the next confirm.", body = FraudRulesView),
        (status = 400, description = "The version names a list that no longer exists (`invalid_rules`).", body = ErrorEnvelope),
        (status = 403, description = "A publishable key, or a key without `fraud:write`.", body = ErrorEnvelope),
        (status = 404, description = "No such version in the key's mode.", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn activate_rules(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    PathId(raw): PathId,
) -> Result<Json<FraudRulesView>, ApiError> {
    let version = version(&raw)?;
    let overview = state
        .payments
        .fraud()
        .activate(&auth.actor(), auth.tenant(), version)
        .await?;
    audited.mark();
    Ok(Json(FraudRulesView::new(auth.tenant().mode(), overview)))
}

#[utoipa::path(get, path = "/v1/fraud/lists/{name}", operation_id = "get_fraud_list", tag = "fraud",
    params(("name" = String, Path, pattern = r"^[a-z][a-z0-9_]{0,63}$", description = "The list's name, as rules write it after `@`.")),
    responses((status = 200, body = FraudListView),
        (status = 403, description = "A publishable key, or a key without `fraud:read`.", body = ErrorEnvelope),
        (status = 404, description = "No such list in the key's mode.", body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn show_list(
    State(state): State<AppState>,
    auth: Authenticated,
    PathId(raw): PathId,
) -> Result<Json<FraudListView>, ApiError> {
    let name = list_name(&raw)?;
    let list = state.payments.fraud().list(auth.tenant(), &name).await?;
    Ok(Json(FraudListView::new(auth.tenant().mode(), list)))
}

#[utoipa::path(post, path = "/v1/fraud/lists/{name}", operation_id = "replace_fraud_list", tag = "fraud",
    params(("name" = String, Path, pattern = r"^[a-z][a-z0-9_]{0,63}$", description = "The list's name, as rules write it after `@`.")),
    request_body = ReplaceList,
    responses((status = 200, description = "The list, replaced whole (created if new); in force from the next confirm.", body = FraudListView),
        (status = 400, description = "Too many values, or a value empty, too long or with control characters (`parameter_invalid`, naming `values[i]`); or the body is invalid.", body = ErrorEnvelope),
        (status = 403, description = "A publishable key, or a key without `fraud:write`.", body = ErrorEnvelope),
        (status = 404, description = "The name is not a list name.", body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn replace_list(
    State(state): State<AppState>,
    auth: Authenticated,
    audited: AuditedInTx,
    PathId(raw): PathId,
    AppJson(body): AppJson<ReplaceList>,
) -> Result<Json<FraudListView>, ApiError> {
    let name = list_name(&raw)?;
    let list = state
        .payments
        .fraud()
        .put_list(&auth.actor(), auth.tenant(), &name, body.values)
        .await?;
    audited.mark();
    Ok(Json(FraudListView::new(auth.tenant().mode(), list)))
}

/// The bounds the OpenAPI document states, as the service enforces them.
const _: () = assert!(MAX_LIST_ENTRIES == 1000 && MAX_ENTRY_BYTES == 256 && MAX_TEXT_BYTES == 65536);
