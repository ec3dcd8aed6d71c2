//! Group commit: many small write transactions share one database commit.
//!
//! With durable commits (SQLite `synchronous=FULL`, PostgreSQL's WAL flush),
//! every commit waits for the disk. Writers hand their work to this queue;
//! one task takes whatever is queued, runs each job inside its own SAVEPOINT
//! of a single transaction, appends the audit entries of the jobs that
//! succeeded in one go (one chain-head update for the batch), commits once,
//! and then answers every caller. A job that fails is rolled back to its
//! savepoint alone, and its audit entries are never written; if the commit
//! fails, every job of the batch is told so. A caller is answered only after
//! its work and its audit entries are durable, so semantics are those of its
//! own transaction.

use futures_util::future::BoxFuture;
use sqlx::{AnyConnection, AnyPool, Executor};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use crate::domain::audit::AuditEvent;

/// Largest number of jobs sharing one commit.
const MAX_BATCH: usize = 128;
const QUEUE: usize = 4096;

/// A job: its writes, returning the audit entries that describe them.
type Work = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<Vec<AuditEvent>, StoreError>> + Send>;

struct Job {
    work: Work,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommit")
    }
}

impl GroupCommit {
    /// Starts the committing task on `writer`.
    pub fn start(writer: AnyPool) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(writer, rx));
        Self { queue: tx }
    }

    /// Runs `work` in a transaction shared with other jobs and appends the
    /// audit entries it returns; returns once the shared transaction has
    /// committed (or the job or the commit failed).
    pub async fn run<F>(&self, work: F) -> Result<(), StoreError>
    where
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<Vec<AuditEvent>, StoreError>> + Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Job {
                work: Box::new(work),
                done,
            })
            .await
            .map_err(|_| StoreError::Corrupt("the group-commit task has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Corrupt("the group-commit task dropped a job".into()))?
    }
}

async fn run(writer: AnyPool, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&writer, &mut batch).await;
    }
}

async fn commit_batch(writer: &AnyPool, batch: &mut Vec<Job>) {
    let mut tx = match writer.begin().await {
        Ok(tx) => tx,
        Err(e) => {
            let message = e.to_string();
            for job in batch.drain(..) {
                let _ = job
                    .done
                    .send(Err(StoreError::Corrupt(format!("cannot begin: {message}"))));
            }
            return;
        }
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut senders = Vec::with_capacity(batch.len());
    let mut events = Vec::new();
    for job in batch.drain(..) {
        let result = run_job(&mut tx, job.work).await.map(|mut e| events.append(&mut e));
        outcomes.push(result);
        senders.push(job.done);
    }
    let committed = match super::audit::append(&mut tx, &events).await {
        Ok(_) => tx.commit().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    for (done, outcome) in senders.into_iter().zip(outcomes) {
        let answer = match (&committed, outcome) {
            (Ok(()), outcome) => outcome,
            (Err(e), _) => Err(StoreError::Corrupt(format!("group commit failed: {e}"))),
        };
        let _ = done.send(answer);
    }
}

/// Runs one job inside a savepoint, so its failure undoes only its own writes.
async fn run_job(conn: &mut AnyConnection, work: Work) -> Result<Vec<AuditEvent>, StoreError> {
    conn.execute("SAVEPOINT pw_job").await?;
    match work(conn).await {
        Ok(events) => {
            conn.execute("RELEASE SAVEPOINT pw_job").await?;
            Ok(events)
        }
        Err(e) => {
            conn.execute("ROLLBACK TO SAVEPOINT pw_job").await?;
            conn.execute("RELEASE SAVEPOINT pw_job").await?;
            Err(e)
        }
    }
}
