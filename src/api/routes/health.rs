//! Liveness (`/healthz`): answers without touching the database or
//! authentication; also the "bare endpoint" that benchmarks compare
//! authenticated routes against. Readiness (`/readyz`): whether writes can
//! commit now, from what the store recorded (`services::health`), and, with
//! `redis.url` configured, whether the shared rate-limit store answers.

use axum::Json;

use crate::services::health;

use super::super::views::{Health, Readiness};

#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "health",
    responses((status = 200, description = "The process is up (the database is not consulted).", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: 200 while writes can commit, else 503 (take the gateway out of
/// a load balancer's rotation). Reads only what the store's watcher and its
/// writers recorded: no database access per probe.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "health",
    responses(
        (status = 200, description = "Writes commit: the database answers, the last write batch committed, free space is above the floor; with `redis.url` configured, Redis answers.", body = Readiness),
        (status = 503, description = "Writes cannot commit now, or the shared rate-limit store (Redis) does not answer; `checks` says which check fails.", body = Readiness)))]
pub async fn readyz(
    axum::extract::State(state): axum::extract::State<crate::api::AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let r = health::readiness(&state.store);
    let body = Readiness::new(&r, state.rate_limits.health().as_ref());
    let ready = body.ready();
    let status = if ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
