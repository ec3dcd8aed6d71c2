//! The PostgreSQL committers of the group commit ([`super::group_commit`]):
//! a batch of jobs in one transaction, in two round trips.
//!
//! Each committer holds one `tokio-postgres` connection of its own and
//! *pipelines* a batch: the statements are written back to back and their
//! answers read afterwards, as the server runs them one after another, in
//! order, exactly as if each had waited for the one before. A batch is
//!
//! 1. `BEGIN`, every statement of every job in order, and the audit head's
//!    `UPDATE … RETURNING` (its row lock, taken last as before): one round
//!    trip, whatever the batch's size;
//! 2. the audit entries of the jobs that succeeded (multi-row `INSERT`s), the
//!    head's new hash and `COMMIT`: one more.
//!
//! Every statement is prepared once per connection (with the parameter types
//! sqlx would send: `INT8` and `TEXT`), so a warm batch sends only Bind and
//! Execute messages; values travel only as parameters.
//!
//! Why pipelining and not one multi-row statement per statement kind: a job
//! is a list of statements as data, some of them compare-and-set UPDATEs
//! whose per-job row count decides the job's fate, and two jobs of a batch may
//! touch the same row (a payment and its refund); a pipeline keeps each
//! statement, its order and its row count exactly as they were, for every
//! kind of job, where multi-row rewrites would need a rewrite per statement
//! kind and could not keep the row counts of jobs touching one row apart.
//! Measured (scripts/bench.sh, PostgreSQL, payment create+confirm): see
//! docs/write-path-profile.md.
//!
//! What must hold, as before: a job whose statement fails or whose
//! compare-and-set misses is undone alone and its audit entries are never
//! written. In a pipeline, the statements after a failure still reach the
//! server (and fail, the transaction being aborted, or run and are undone): so
//! when a job fails, the transaction is rolled back and the batch runs again
//! with one `SAVEPOINT` per job (one round trip per job; rare: a lost race or a
//! violated constraint), where a job's result is the first failure among its
//! statements in order. A caller is answered only once `COMMIT` is
//! acknowledged. If a statement of the second round trip fails, PostgreSQL
//! answers the `COMMIT` with a rollback: that is checked, and the batch fails.
//! A connection that fails, or a batch past its deadline, is dropped (its
//! task aborted, its socket closed), never reused; `OutcomeUnknown` once
//! `COMMIT` may have left.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use tokio::sync::{mpsc, Mutex};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Statement};

use super::batch::{answer_all, fail_all, past_deadline, take, Deadlines, Queued, WriteJob, MAX_BATCH};
use super::commit_pacing::Pacing;
use super::fault::{Fault, FaultKind};
use super::health::Health;
use super::pg_connect::{pg_error, Target};
use super::write_op::{Value, WriteOp};
use super::StoreError;
use crate::domain::audit::AuditEvent;

/// A committer's connection and its prepared statements.
struct Connection {
    client: Client,
    task: tokio::task::JoinHandle<()>,
    prepared: HashMap<String, (Vec<Type>, Statement)>,
    /// Statements the server refused to prepare in this batch, and why.
    refused: HashMap<String, StoreError>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The socket closes now, whatever exchange was under way.
        self.task.abort();
    }
}

/// Statements kept prepared per connection (the store has a few dozen, and
/// the audit insert one per row count up to its chunk).
const MAX_PREPARED: usize = 512;

/// The committer loop: takes a batch from the shared queue, commits it on
/// its own connection, answers its callers; replaces the connection after
/// any failure of a batch as a whole.
pub(super) async fn run(
    target: Arc<Target>,
    rx: Arc<Mutex<mpsc::Receiver<Queued>>>,
    deadlines: Deadlines,
    health: Arc<Health>,
    pacing: Arc<Pacing>,
) {
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    let mut conn: Option<Connection> = None;
    while take(&rx, &mut batch, Some(&pacing)).await {
        if batch.is_empty() {
            continue;
        }
        if conn.is_none() {
            match target.connect(deadlines.connect).await {
                Ok((client, task)) => {
                    conn = Some(Connection {
                        client,
                        task,
                        prepared: HashMap::new(),
                        refused: HashMap::new(),
                    })
                }
                Err(e) => {
                    fail_all(&mut batch, &e, &health);
                    continue;
                }
            }
        }
        let Some(open) = conn.as_mut() else { continue };
        let jobs: Vec<&WriteJob> = batch.iter().map(|queued| &queued.job).collect();
        let in_flight = pacing.start();
        let started = std::time::Instant::now();
        let commit_sent = AtomicBool::new(false);
        let committed = match tokio::time::timeout(deadlines.batch, commit(open, &jobs, &commit_sent)).await {
            Ok(result) => result,
            Err(_) => Err(past_deadline(commit_sent.load(Ordering::Relaxed))),
        };
        drop(jobs);
        drop(in_flight);
        crate::metrics::process().commit(batch.len(), started.elapsed(), committed.is_ok());
        match committed {
            Ok(outcomes) => {
                health.write_committed();
                answer_all(&mut batch, outcomes);
            }
            Err(e) => {
                // A connection in an unknown state is closed, not reused.
                conn = None;
                health.connection_discarded();
                tracing::error!(error = %e, jobs = batch.len(), "a write batch failed");
                fail_all(&mut batch, &e, &health);
            }
        }
    }
}

/// One reply of a pipelined statement.
enum Reply {
    /// Transaction control.
    Done,
    /// A statement's row count.
    Rows(u64),
    /// The audit head after its advance: last sequence number and hash.
    Head(i64, String),
}

type Answer = Result<Reply, StoreError>;
type Pending<'a> = Pin<Box<dyn Future<Output = Answer> + Send + 'a>>;

/// Polls `requests` in order: the first poll of each sends its messages, so
/// they leave in this order, and their answers come back in it. After that,
/// a wake-up polls from the first unanswered request up to the first one
/// still waiting (each has registered its wake-up), not all of them again.
async fn pipeline(requests: Vec<Pending<'_>>) -> Vec<Answer> {
    let total = requests.len();
    let mut requests: Vec<Option<Pending<'_>>> = requests.into_iter().map(Some).collect();
    let mut replies: Vec<Option<Answer>> = requests.iter().map(|_| None).collect();
    // Every request before `answered` has its answer; every one before
    // `sent` has been polled once.
    let (mut answered, mut sent) = (0, 0);
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (index, (slot, reply)) in requests.iter_mut().zip(replies.iter_mut()).enumerate().skip(answered) {
            if waiting && index < sent {
                continue;
            }
            if let Some(request) = slot {
                match request.as_mut().poll(cx) {
                    Poll::Ready(answer) => {
                        *reply = Some(answer);
                        *slot = None;
                    }
                    Poll::Pending => waiting = true,
                }
            }
            if !waiting {
                answered = index + 1;
            }
        }
        sent = total;
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    replies.into_iter().flatten().collect()
}

const BEGIN: &str = "BEGIN";
const HEAD_ADVANCE: &str = "UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash";

/// The batch in one transaction: the outcome of each job, or the error that
/// fails the batch as a whole. `commit_sent` says whether `COMMIT` may have left.
async fn commit(
    conn: &mut Connection,
    jobs: &[&WriteJob],
    commit_sent: &AtomicBool,
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    conn.refused.clear();
    let audit_rows: usize = jobs.iter().map(|job| job.audit.len()).sum();
    let advance = (audit_rows > 0).then(|| head_advance(audit_rows)).transpose()?;
    conn.prepare(jobs.iter().flat_map(|job| &job.ops).chain(&advance))
        .await?;
    // Round trip 1: every job, then the audit head.
    let mut requests: Vec<Pending<'_>> = vec![simple(&conn.client, BEGIN)];
    requests.extend(jobs.iter().flat_map(|job| &job.ops).map(|op| conn.execute(op)));
    requests.extend(advance.iter().map(|op| conn.head(op)));
    let mut replies = pipeline(requests).await.into_iter();
    expect_done(replies.next())?;
    let mut outcomes: Vec<Result<(), StoreError>> = jobs.iter().map(|job| outcome(job, &mut replies)).collect();
    if let Some(fault) = outcomes
        .iter()
        .find_map(|o| o.as_ref().err().filter(|e| e.fault().is_some()))
    {
        // The connection or the server failed, not a job.
        return Err(fault.shared());
    }
    let mut head = match replies.next() {
        Some(Ok(Reply::Head(seq, hash))) => Some((seq, hash)),
        Some(Err(e)) if outcomes.iter().all(Result::is_ok) => return Err(e),
        _ => None,
    };
    if outcomes.iter().any(Result::is_err) {
        (outcomes, head) = one_savepoint_per_job(conn, jobs).await?;
    }
    // Round trip 2: the audit entries of the jobs that succeeded, the head's
    // hash, COMMIT.
    let events: Vec<&AuditEvent> = jobs
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.is_ok())
        .flat_map(|(job, _)| &job.audit)
        .collect();
    let writes = match (&head, events.is_empty()) {
        (_, true) => Vec::new(),
        (Some((last_seq, hash)), false) => super::audit::chained_inserts(&events, *last_seq, hash)?,
        (None, false) => return Err(StoreError::Corrupt("the audit head did not advance".into())),
    };
    conn.prepare(writes.iter()).await?;
    let mut requests: Vec<Pending<'_>> = writes.iter().map(|op| conn.execute(op)).collect();
    requests.push(commit_request(&conn.client));
    commit_sent.store(true, Ordering::Relaxed);
    let mut replies = pipeline(requests).await;
    match replies.pop() {
        Some(Ok(_)) => {}
        Some(Err(e)) => return Err(e),
        None => return Err(StoreError::Corrupt("COMMIT went unanswered".into())),
    }
    // A failed statement before it turned the COMMIT into a rollback.
    if let Some(Err(e)) = replies.into_iter().find(Result::is_err) {
        return Err(e);
    }
    Ok(outcomes)
}

type Head = Option<(i64, String)>;

/// The batch again, from a rolled-back transaction, with one savepoint per
/// job (one round trip each): every job's own outcome, and the audit head
/// advanced for the jobs that succeeded.
async fn one_savepoint_per_job(
    conn: &mut Connection,
    jobs: &[&WriteJob],
) -> Result<(Vec<Result<(), StoreError>>, Head), StoreError> {
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut before = "ROLLBACK; BEGIN; SAVEPOINT pw_job";
    for job in jobs {
        let mut requests: Vec<Pending<'_>> = vec![simple(&conn.client, before)];
        requests.extend(job.ops.iter().map(|op| conn.execute(op)));
        let mut replies = pipeline(requests).await.into_iter();
        expect_done(replies.next())?;
        let result = outcome(job, &mut replies);
        if let Some(e) = result.as_ref().err().filter(|e| e.fault().is_some()) {
            return Err(e.shared());
        }
        before = if result.is_ok() {
            "RELEASE SAVEPOINT pw_job; SAVEPOINT pw_job"
        } else {
            "ROLLBACK TO SAVEPOINT pw_job; RELEASE SAVEPOINT pw_job; SAVEPOINT pw_job"
        };
        outcomes.push(result);
    }
    let last = if outcomes.last().is_some_and(Result::is_ok) {
        "RELEASE SAVEPOINT pw_job"
    } else {
        "ROLLBACK TO SAVEPOINT pw_job; RELEASE SAVEPOINT pw_job"
    };
    let audit_rows: usize = jobs
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.is_ok())
        .map(|(job, _)| job.audit.len())
        .sum();
    let advance = (audit_rows > 0).then(|| head_advance(audit_rows)).transpose()?;
    conn.prepare(advance.iter()).await?;
    let mut requests: Vec<Pending<'_>> = vec![simple(&conn.client, last)];
    requests.extend(advance.iter().map(|op| conn.head(op)));
    let mut replies = pipeline(requests).await.into_iter();
    expect_done(replies.next())?;
    let head = match replies.next() {
        Some(Ok(Reply::Head(seq, hash))) => Some((seq, hash)),
        Some(Err(e)) => return Err(e),
        _ => None,
    };
    Ok((outcomes, head))
}

/// A job's result from the replies to its statements (all of them are
/// consumed): the first failure in order, the row counts checked up to it.
fn outcome(job: &WriteJob, replies: &mut impl Iterator<Item = Answer>) -> Result<(), StoreError> {
    let mut result = Ok(());
    for op in &job.ops {
        let reply = replies.next();
        if result.is_ok() {
            result = match reply {
                Some(Ok(Reply::Rows(rows))) => op.check(rows),
                Some(Err(e)) => Err(e),
                _ => Err(StoreError::Corrupt("a pipelined statement went unanswered".into())),
            };
        }
    }
    result
}

fn expect_done(reply: Option<Answer>) -> Result<(), StoreError> {
    match reply {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e),
        None => Err(StoreError::Corrupt("a pipelined statement went unanswered".into())),
    }
}

fn head_advance(rows: usize) -> Result<WriteOp, StoreError> {
    let rows = i64::try_from(rows).map_err(|_| StoreError::Corrupt("too many audit events".into()))?;
    Ok(WriteOp::new(HEAD_ADVANCE, vec![Value::Int(rows)]))
}

/// A constant statement (or several) of transaction control, by the simple
/// protocol.
fn simple<'a>(client: &'a Client, sql: &'static str) -> Pending<'a> {
    Box::pin(async move {
        client
            .batch_execute(sql)
            .await
            .map(|()| Reply::Done)
            .map_err(|e| pg_error(&e))
    })
}

/// `COMMIT`: if the connection fails before its answer, the server may
/// have committed.
fn commit_request(client: &Client) -> Pending<'_> {
    Box::pin(async move {
        client.batch_execute("COMMIT").await.map(|()| Reply::Done).map_err(|e| {
            if e.as_db_error().is_some() {
                pg_error(&e)
            } else {
                StoreError::Unavailable(Fault::new(
                    FaultKind::OutcomeUnknown,
                    format!("the connection failed during COMMIT: {e}"),
                ))
            }
        })
    })
}

static NULL_INT: Option<i64> = None;
static NULL_TEXT: Option<&str> = None;

/// The parameter types sqlx would declare for `params`.
fn types(params: &[Value]) -> Vec<Type> {
    params
        .iter()
        .map(|value| match value {
            Value::Int(_) | Value::NullInt => Type::INT8,
            Value::Text(_) | Value::NullText => Type::TEXT,
        })
        .collect()
}

fn bound(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|value| -> &(dyn ToSql + Sync) {
            match value {
                Value::Int(v) => v,
                Value::Text(v) => v,
                Value::NullInt => &NULL_INT,
                Value::NullText => &NULL_TEXT,
            }
        })
        .collect()
}

impl Connection {
    /// Prepares the statements of `ops` not yet prepared with their types:
    /// one round trip for all of them, none once warm.
    async fn prepare<'o>(&mut self, ops: impl Iterator<Item = &'o WriteOp>) -> Result<(), StoreError> {
        if self.prepared.len() >= MAX_PREPARED {
            self.prepared.clear();
        }
        let mut missing: Vec<(&str, Vec<Type>)> = Vec::new();
        for op in ops {
            if self.refused.contains_key(op.sql.as_ref()) {
                continue;
            }
            let types = types(&op.params);
            let known = self.prepared.get(op.sql.as_ref()).is_some_and(|(t, _)| *t == types);
            if !known && !missing.iter().any(|(sql, t)| *sql == op.sql.as_ref() && *t == types) {
                missing.push((op.sql.as_ref(), types));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let client = &self.client;
        let statements =
            futures_util::future::join_all(missing.iter().map(|(sql, types)| client.prepare_typed(sql, types))).await;
        for ((sql, types), statement) in missing.into_iter().zip(statements) {
            match statement {
                Ok(statement) => {
                    self.prepared.insert(sql.to_owned(), (types, statement));
                }
                // The connection failed: the batch fails.
                Err(e) if e.as_db_error().is_none() => return Err(pg_error(&e)),
                // The statement is refused (a bug, or a schema it does not
                // fit): the jobs that run it fail, when they reach it.
                Err(e) => {
                    self.refused.insert(sql.to_owned(), pg_error(&e));
                }
            }
        }
        Ok(())
    }

    /// `op`'s prepared statement, or why it has none.
    fn statement(&self, op: &WriteOp) -> Result<Statement, StoreError> {
        if let Some((_, statement)) = self.prepared.get(op.sql.as_ref()) {
            return Ok(statement.clone());
        }
        Err(match self.refused.get(op.sql.as_ref()) {
            Some(refusal) => refusal.shared(),
            None => StoreError::Corrupt("a statement was not prepared".into()),
        })
    }

    /// `op` (prepared), for its row count.
    fn execute<'a>(&'a self, op: &'a WriteOp) -> Pending<'a> {
        let statement = self.statement(op);
        Box::pin(async move {
            self.client
                .execute_raw(&statement?, bound(&op.params))
                .await
                .map(Reply::Rows)
                .map_err(|e| pg_error(&e))
        })
    }

    /// The audit head's advance (prepared), for its new sequence number and hash.
    fn head<'a>(&'a self, op: &'a WriteOp) -> Pending<'a> {
        let statement = self.statement(op);
        Box::pin(async move {
            let statement = statement?;
            let read = async {
                let row = self.client.query_one(&statement, &bound(&op.params)).await?;
                Ok::<_, tokio_postgres::Error>(Reply::Head(row.try_get(0)?, row.try_get(1)?))
            };
            read.await.map_err(|e| pg_error(&e))
        })
    }
}
