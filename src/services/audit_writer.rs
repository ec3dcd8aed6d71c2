//! The batched audit writer for entries that do not ride in a state-changing
//! transaction (read requests, denied requests).
//!
//! Entries are queued on a bounded channel: when the queue is full, callers
//! wait (back-pressure), nothing is dropped. The writer gathers entries for
//! at most `LINGER` after the first one of a batch (or until `MAX_BATCH`) and
//! appends them in one transaction, so under load many entries share one
//! durable commit and an entry is on disk within `LINGER` plus one commit's
//! time of being queued. The same transaction moves `last_used_at`
//! of the keys those requests used. On shutdown the writer drains the queue,
//! within the drain deadline it is given (the entries it could not write are
//! counted and reported, never silently lost).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::domain::audit::{AuditEvent, Outcome};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::{ApiKeyStore, Commit, StoreError};

/// Largest number of entries appended in one transaction.
const MAX_BATCH: usize = 4096;
/// How long the writer keeps gathering entries after the first one of a
/// batch: far below the 100 ms within which an entry must be durable, and
/// long enough that under load one commit carries many entries.
const LINGER: Duration = Duration::from_millis(10);
/// Queue length before callers are made to wait.
const QUEUE_CAPACITY: usize = 16_384;
/// Action recorded for every API request.
pub const API_REQUEST: &str = "api.request";

/// The sending side, cloned into every request handler.
#[derive(Clone)]
pub struct AuditSink {
    queue: mpsc::Sender<AuditEvent>,
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditSink")
    }
}

impl AuditSink {
    /// A sink whose entries the test reads from the receiver.
    #[cfg(test)]
    pub fn channel() -> (AuditSink, mpsc::Receiver<AuditEvent>) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        (AuditSink { queue: tx }, rx)
    }

    /// Queues `event`, waiting while the queue is full.
    pub async fn record(&self, event: AuditEvent) {
        if let Err(lost) = self.queue.send(event).await {
            // Only possible after shutdown began; make the loss loud.
            tracing::error!(action = %lost.0.action, "audit entry queued after the audit writer stopped");
        }
    }

    /// A sink whose entries the test receives instead of a writer.
    #[cfg(test)]
    pub(crate) fn for_tests() -> (Self, mpsc::Receiver<AuditEvent>) {
        let (queue, entries) = mpsc::channel(QUEUE_CAPACITY);
        (Self { queue }, entries)
    }
}

/// Owns the writer task; `shutdown` drains the queue and waits for it.
pub struct AuditWriter {
    stop: Arc<Notify>,
    task: JoinHandle<()>,
    /// To count what is still queued if the drain is cut short (the writer
    /// closes the queue itself when told to stop).
    queue: mpsc::Sender<AuditEvent>,
    /// Entries of the batch being written (retried until it is).
    writing: Arc<AtomicUsize>,
}

impl AuditWriter {
    /// Starts the writer on `store` (the gateway's:
    /// [`Store`](crate::store::Store)).
    pub fn spawn<S: ApiKeyStore + Commit + 'static>(store: S) -> (AuditSink, AuditWriter) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let stop = Arc::new(Notify::new());
        let writing = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(run(store, rx, Arc::clone(&stop), Arc::clone(&writing)));
        (
            AuditSink { queue: tx.clone() },
            AuditWriter {
                stop,
                task,
                queue: tx,
                writing,
            },
        )
    }

    /// Stops accepting entries and writes every queued one, giving up at
    /// `deadline`. Returns how many entries were abandoned (0: all written).
    pub async fn shutdown(self, deadline: tokio::time::Instant) -> usize {
        self.stop.notify_one();
        let mut task = self.task;
        match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(Ok(())) => 0,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "audit writer task failed");
                self.queue.max_capacity() - self.queue.capacity()
            }
            Err(_) => {
                task.abort();
                let queued = self.queue.max_capacity() - self.queue.capacity();
                queued + self.writing.load(Ordering::Relaxed)
            }
        }
    }
}

async fn run<S: ApiKeyStore + Commit>(
    store: S,
    mut rx: mpsc::Receiver<AuditEvent>,
    stop: Arc<Notify>,
    writing: Arc<AtomicUsize>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let first = tokio::select! {
            next = rx.recv() => next,
            () = stop.notified() => {
                // Close: no new entries, but everything already queued is drained below.
                rx.close();
                rx.recv().await
            }
        };
        let Some(first) = first else { break };
        batch.push(first);
        take_queued(&mut rx, &mut batch);
        if batch.len() < MAX_BATCH {
            // Let entries gather for a while without waking for each one.
            tokio::time::sleep(LINGER).await;
            take_queued(&mut rx, &mut batch);
        }
        writing.store(batch.len(), Ordering::Relaxed);
        write_with_retry(&store, &batch).await;
        writing.store(0, Ordering::Relaxed);
        batch.clear();
    }
}

/// Moves queued entries into `batch` without waiting, up to `MAX_BATCH`.
fn take_queued(rx: &mut mpsc::Receiver<AuditEvent>, batch: &mut Vec<AuditEvent>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(e) => batch.push(e),
            Err(_) => break,
        }
    }
}

/// Retries until the batch is written: entries are never dropped. Each failure
/// is logged; the queue fills and back-pressure reaches the callers meanwhile.
async fn write_with_retry<S: ApiKeyStore + Commit>(store: &S, batch: &[AuditEvent]) {
    let mut delay = Duration::from_millis(50);
    loop {
        match write_batch(store, batch).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, entries = batch.len(), "audit batch write failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn write_batch<S: ApiKeyStore + Commit>(store: &S, batch: &[AuditEvent]) -> Result<(), StoreError> {
    let mut last_used: HashMap<&str, i64> = HashMap::new();
    for e in batch {
        if let (Some(key), Outcome::Success) = (e.key_id.as_deref(), e.outcome) {
            let at = last_used.entry(key).or_insert(e.at.as_millis());
            *at = (*at).max(e.at.as_millis());
        }
    }
    // Through the group commit: on SQLite its thread writes inline, and the
    // batch shares a commit with the state changes queued alongside it.
    let mut work = UnitOfWork::new();
    for (key, at) in last_used {
        store.touch_key_last_used(&mut work, key, at);
    }
    for event in batch {
        work.audit(event.clone());
    }
    store.commit(work).await
}

/// The writer against the in-memory double of the storage ports.
#[cfg(test)]
mod tests {
    use secrecy::SecretBox;

    use super::*;
    use crate::domain::api_key::Mode;
    use crate::domain::merchant::MerchantName;
    use crate::domain::time::Timestamp;
    use crate::services::actor::Actor;
    use crate::services::api_keys::{self, KeyPolicy, KeyScope, NewKey};
    use crate::services::key_hasher::KeyHasher;
    use crate::store::memory::MemoryStore;
    use crate::store::ports::AuditStore;

    /// Entries are written in the order queued, all of them by the time
    /// the writer is shut down, and the key's last use moves to its latest
    /// successful request (a denied one does not count).
    #[tokio::test]
    async fn queued_entries_are_written_in_order_and_move_the_keys_last_use() {
        let store = MemoryStore::new();
        let operator = Actor::Operator {
            command: "audit test".into(),
        };
        let merchant = crate::services::merchants::create(&store, &operator, MerchantName::parse("Audited").unwrap())
            .await
            .unwrap();
        let hasher = KeyHasher::new(SecretBox::new(Box::new([3u8; 32])));
        let key = api_keys::issue(
            &store,
            &hasher,
            &KeyPolicy::default(),
            &operator,
            NewKey::for_tests(&merchant.id, Mode::Test),
        )
        .await
        .unwrap()
        .key;
        let before = store.audit_head().await.unwrap().0;

        let (sink, writer) = AuditWriter::spawn(store.clone());
        let entry = |outcome, ms| {
            let mut event = AuditEvent::new(API_REQUEST, outcome);
            event.key_id = Some(key.id.to_string());
            event.at = Timestamp::from_millis(ms);
            event
        };
        let t0 = 1_700_000_000_000;
        sink.record(entry(Outcome::Success, t0 + 20)).await;
        sink.record(entry(Outcome::Success, t0 + 10)).await;
        sink.record(entry(Outcome::Denied, t0 + 30)).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        assert_eq!(writer.shutdown(deadline).await, 0, "nothing abandoned");

        let written = store.audit_page(before, 10).await.unwrap();
        let at: Vec<i64> = written.iter().map(|r| r.event.at.as_millis()).collect();
        assert_eq!(at, [t0 + 20, t0 + 10, t0 + 30]);
        assert!(written.iter().all(|r| r.event.action == API_REQUEST));
        let read = api_keys::get(&store, KeyScope::Operator, &key.id).await.unwrap();
        assert_eq!(read.last_used_at.map(Timestamp::as_millis), Some(t0 + 20));
    }
}
