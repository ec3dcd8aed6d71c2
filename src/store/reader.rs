//! Reads outside a transaction, with a client-side deadline on PostgreSQL,
//! and the pool they (and [`super::Store::begin`]) take connections from.
//!
//! `&Reader` is an sqlx executor, so store functions take it like a pool.
//! On PostgreSQL each read gets `database.read_deadline`: past it (a silent
//! peer, a partition), the read fails with a timeout and its connection is
//! detached and closed, never returned to the pool; a connection that failed
//! with an I/O error is closed too. sqlx tests every connection returned to
//! its pool with a ping that has no deadline of its own, so a connection
//! returned just as the peer fell silent keeps its pool slot for as long as
//! the peer stays silent (sqlx#4349). Therefore, once connections were given
//! up on and the database answers again, [`Reader::renew`] replaces the pool
//! with a fresh one (the old one is closed in the background): capacity
//! never stays stranded on dead connections.
//!
//! SQLite reads have no deadline (no network; SQLite's busy timeout bounds
//! its waits) and the pool is never renewed.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sqlx::any::{AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Describe, Either, Execute, Executor};

use super::fault::breaks_connection;
use super::health::Health;

/// Builds a fresh (lazily connecting) pool.
type Build = Box<dyn Fn() -> AnyPool + Send + Sync>;

/// A pool of read connections (see the module docs); cheap to clone.
#[derive(Clone)]
pub struct Reader {
    inner: Arc<Inner>,
}

struct Inner {
    pool: RwLock<AnyPool>,
    /// `None`: no deadline (SQLite).
    deadline: Option<Duration>,
    health: Arc<Health>,
    /// How to build a replacement pool (PostgreSQL).
    renew: Option<Build>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("deadline", &self.inner.deadline)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// SQLite: reads without a deadline, on a pool that is never renewed.
    pub fn unbounded(pool: AnyPool, health: Arc<Health>) -> Self {
        Self::new(pool, None, health, None)
    }

    /// PostgreSQL: reads within `deadline`; `renew` builds replacement pools.
    pub fn bounded(
        pool: AnyPool,
        deadline: Duration,
        health: Arc<Health>,
        renew: impl Fn() -> AnyPool + Send + Sync + 'static,
    ) -> Self {
        Self::new(pool, Some(deadline), health, Some(Box::new(renew)))
    }

    fn new(pool: AnyPool, deadline: Option<Duration>, health: Arc<Health>, renew: Option<Build>) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool: RwLock::new(pool),
                deadline,
                health,
                renew,
            }),
        }
    }

    /// The current pool (a handle: cheap to clone).
    pub fn pool(&self) -> AnyPool {
        self.inner
            .pool
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the pool with a fresh one (PostgreSQL; a no-op on SQLite).
    /// Connections still in use finish on the old pool, which is closed in
    /// the background; those stuck on a silent peer are abandoned with it.
    pub fn renew(&self) {
        let Some(build) = &self.inner.renew else { return };
        let fresh = build();
        let old = std::mem::replace(
            &mut *self
                .inner
                .pool
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            fresh,
        );
        tracing::warn!(
            stranded = old
                .size()
                .saturating_sub(u32::try_from(old.num_idle()).unwrap_or(u32::MAX)),
            "replaced the database connection pool after connections were given up on"
        );
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(60), old.close()).await;
        });
    }

    /// Closes the current pool, waiting for its connections to come back.
    pub async fn close(&self) {
        self.pool().close().await;
    }

    async fn acquire(&self) -> Result<PoolConnection<Any>, sqlx::Error> {
        self.pool().acquire().await
    }

    /// `read` within the deadline (`None`: it passed).
    async fn within<T>(
        &self,
        read: impl std::future::Future<Output = Result<T, sqlx::Error>>,
    ) -> Option<Result<T, sqlx::Error>> {
        match self.inner.deadline {
            None => Some(read.await),
            Some(deadline) => tokio::time::timeout(deadline, read).await.ok(),
        }
    }

    /// Returns `conn` to the pool after a read that answered; closes it
    /// instead after a passed deadline or an I/O error.
    fn finish<T>(&self, conn: PoolConnection<Any>, outcome: Option<Result<T, sqlx::Error>>) -> Result<T, sqlx::Error> {
        match outcome {
            Some(Err(e)) if breaks_connection(&e) => {
                self.discard(conn);
                Err(e)
            }
            Some(result) => result,
            None => {
                self.discard(conn);
                Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer from the database within database.read_deadline",
                )))
            }
        }
    }

    fn discard(&self, conn: PoolConnection<Any>) {
        // Detached and dropped: the socket closes now, with no exchange.
        drop(conn.detach());
        self.inner.health.connection_discarded();
    }
}

impl<'c> Executor<'c> for &'c Reader {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        // Read whole within the deadline, then handed out row by row (our
        // reads are pages, never unbounded).
        let all = async move {
            let mut conn = self.acquire().await?;
            let outcome = self
                .within((&mut *conn).fetch_many(query).try_collect::<Vec<_>>())
                .await;
            self.finish(conn, outcome)
        };
        stream::once(all)
            .flat_map(|result| match result {
                Ok(items) => stream::iter(items.into_iter().map(Ok)).left_stream(),
                Err(e) => stream::once(async move { Err(e) }).right_stream(),
            })
            .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        Box::pin(async move {
            let mut conn = self.acquire().await?;
            let outcome = self.within((&mut *conn).fetch_optional(query)).await;
            self.finish(conn, outcome)
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move {
            let mut conn = self.acquire().await?;
            let outcome = self.within((&mut *conn).prepare_with(sql, parameters)).await;
            self.finish(conn, outcome)
        })
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Any>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move {
            let mut conn = self.acquire().await?;
            let outcome = self.within((&mut *conn).describe(sql)).await;
            self.finish(conn, outcome)
        })
    }
}
