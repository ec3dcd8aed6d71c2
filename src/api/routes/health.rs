//! Liveness (`/healthz`): answers without touching the database or
//! authentication; also the "bare endpoint" that benchmarks compare
//! authenticated routes against. Readiness (`/readyz`): whether writes can
//! commit now, from what the store recorded (`services::health`).

use axum::Json;
use serde::Serialize;

use crate::services::health;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(schema_with = ok)]
    pub status: &'static str,
}

fn ok() -> utoipa::openapi::schema::Object {
    super::super::schema::literal("ok")
}

#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "health",
    responses((status = 200, description = "The process is up (the database is not consulted).", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// A readiness check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckView {
    pub ok: bool,
    /// What is wrong, by kind only (`timeout`, `unavailable`, `full`,
    /// `outcome_unknown`, `error`); the detail is in the gateway's log.
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Checks {
    /// The database answered the last probe (once a second).
    pub database: CheckView,
    /// The last write batch committed (while one fails, an empty one is
    /// sent once a second until it does).
    pub writes: CheckView,
    /// SQLite with a free-space floor: free space is above it.
    pub disk: Option<CheckView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: &'static str,
    pub checks: Checks,
}

fn view(check: &health::Check) -> CheckView {
    CheckView {
        ok: check.ok,
        detail: check.detail.clone(),
    }
}

/// Readiness: 200 while writes can commit, else 503 (take the gateway out of
/// a load balancer's rotation). Reads only what the store's watcher and its
/// writers recorded: no database access per probe.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "health",
    responses(
        (status = 200, description = "Writes commit: the database answers, the last write batch committed, free space is above the floor.", body = Readiness),
        (status = 503, description = "Writes cannot commit now; `checks` says which check fails.", body = Readiness)))]
pub async fn readyz(
    axum::extract::State(state): axum::extract::State<crate::api::AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let r = health::readiness(&state.store);
    let ready = r.ready();
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        checks: Checks {
            database: view(&r.database),
            writes: view(&r.writes),
            disk: r.disk.map(|d| CheckView {
                ok: d.ok,
                detail: (!d.ok).then(|| "below the free-space floor".to_owned()),
            }),
        },
    };
    let status = if ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
