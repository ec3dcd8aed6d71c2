//! The SQLite committer: a thread with its own connection that runs a whole
//! batch of the group commit inline (`BEGIN IMMEDIATE` … `COMMIT`), without a
//! thread hop per statement; a failing job is undone alone (a rerun with a
//! savepoint per job) and the audit entries of the others chained once.

use super::health::Health;
use super::write_op::{sqlite_error, SqliteStatements};
use super::StoreError;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

use super::batch::*;

pub(super) fn open_sqlite_writer(path: &Path, max_pages: Option<u32>) -> Result<rusqlite::Connection, StoreError> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_error)?;
    // The same settings as the sqlx connections: WAL, durable commits
    // (survive power loss), foreign keys, and waiting for the other writer.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
    )
    .map_err(sqlite_error)?;
    // The automatic checkpoint (the backstop behind the checkpointer thread,
    // see there) at 4000 WAL pages instead of 1000.
    conn.execute_batch(&format!(
        "PRAGMA wal_autocheckpoint = {}",
        super::sqlite_checkpointer::AUTOMATIC_CHECKPOINT_PAGES
    ))
    .map_err(sqlite_error)?;
    if let Some(pages) = max_pages {
        conn.execute_batch(&format!("PRAGMA max_page_count = {pages}"))
            .map_err(sqlite_error)?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

pub(super) fn run_sqlite(
    mut conn: rusqlite::Connection,
    mut rx: mpsc::Receiver<Queued>,
    path: PathBuf,
    max_pages: Option<u32>,
    health: &Health,
) {
    while let Some(failure) = commit_until_failure(&conn, &mut rx, health) {
        tracing::error!(error = %failure, "an SQLite batch failed; reopening the commit connection");
        // A connection in an unknown state is replaced, not reused.
        let _ = conn.execute_batch("ROLLBACK");
        match open_sqlite_writer(&path, max_pages) {
            Ok(fresh) => conn = fresh,
            Err(e) => tracing::error!(error = %e, "cannot reopen the SQLite commit connection"),
        }
    }
}

/// Commits batches until the queue closes (`None`) or a batch fails as a
/// whole (its error; every job of it has been told). Below the free-space
/// floor, batches are refused without touching the database.
pub(super) fn commit_until_failure(
    conn: &rusqlite::Connection,
    rx: &mut mpsc::Receiver<Queued>,
    health: &Health,
) -> Option<StoreError> {
    let mut statements = SqliteStatements::new(conn);
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        gather(first, rx, &mut batch);
        drop_abandoned(&mut batch);
        if let Err(refused) = health.check_floor() {
            fail_all(&mut batch, &refused, health);
            continue;
        }
        let (jobs, started) = (batch.len(), std::time::Instant::now());
        let committed = commit_sqlite(&mut statements, &mut batch);
        crate::metrics::process().commit(jobs, started.elapsed(), committed.is_ok());
        match committed {
            Ok(()) => health.write_committed(),
            Err(e) => {
                fail_all(&mut batch, &e, health);
                return Some(e);
            }
        }
    }
    None
}

/// Runs a batch in one transaction. An error here (begin, audit, commit)
/// fails the whole batch; a job's own failure only that job.
///
/// Jobs almost never fail (a failure is a lost compare-and-set race or a
/// violated constraint), so the batch first runs without savepoints: a
/// savepoint per job makes SQLite copy every page a job touches into a
/// statement journal, and the jobs of a batch all touch the same last pages of
/// the same tables. If any job fails, the whole transaction is rolled back
/// and the batch runs again with a savepoint per job, so that only the failing
/// job is undone and the others commit as they would have alone.
pub(super) fn commit_sqlite(statements: &mut SqliteStatements<'_>, batch: &mut Vec<Queued>) -> Result<(), StoreError> {
    let conn = statements.conn();
    run_cached(conn, "BEGIN IMMEDIATE")?;
    let outcomes = match run_all_sqlite(statements, batch) {
        Ok(()) => batch.iter().map(|_| Ok(())).collect(),
        // Full, I/O error, busy: SQLite may already have rolled the whole
        // transaction back, and no job could succeed alone.
        Err(e) if e.fault().is_some() => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
        Err(_) => {
            run_cached(conn, "ROLLBACK")?;
            run_cached(conn, "BEGIN IMMEDIATE")?;
            batch
                .iter()
                .map(|queued| run_job_sqlite(statements, &queued.job))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let events = audit_of_succeeded(batch, &outcomes);
    super::audit::append_rusqlite(conn, &events)?;
    if let Err(e) = run_cached(conn, "COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e);
    }
    answer_all(batch, outcomes);
    Ok(())
}

/// Every statement of every job, in order, stopping at the first failure.
pub(super) fn run_all_sqlite(statements: &mut SqliteStatements<'_>, batch: &[Queued]) -> Result<(), StoreError> {
    batch
        .iter()
        .flat_map(|queued| &queued.job.ops)
        .try_for_each(|op| op.run_rusqlite(statements))
}

/// The job's own result inside; the outer error only if the savepoint
/// machinery itself failed.
pub(super) fn run_job_sqlite(
    statements: &mut SqliteStatements<'_>,
    job: &WriteJob,
) -> Result<Result<(), StoreError>, StoreError> {
    let conn = statements.conn();
    run_cached(conn, "SAVEPOINT pw_job")?;
    let mut result = Ok(());
    for op in &job.ops {
        if let Err(e) = op.run_rusqlite(statements) {
            result = Err(e);
            break;
        }
    }
    if let Err(e) = &result {
        if e.fault().is_some() {
            // The storage failed, not the job (see `commit_sqlite`).
            return Err(e.shared());
        }
        conn.execute_batch("ROLLBACK TO SAVEPOINT pw_job")
            .map_err(sqlite_error)?;
    }
    run_cached(conn, "RELEASE SAVEPOINT pw_job")?;
    Ok(result)
}

/// Transaction control through the statement cache: parsed once, not per job.
pub(super) fn run_cached(conn: &rusqlite::Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(drop)
        .map_err(sqlite_error)
}
