//! A batch of the group commit: the jobs callers queue (their statements
//! and audit entries), and how a committer, whichever the backend, takes a
//! batch off the queue and answers every caller in it.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Mutex};

use super::commit_pacing::Pacing;
use super::fault::{Fault, FaultKind};
use super::health::Health;
use super::write_op::WriteOp;
use super::StoreError;
use crate::domain::audit::AuditEvent;

/// Largest number of jobs sharing one commit.
pub(super) const MAX_BATCH: usize = 256;

/// One caller's writes: statements in order, and the audit entries that
/// describe them (written only if every statement succeeds).
#[derive(Debug, Default)]
pub struct WriteJob {
    pub ops: Vec<WriteOp>,
    pub audit: Vec<AuditEvent>,
}

impl WriteJob {
    pub fn new(ops: Vec<WriteOp>, audit: Vec<AuditEvent>) -> Self {
        Self { ops, audit }
    }
}

/// What a caller gets back: the outcome, and its job to free.
pub(super) type Answer = (Result<(), StoreError>, WriteJob);

pub(super) struct Queued {
    pub(super) job: WriteJob,
    /// The outcome, and the job itself back: its statements and parameters
    /// were allocated by the caller's thread, and are freed there.
    pub(super) done: oneshot::Sender<Answer>,
}

/// A batch that starts with `first`: every job already waiting in `rx` joins
/// it, up to [`MAX_BATCH`].
pub(super) fn gather(first: Queued, rx: &mut mpsc::Receiver<Queued>, batch: &mut Vec<Queued>) {
    batch.push(first);
    top_up(rx, batch);
}

/// Adds the jobs queued now, up to [`MAX_BATCH`].
fn top_up(rx: &mut mpsc::Receiver<Queued>, batch: &mut Vec<Queued>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// Drops the jobs whose caller stopped waiting.
pub(super) fn drop_abandoned(batch: &mut Vec<Queued>) {
    batch.retain(|queued| !queued.done.is_closed());
}

/// Waits for the next batch of a queue that several committers share
/// ([`gather`], [`drop_abandoned`]), holding the queue only while the batch
/// is taken from it; with `pacing`, a small batch fills while another
/// commits ([`Pacing::let_fill`]). `false` once the queue is closed.
pub(super) async fn take(rx: &Mutex<mpsc::Receiver<Queued>>, batch: &mut Vec<Queued>, pacing: Option<&Pacing>) -> bool {
    {
        let mut rx = rx.lock().await;
        let Some(first) = rx.recv().await else { return false };
        gather(first, &mut rx, batch);
        if let Some(pacing) = pacing {
            if pacing.let_fill(batch.len()).await {
                top_up(&mut rx, batch);
            }
        }
    }
    drop_abandoned(batch);
    true
}

/// Why a batch that ran past its deadline failed: with `COMMIT` sent, its
/// outcome is unknown; before, nothing was committed.
pub(super) fn past_deadline(commit_sent: bool) -> StoreError {
    if commit_sent {
        StoreError::Unavailable(Fault::new(
            FaultKind::OutcomeUnknown,
            "COMMIT sent, no answer within database.write_deadline",
        ))
    } else {
        StoreError::Unavailable(Fault::new(
            FaultKind::Timeout,
            "no answer within database.write_deadline; nothing was committed",
        ))
    }
}

/// The audit entries of the jobs of `batch` whose outcome is a success.
pub(super) fn audit_of_succeeded<'a>(batch: &'a [Queued], outcomes: &[Result<(), StoreError>]) -> Vec<&'a AuditEvent> {
    batch
        .iter()
        .zip(outcomes)
        .filter(|(_, outcome)| outcome.is_ok())
        .flat_map(|(queued, _)| &queued.job.audit)
        .collect()
}

/// Tells every caller of `batch` that it failed as a whole, with `error`'s class.
pub(super) fn fail_all(batch: &mut Vec<Queued>, error: &StoreError, health: &Health) {
    if !batch.is_empty() {
        health.write_failed(error);
    }
    for queued in batch.drain(..) {
        let _ = queued.done.send((Err(error.shared()), queued.job));
    }
}

pub(super) fn answer_all(batch: &mut Vec<Queued>, outcomes: Vec<Result<(), StoreError>>) {
    for (queued, outcome) in batch.drain(..).zip(outcomes) {
        let _ = queued.done.send((outcome, queued.job));
    }
}

/// How long a batch may take, and where the PostgreSQL committers get
/// their connections.
#[derive(Clone)]
pub struct Deadlines {
    /// From `BEGIN` to the answer to `COMMIT`, per batch (client-side).
    pub batch: Duration,
    /// Opening a committer's connection.
    pub connect: Duration,
}
