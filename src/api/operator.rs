//! The operator listener's router: `/metrics` (Prometheus) and `/readyz`,
//! nothing of the merchant API (`/v1` is a 404 here, as `/metrics` is on the
//! public listener). Served on its own TLS listener (`serve
//! --operator-listen`), meant for a private network or loopback.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use super::error::ApiError;
use super::{routes, AppState};

/// The OpenMetrics text format `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/readyz", get(routes::health::readyz))
        .fallback(|| async { ApiError::route_not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .with_state(state)
}

async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        state.metrics.render(),
    )
        .into_response()
}
