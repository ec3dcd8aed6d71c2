//! Changes of authentication state (a key, a merchant, a lockout), as the
//! store announces them to the caches of that state kept above it (the
//! authenticator's, `services::auth::cache`, which explains the rule that
//! keeps them exact): a generation that every change moves on, and the wait
//! before a change is acknowledged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a change of authentication state waits before it is answered:
/// longer than any cached copy of the state before it may be used (the
/// authentication cache's `TTL`, checked there), with a margin for clocks of
/// other replicas running at another rate.
pub const SETTLE: Duration = Duration::from_millis(250);

/// The generation of authentication state in this process: a cache drops
/// what it holds whenever the generation has moved on.
#[derive(Debug, Default)]
pub struct AuthState {
    generation: AtomicU64,
}

impl AuthState {
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Moves the generation on (no copy cached before is used again), waits
    /// [`SETTLE`], and moves it on again: a lookup that read the old state
    /// just before the change was committed and was cached after the first
    /// move has expired by then, and is dropped anyway.
    pub async fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        tokio::time::sleep(SETTLE).await;
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Moves the generation on once, without waiting: for a store whose
    /// state no other process caches (the in-memory double of the tests).
    #[cfg(test)]
    pub(crate) fn moved_on(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}
