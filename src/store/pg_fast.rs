//! A lean read path for the reads on every payment when the backend is
//! PostgreSQL (a token before an authorization, a payment before a refund,
//! capture or confirm): `tokio-postgres` clients that many requests share at
//! once (their queries are pipelined on the connection), with each statement
//! prepared once per connection.
//!
//! Why beside the sqlx pool: a read through sqlx's `Any` driver acquires a
//! pooled connection, converts the column descriptions of every result and
//! hops between tasks; on a two-core machine that costs more of the
//! gateway's CPU per payment than the payment's own work. The pool remains
//! for every other read.
//!
//! Faults are handled as the pool's are ([`super::reader`]): each read has
//! `database.read_deadline`; a read past it, or one whose connection failed,
//! drops that connection (its task aborted, its socket closed, never reused)
//! and is `StoreError::Unavailable`; the next read opens a new one within
//! `database.connect_timeout`. Statements are constants with bound
//! parameters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::RwLock;
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use super::fault::{Fault, FaultKind};
use super::health::Health;
use super::pg_connect::{pg_error, Target};
use super::StoreError;

/// Connections of the fast path (taken from the pool's share).
pub(super) const CONNECTIONS: usize = 2;

/// Shared `tokio-postgres` clients for the hot reads (see the module docs).
pub struct PgFastReader {
    target: Arc<Target>,
    slots: Vec<RwLock<Option<Arc<Conn>>>>,
    next: AtomicUsize,
    read_deadline: Duration,
    connect_timeout: Duration,
    health: Arc<Health>,
}

impl std::fmt::Debug for PgFastReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgFastReader")
            .field("connections", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// One connection, its socket's task and its prepared statements.
struct Conn {
    client: Client,
    task: JoinHandle<()>,
    prepared: std::sync::Mutex<HashMap<&'static str, Statement>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Conn {
    async fn statement(&self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        let known = self
            .prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(sql)
            .cloned();
        if let Some(statement) = known {
            return Ok(statement);
        }
        let statement = self.client.prepare(sql).await?;
        self.prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(sql, statement.clone());
        Ok(statement)
    }
}

impl PgFastReader {
    pub(super) fn new(
        target: Arc<Target>,
        read_deadline: Duration,
        connect_timeout: Duration,
        health: Arc<Health>,
    ) -> Self {
        Self {
            target,
            slots: (0..CONNECTIONS).map(|_| RwLock::new(None)).collect(),
            next: AtomicUsize::new(0),
            read_deadline,
            connect_timeout,
            health,
        }
    }

    /// Runs `sql` (a constant) with `params`; at most one row.
    pub async fn query_opt(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len().max(1);
        let slot = self
            .slots
            .get(index)
            .ok_or_else(|| StoreError::Corrupt("no postgres fast reader".into()))?;
        let conn = self.connection(slot).await?;
        let read = async {
            let statement = conn.statement(sql).await?;
            conn.client.query_opt(&statement, params).await
        };
        match tokio::time::timeout(self.read_deadline, read).await {
            Ok(Ok(row)) => Ok(row),
            Ok(Err(e)) => {
                if e.as_db_error().is_none() {
                    self.discard(slot, &conn).await;
                }
                Err(pg_error(&e))
            }
            Err(_) => {
                self.discard(slot, &conn).await;
                Err(StoreError::Unavailable(Fault::new(
                    FaultKind::Timeout,
                    "no answer from the database within database.read_deadline",
                )))
            }
        }
    }

    /// The slot's connection, opened if it has none.
    async fn connection(&self, slot: &RwLock<Option<Arc<Conn>>>) -> Result<Arc<Conn>, StoreError> {
        if let Some(conn) = slot.read().await.as_ref() {
            if !conn.client.is_closed() {
                return Ok(Arc::clone(conn));
            }
        }
        let mut open = slot.write().await;
        if let Some(conn) = open.as_ref() {
            if !conn.client.is_closed() {
                return Ok(Arc::clone(conn));
            }
        }
        let (client, task) = self.target.connect(self.connect_timeout).await?;
        let conn = Arc::new(Conn {
            client,
            task,
            prepared: std::sync::Mutex::new(HashMap::new()),
        });
        *open = Some(Arc::clone(&conn));
        Ok(conn)
    }

    /// Gives up `conn` (if it is still the slot's): its socket closes now.
    async fn discard(&self, slot: &RwLock<Option<Arc<Conn>>>, conn: &Arc<Conn>) {
        let mut open = slot.write().await;
        if open.as_ref().is_some_and(|current| Arc::ptr_eq(current, conn)) {
            *open = None;
        }
        conn.task.abort();
        self.health.connection_discarded();
    }
}
