//! Readiness of this gateway to take changes: what the store's watcher and
//! its writers recorded (no database access per question).

pub use crate::store::health::{Check, DiskCheck, Readiness};
use crate::store::Store;

/// Whether writes can commit now, and which check says not.
pub fn readiness(store: &Store) -> Readiness {
    store.health().readiness()
}
