//! Group commit: many small write transactions share one database commit.
//!
//! With durable commits (SQLite `synchronous=FULL`, PostgreSQL's WAL flush),
//! every commit waits for the disk. Writers hand their work to this queue as
//! a [`WriteJob`] (statements as data, plus the audit entries describing
//! them); one committer takes whatever is queued, runs every job in a single
//! transaction, appends the audit entries of the jobs that succeeded in one
//! go (one chain-head update for the batch), commits once, and then answers
//! every caller. A job that fails is undone alone (its own SAVEPOINT), and its
//! audit entries are never written; if the commit fails, every job of the
//! batch is told so. A caller is answered only after its work and its audit
//! entries are durable, so semantics are those of its own transaction.
//!
//! The batch first runs without savepoints (on SQLite they cost a copy of
//! every page each job touches, on PostgreSQL two round trips per job) and,
//! only if a job fails, is rolled back and run again with one savepoint per
//! job.
//!
//! On PostgreSQL the committers are tasks that pipeline a batch over their
//! own connections, in two round trips ([`super::pg_committer`]). On SQLite
//! (and an SQLite database without a file, through sqlx) it is a thread with its own connection that runs a whole
//! batch inline (`BEGIN IMMEDIATE` … `COMMIT`), without a thread hop per
//! statement: the difference between a few and a few dozen context switches
//! per request.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{AnyConnection, AnyPool, Connection, Executor};
use tokio::sync::{mpsc, oneshot};

use super::batch::{answer_all, audit_of_succeeded, fail_all, past_deadline, take, Queued, MAX_BATCH};
pub use super::batch::{Deadlines, WriteJob};
use super::fault::{breaks_connection, Fault, FaultKind};
use super::health::Health;
use super::pg_connect::Target;
use super::sqlite_committer::{open_sqlite_writer, run_sqlite};
use super::StoreError;

const QUEUE: usize = 8192;

/// Where a committer gets its connection.
#[derive(Clone)]
pub enum Source {
    /// Each committer holds a connection of its own, outside the pool, and
    /// replaces it after any failure of a batch as a whole: it never goes
    /// back through a pool that would test it (a test that can wait for ever
    /// on a silent peer) and never carries a half-finished exchange into the
    /// next batch. PostgreSQL ([`super::pg_committer`]).
    Postgres(Arc<Target>),
    /// A connection from this pool per batch (SQLite without a file).
    Pool(AnyPool),
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Queued>,
    /// The longest a caller waits for its answer: past it, the outcome of
    /// its job is unknown (still queued, or committing on a stuck disk).
    backstop: Duration,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommit")
    }
}

impl GroupCommit {
    /// Starts `committers` committing tasks (PostgreSQL: several).
    ///
    /// Several committers take batches from the one queue, each in its own
    /// transaction on its own connection, so that one batch's round trips and
    /// commit overlap with the next one's instead of queueing behind them. This
    /// is what several replicas sharing the database already do: concurrent
    /// jobs on the same rows are ordered by PostgreSQL's row locks (a
    /// compare-and-set or a refund reservation re-checks its condition once the
    /// other transaction has committed), and the audit chain by the lock on
    /// its head row, taken last in every batch.
    ///
    /// Each batch runs within `deadlines.batch`. Past it, the connection is
    /// dropped (closed, never reused) and every caller of the batch is told
    /// `Timeout`, or `OutcomeUnknown` if `COMMIT` had been sent.
    pub fn start(source: Source, committers: usize, deadlines: Deadlines, health: Arc<Health>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let pacing = Arc::new(super::commit_pacing::Pacing::default());
        for _ in 0..committers.max(1) {
            match &source {
                Source::Postgres(target) => tokio::spawn(super::pg_committer::run(
                    Arc::clone(target),
                    Arc::clone(&rx),
                    deadlines.clone(),
                    Arc::clone(&health),
                    Arc::clone(&pacing),
                )),
                Source::Pool(pool) => tokio::spawn(run_sqlx(
                    pool.clone(),
                    Arc::clone(&rx),
                    deadlines.clone(),
                    Arc::clone(&health),
                )),
            };
        }
        Self {
            queue: tx,
            backstop: backstop(&deadlines),
        }
    }

    /// Starts the committing thread on its own connection to the SQLite
    /// database at `path`, and beside it the checkpointer
    /// ([`super::sqlite_checkpointer`]), which stops with it. `max_pages`
    /// caps the database's size (`PRAGMA max_page_count`, for tests).
    pub fn start_sqlite(
        path: &Path,
        max_pages: Option<u32>,
        deadlines: &Deadlines,
        health: Arc<Health>,
    ) -> Result<Self, StoreError> {
        let conn = open_sqlite_writer(path, max_pages)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let (keep_checkpointing, checkpointer_stop) = std::sync::mpsc::channel::<()>();
        if super::sqlite_checkpointer::is_wal(&conn) {
            super::sqlite_checkpointer::start(open_sqlite_writer(path, max_pages)?, checkpointer_stop)?;
        }
        let path: PathBuf = path.to_path_buf();
        std::thread::Builder::new()
            .name("paywarden-commit".into())
            .spawn(move || {
                run_sqlite(conn, rx, path, max_pages, &health);
                drop(keep_checkpointing);
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the commit thread: {e}")))?;
        Ok(Self {
            queue: tx,
            backstop: backstop(deadlines),
        })
    }

    /// Runs `job` in a transaction shared with other jobs; returns once the
    /// shared transaction has committed (or the job or the commit failed).
    /// A job whose caller has given up (past the backstop) and that has not
    /// started yet is skipped.
    pub async fn run(&self, job: WriteJob) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        let queued = AtomicBool::new(false);
        // One timer per job, armed only while it waits.
        let outcome = tokio::time::timeout(self.backstop, async {
            self.queue
                .send(Queued { job, done })
                .await
                .map_err(|_| StoreError::Corrupt("the group-commit task has stopped".into()))?;
            queued.store(true, Ordering::Relaxed);
            answer
                .await
                .map_err(|_| StoreError::Corrupt("the group-commit task dropped a job".into()))?
                .0
        })
        .await;
        match outcome {
            Ok(result) => result,
            Err(_) if queued.load(Ordering::Relaxed) => Err(StoreError::Unavailable(Fault::new(
                FaultKind::OutcomeUnknown,
                "no answer from the commit queue within the write deadline",
            ))),
            Err(_) => Err(StoreError::Unavailable(Fault::new(
                FaultKind::Timeout,
                "the write queue stayed full past the write deadline",
            ))),
        }
    }
}

/// A caller's own bound: a batch's deadline plus a new connection's, and a
/// second to spare, so that the committer's own verdict normally comes first.
fn backstop(deadlines: &Deadlines) -> Duration {
    deadlines.batch + deadlines.connect + Duration::from_secs(1)
}

/// A committer on connections of `pool` (SQLite without a file).
async fn run_sqlx(
    pool: AnyPool,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Queued>>>,
    deadlines: Deadlines,
    health: Arc<Health>,
) {
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    while take(&rx, &mut batch, None).await {
        if batch.is_empty() {
            continue;
        }
        let started = std::time::Instant::now();
        let committed = match pool.acquire().await {
            Ok(mut conn) => commit_within(&mut conn, &batch, deadlines.batch).await,
            Err(e) => Err(e.into()),
        };
        crate::metrics::process().commit(batch.len(), started.elapsed(), committed.is_ok());
        match committed {
            Ok(outcomes) => {
                health.write_committed();
                answer_all(&mut batch, outcomes);
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = batch.len(), "a write batch failed");
                fail_all(&mut batch, &e, &health);
            }
        }
    }
}

/// [`commit_sqlx`] within `deadline`.
async fn commit_within(
    conn: &mut AnyConnection,
    batch: &[Queued],
    deadline: Duration,
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let commit_sent = AtomicBool::new(false);
    match tokio::time::timeout(deadline, commit_sqlx(conn, batch, &commit_sent)).await {
        Ok(result) => result,
        Err(_) => Err(past_deadline(commit_sent.load(Ordering::Relaxed))),
    }
}

/// The whole batch in one transaction. As on SQLite, the jobs first run
/// without savepoints (a savepoint is a round trip of its own here, and two
/// per job); if one fails, the transaction is rolled back and the batch runs
/// again with a savepoint per job, so that only the failing job is undone.
/// `Err` fails the batch as a whole; `commit_sent` says whether `COMMIT` left.
async fn commit_sqlx(
    conn: &mut AnyConnection,
    batch: &[Queued],
    commit_sent: &AtomicBool,
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let mut tx = conn.begin().await?;
    let outcomes: Vec<Result<(), StoreError>> = match run_all_sqlx(&mut tx, batch).await {
        Ok(()) => batch.iter().map(|_| Ok(())).collect(),
        // The connection or the server failed, not a job.
        Err(e) if e.fault().is_some() => return Err(e),
        Err(_) => {
            tx.rollback().await?;
            tx = conn.begin().await?;
            let mut outcomes = Vec::with_capacity(batch.len());
            for queued in batch {
                outcomes.push(run_job_sqlx(&mut tx, &queued.job).await?);
            }
            outcomes
        }
    };
    let events = audit_of_succeeded(batch, &outcomes);
    super::audit::append(&mut tx, &events).await?;
    commit_sent.store(true, Ordering::Relaxed);
    tx.commit().await.map_err(|e| {
        if breaks_connection(&e) {
            // The server may have committed before the connection failed.
            StoreError::Unavailable(Fault::new(
                FaultKind::OutcomeUnknown,
                format!("the connection failed during COMMIT: {e}"),
            ))
        } else {
            e.into()
        }
    })?;
    Ok(outcomes)
}

/// Every statement of every job, in order, stopping at the first failure.
async fn run_all_sqlx(conn: &mut AnyConnection, batch: &[Queued]) -> Result<(), StoreError> {
    for op in batch.iter().flat_map(|queued| &queued.job.ops) {
        op.run_sqlx(conn).await?;
    }
    Ok(())
}

/// Runs one job inside a savepoint, so its failure undoes only its own
/// writes: the job's own result inside, the outer error only if the
/// savepoint machinery (the connection) failed.
async fn run_job_sqlx(conn: &mut AnyConnection, job: &WriteJob) -> Result<Result<(), StoreError>, StoreError> {
    conn.execute("SAVEPOINT pw_job").await?;
    let mut result = Ok(());
    for op in &job.ops {
        if let Err(e) = op.run_sqlx(conn).await {
            result = Err(e);
            break;
        }
    }
    if let Err(e) = &result {
        if e.fault().is_some() {
            // The connection or the server failed, not the job.
            return Err(e.shared());
        }
        conn.execute("ROLLBACK TO SAVEPOINT pw_job").await?;
    }
    conn.execute("RELEASE SAVEPOINT pw_job").await?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::AuditEvent;
    use crate::domain::audit::Outcome;
    use crate::store::batch::Answer;
    use crate::store::sqlite_committer::commit_sqlite;
    use crate::store::write_op::Value;
    use crate::store::write_op::{SqliteStatements, WriteOp};

    /// A database with the real SQLite schema, and the commit connection on it.
    fn migrated() -> (tempfile::TempDir, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(rusqlite::Connection::open(&path).unwrap());
        let conn = open_sqlite_writer(&path, None).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            conn.execute_batch(&std::fs::read_to_string(file).unwrap()).unwrap();
        }
        (dir, conn)
    }

    fn job(name: &str, fail_after_write: bool) -> (Queued, oneshot::Receiver<Answer>) {
        let mut ops = vec![WriteOp::new(
            "INSERT INTO merchants (id, name, created_at) VALUES ($1, $2, 0)",
            vec![Value::Text(format!("mer_{name:0>24}")), Value::Text(name.to_owned())],
        )];
        if fail_after_write {
            ops.push(WriteOp::new(
                "INSERT INTO merchants (id, name, created_at) VALUES (NULL, 'x', 0)",
                vec![],
            ));
        }
        let mut audit = AuditEvent::new("test.job", Outcome::Success);
        audit.resource = Some(name.to_owned());
        let (done, answer) = oneshot::channel();
        (
            Queued {
                job: WriteJob::new(ops, vec![audit]),
                done,
            },
            answer,
        )
    }

    fn names(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn a_failing_job_in_a_batch_is_undone_alone_and_the_others_commit() {
        let (_dir, conn) = migrated();
        let (a, a_done) = job("first", false);
        let (b, b_done) = job("broken", true);
        let (c, c_done) = job("third", false);
        let mut batch = vec![a, b, c];
        commit_sqlite(&mut SqliteStatements::new(&conn), &mut batch).unwrap();
        assert!(batch.is_empty(), "every job was answered");
        assert!(a_done.blocking_recv().unwrap().0.is_ok());
        assert!(b_done.blocking_recv().unwrap().0.is_err());
        assert!(c_done.blocking_recv().unwrap().0.is_ok());
        assert_eq!(
            names(&conn, "SELECT name FROM merchants ORDER BY name"),
            ["first", "third"]
        );
        assert_eq!(
            names(
                &conn,
                "SELECT resource FROM audit_log WHERE action = 'test.job' ORDER BY seq"
            ),
            ["first", "third"],
            "the failed job's audit entry is not written, and the others keep their order"
        );
    }

    #[test]
    fn a_full_database_fails_the_batch_as_full() {
        let (_dir, conn) = migrated();
        // Capped at its current size: the next page it needs is refused.
        conn.execute_batch("PRAGMA max_page_count = 1").unwrap();
        let (mut batch, _answers): (Vec<_>, Vec<_>) =
            (0..40).map(|i| job(&format!("{i}{}", "x".repeat(2000)), false)).unzip();
        let e = commit_sqlite(&mut SqliteStatements::new(&conn), &mut batch).unwrap_err();
        assert!(matches!(e.fault(), Some(f) if f.kind == FaultKind::Full), "{e:?}");
    }

    #[test]
    fn a_batch_without_failures_commits_every_job_in_order() {
        let (_dir, conn) = migrated();
        let (mut batch, answers): (Vec<_>, Vec<_>) = (0..5).map(|i| job(&format!("job{i}"), false)).unzip();
        commit_sqlite(&mut SqliteStatements::new(&conn), &mut batch).unwrap();
        for answer in answers {
            assert!(answer.blocking_recv().unwrap().0.is_ok());
        }
        assert_eq!(
            names(
                &conn,
                "SELECT resource FROM audit_log WHERE action = 'test.job' ORDER BY seq"
            ),
            ["job0", "job1", "job2", "job3", "job4"]
        );
    }
}
