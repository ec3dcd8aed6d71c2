//! Pacing of the PostgreSQL committers: when to send a small batch at once
//! and when to let it fill first.
//!
//! Several committers take batches from one queue so that one batch's round
//! trips and `COMMIT` overlap with the next one's. But a committer that sends
//! whatever is queued the moment it is free splits a moderate load into many
//! batches of one or two jobs, and each batch costs the database a
//! transaction and a WAL flush: on a small machine those fixed costs, not the
//! jobs, become the limit. So a committer that finds a *small* batch while
//! another batch is still committing waits for that batch to end (bounded by
//! [`MAX_FILL_WAIT`]) and takes what arrived in the meantime. Under light load
//! nothing waits (no batch is in flight); under heavy load batches are full
//! and go at once, in parallel; in between, jobs share commits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// A batch with at least this many jobs goes at once.
pub(super) const FILL: usize = 16;
/// The longest a small batch waits for the batch in flight to end (a stuck
/// batch must not hold the others back for its whole deadline).
pub(super) const MAX_FILL_WAIT: Duration = Duration::from_millis(5);

/// Batches in flight, shared by a gateway's committers.
#[derive(Debug, Default)]
pub(super) struct Pacing {
    in_flight: AtomicUsize,
    ended: Notify,
}

impl Pacing {
    /// Waits, if a batch of `queued` jobs should fill first, until a batch in
    /// flight ends or [`MAX_FILL_WAIT`] passes. Returns whether it waited.
    pub(super) async fn let_fill(&self, queued: usize) -> bool {
        self.let_fill_within(queued, MAX_FILL_WAIT).await
    }

    async fn let_fill_within(&self, queued: usize, max_wait: Duration) -> bool {
        if queued >= FILL {
            return false;
        }
        // Registered before the check, so an end in between is not missed.
        let ended = self.ended.notified();
        tokio::pin!(ended);
        ended.as_mut().enable();
        if self.in_flight.load(Ordering::Acquire) == 0 {
            return false;
        }
        let _ = tokio::time::timeout(max_wait, ended).await;
        true
    }

    /// Marks a batch in flight until the guard is dropped.
    pub(super) fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self)
    }
}

/// A batch in flight; dropping it (however the batch ended) wakes the
/// committers waiting for it.
pub(super) struct InFlight<'a>(&'a Pacing);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.ended.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[tokio::test]
    async fn nothing_waits_when_no_batch_is_in_flight() {
        let pacing = Pacing::default();
        assert!(!pacing.let_fill(1).await);
    }

    #[tokio::test]
    async fn a_full_batch_goes_at_once_beside_one_in_flight() {
        let pacing = Pacing::default();
        let _busy = pacing.start();
        assert!(!pacing.let_fill(FILL).await);
    }

    #[tokio::test]
    async fn a_small_batch_waits_for_the_batch_in_flight_to_end() {
        let pacing = Arc::new(Pacing::default());
        let busy = pacing.start();
        // A bound far longer than the test's own: only the batch's end can
        // release the waiter in time.
        let waiter = tokio::spawn({
            let pacing = Arc::clone(&pacing);
            async move { pacing.let_fill_within(1, Duration::from_secs(3600)).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(busy);
        let waited = tokio::time::timeout(Duration::from_secs(30), waiter).await;
        assert!(matches!(waited, Ok(Ok(true))));
    }

    #[tokio::test]
    async fn a_stuck_batch_holds_a_small_one_back_only_briefly() {
        let pacing = Pacing::default();
        let _stuck = pacing.start();
        let started = Instant::now();
        let waited = tokio::time::timeout(Duration::from_secs(30), pacing.let_fill(1)).await;
        assert!(matches!(waited, Ok(true)));
        assert!(started.elapsed() >= MAX_FILL_WAIT);
    }
}
