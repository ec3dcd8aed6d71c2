//! Liveness: answers without touching the database or authentication; also the
//! "bare endpoint" that benchmarks compare authenticated routes against.

use axum::Json;
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(schema_with = ok)]
    pub status: &'static str,
}

fn ok() -> utoipa::openapi::schema::Object {
    super::super::openapi::literal("ok")
}

#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "health",
    responses((status = 200, description = "The process is up (the database is not consulted).", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}
