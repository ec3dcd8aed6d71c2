//! Liveness and readiness as `/healthz` and `/readyz` answer them: kinds of
//! failure only, never their detail (the probes are unauthenticated).

use serde::Serialize;
use utoipa::openapi::schema::Object;

use crate::api::schema;
use crate::services::health;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(schema_with = ok)]
    pub status: &'static str,
}

fn ok() -> Object {
    schema::literal("ok")
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
    /// With `redis.url` configured: the shared rate-limit store answered its
    /// last probe (once a second). While it does not, limits fall back to
    /// this replica's own buckets.
    pub redis: Option<CheckView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: &'static str,
    pub checks: Checks,
}

impl From<&health::Check> for CheckView {
    fn from(check: &health::Check) -> Self {
        CheckView {
            ok: check.ok,
            detail: check.detail.clone(),
        }
    }
}

impl Readiness {
    /// The store's readiness and, when configured, the shared rate-limit
    /// store's.
    pub fn new(r: &health::Readiness, redis: Option<&health::Check>) -> Self {
        let mut view = Readiness::from(r);
        view.checks.redis = redis.map(CheckView::from);
        if redis.is_some_and(|c| !c.ok) {
            view.status = "unavailable";
        }
        view
    }

    pub fn ready(&self) -> bool {
        self.status == "ready"
    }
}

impl From<&health::Readiness> for Readiness {
    fn from(r: &health::Readiness) -> Self {
        Readiness {
            status: if r.ready() { "ready" } else { "unavailable" },
            checks: Checks {
                database: CheckView::from(&r.database),
                writes: CheckView::from(&r.writes),
                disk: r.disk.as_ref().map(|d| CheckView {
                    ok: d.ok,
                    detail: (!d.ok).then(|| "below the free-space floor".to_owned()),
                }),
                redis: None,
            },
        }
    }
}
