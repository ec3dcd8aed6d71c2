//! Storage: one code path over SQLite and PostgreSQL through sqlx's `Any` driver.
//!
//! Each table module offers single-query reads generic over an executor (a
//! pool) and writes as statements added to a [`unit_of_work::UnitOfWork`],
//! which services commit through the group commit; multi-step logic belongs
//! to `services`. Services reach them through the storage ports
//! ([`ports`]: one trait per aggregate, implemented by [`Store`] and, in
//! tests, by the in-memory double `memory`, both held to the same contract
//! tests). Every statement is a constant string with
//! `$n` placeholders: no SQL is ever assembled from input.
//!
//! SQLite runs in WAL mode with `synchronous=FULL` (a commit survives power
//! loss). Writes go through a single-connection pool so that writers queue in
//! process instead of spinning on `SQLITE_BUSY`, and its transactions begin
//! `IMMEDIATE` so that they wait for other processes' writers instead of
//! failing ([`Store::begin`]); reads use their own pool.
//! PostgreSQL uses one shared pool for both.

pub mod anomalies;
pub mod api_keys;
pub mod audit;
pub mod auth_state;
mod batch;
pub mod card_tokens;
mod commit_pacing;
mod connect;
#[cfg(test)]
mod contract;
mod error;
pub mod events;
pub mod fault;
pub mod fraud;
pub mod fraud_signals;
pub mod group_commit;
pub mod health;
mod hot_read;
pub mod idempotency_keys;
mod idempotent_reads;
pub mod lockouts;
#[cfg(test)]
pub mod memory;
pub mod merchants;
pub mod operators;
pub mod payments;
pub mod pg_committer;
pub mod pg_connect;
pub mod pg_fast;
pub mod ports;
pub mod processor_connections;
pub mod processor_events;
pub mod reader;
pub mod reconciliation;
pub mod redis_buckets;
pub mod refunds;
pub mod reveal_allowances;
pub mod sca;
mod settings;
pub mod sqlite_checkpointer;
pub mod sqlite_committer;
pub mod sqlite_fast;
pub mod unit_of_work;
pub mod webhook_attempts;
pub mod webhook_deliveries;
pub mod webhook_endpoints;
pub mod write_op;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::AnyConnectOptions;
use sqlx::{Any, AnyPool};

pub use error::StoreError;
pub use ports::{
    ApiKeyStore, AuditStore, AuthStore, Commit, ConnectionStore, EventStore, FraudStore, IdempotencyStore,
    LockoutStore, MerchantStore, OperatorStore, PaymentStore, RefundStore, TokenStore, WebhookDeliveryStore,
    WebhookEndpointStore,
};
pub use settings::PoolSettings;

use connect::*;

/// A write transaction; commit it or it rolls back on drop.
pub type Tx = sqlx::Transaction<'static, Any>;

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Picks the backend from a `database_url`'s scheme.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// How often [`Store::watch`] probes and measures.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// SQLite: exactly one connection, so writers queue here in order.
    /// PostgreSQL: the pool at opening (migrations); transactions use the
    /// reader's current pool.
    writer: AnyPool,
    /// Reads (with a deadline on PostgreSQL), and the current pool.
    reader: reader::Reader,
    /// What readiness reports; writers refuse below the free-space floor.
    health: std::sync::Arc<health::Health>,
    settings: std::sync::Arc<PoolSettings>,
    /// SQLite only: inline reads for the per-request authentication query.
    fast: Option<std::sync::Arc<sqlite_fast::FastReader>>,
    /// PostgreSQL: the hot reads' clients ([`pg_fast`]).
    pg_fast: Option<std::sync::Arc<pg_fast::PgFastReader>>,
    /// Small write transactions that share commits (group commit).
    group: group_commit::GroupCommit,
    /// The generation of authentication state that caches of it follow
    /// ([`auth_state`]).
    auth_state: std::sync::Arc<auth_state::AuthState>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to `url` and applies pending migrations.
    pub async fn open(url: &str, settings: &PoolSettings) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let shared_settings = std::sync::Arc::new(settings.clone());
        let store = match backend {
            Backend::Sqlite => {
                create_private_sqlite_file(url)?;
                let data_dir = sqlite_path(url).map(|p| {
                    std::path::Path::new(p)
                        .parent()
                        .map(std::path::Path::to_path_buf)
                        .unwrap_or_default()
                });
                let health = std::sync::Arc::new(health::Health::new(data_dir, settings.min_free_bytes));
                health.measure_free_space();
                let options = AnyConnectOptions::from_str(&sqlite_url_creating_file(url))?;
                let writer = sqlite_pool(1, settings).connect_with(options.clone()).await?;
                let reader = sqlite_pool(settings.max_connections.clamp(2, 4), settings)
                    .connect_with(options)
                    .await?;
                // Migrations run before the commit thread opens its connection.
                let group = group_commit::GroupCommit::start(
                    group_commit::Source::Pool(writer.clone()),
                    1,
                    settings.deadlines(),
                    std::sync::Arc::clone(&health),
                );
                Store {
                    backend,
                    writer,
                    reader: reader::Reader::unbounded(reader, std::sync::Arc::clone(&health)),
                    health,
                    settings: shared_settings,
                    fast: None,
                    pg_fast: None,
                    group,
                    auth_state: Default::default(),
                }
            }
            Backend::Postgres => {
                let session_url = postgres_session_url(url, settings)?;
                let options = AnyConnectOptions::from_str(&session_url)?;
                let (committers, pool_size) = settings.postgres_split();
                let health = std::sync::Arc::new(health::Health::new(None, 0));
                let target = std::sync::Arc::new(pg_connect::Target::from_url(&session_url)?);
                // The hot reads' connections come out of the pool's share,
                // when it has them to spare.
                let fast_connections = u32::try_from(pg_fast::CONNECTIONS).unwrap_or(u32::MAX);
                let (pool_size, pg_fast) = if pool_size > fast_connections {
                    let fast = pg_fast::PgFastReader::new(
                        std::sync::Arc::clone(&target),
                        settings.read_deadline,
                        settings.connect_timeout,
                        std::sync::Arc::clone(&health),
                    );
                    (pool_size - fast_connections, Some(std::sync::Arc::new(fast)))
                } else {
                    (pool_size, None)
                };
                let pool = postgres_pool(pool_size, settings).connect_with(options.clone()).await?;
                let group = group_commit::GroupCommit::start(
                    group_commit::Source::Postgres(target),
                    committers,
                    settings.deadlines(),
                    std::sync::Arc::clone(&health),
                );
                let renew_settings = settings.clone();
                let reader = reader::Reader::bounded(
                    pool.clone(),
                    settings.read_deadline,
                    std::sync::Arc::clone(&health),
                    move || postgres_pool(pool_size, &renew_settings).connect_lazy_with(options.clone()),
                );
                Store {
                    backend,
                    writer: pool,
                    reader,
                    health,
                    settings: shared_settings,
                    fast: None,
                    pg_fast,
                    group,
                    auth_state: Default::default(),
                }
            }
        };
        store.migrate().await?;
        let mut store = store;
        if backend == Backend::Sqlite {
            if let Some(path) = sqlite_path(url) {
                let path = std::path::Path::new(path);
                store.fast = Some(std::sync::Arc::new(sqlite_fast::FastReader::open(path, 2)?));
                store.group = group_commit::GroupCommit::start_sqlite(
                    path,
                    settings.sqlite_max_pages,
                    &settings.deadlines(),
                    std::sync::Arc::clone(&store.health),
                )?;
            }
        }
        Ok(store)
    }

    /// Keeps [`Store::health`] current until aborted: once a second it
    /// measures the free space (SQLite with a floor) and probes the database
    /// with a read (within the read deadline); while write batches fail, it
    /// sends an empty one through the group commit, whose success clears the
    /// failure; and once connections were given up on and the probe answers,
    /// it renews the pool ([`reader::Reader::renew`]).
    pub async fn watch(self) {
        loop {
            self.health.measure_free_space();
            let probe = sqlx::query("SELECT 1")
                .execute(&self.reader)
                .await
                .map_err(StoreError::from);
            self.health.probed(probe.as_ref().map(drop));
            if probe.is_ok() && self.health.take_connection_discarded() {
                self.reader.renew();
            }
            if self.health.writes_failing() {
                let _ = self.group.run(group_commit::WriteJob::default()).await;
            }
            tokio::time::sleep(WATCH_INTERVAL).await;
        }
    }

    /// What readiness reports.
    pub fn health(&self) -> &health::Health {
        &self.health
    }

    /// The settings the store was opened with.
    pub fn settings(&self) -> &PoolSettings {
        &self.settings
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&self.writer).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&self.writer).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Reads outside a transaction (an executor, like a pool).
    pub fn reader(&self) -> &reader::Reader {
        &self.reader
    }

    /// The inline SQLite reader, when the backend is SQLite.
    pub fn fast_reader(&self) -> Option<&sqlite_fast::FastReader> {
        self.fast.as_deref()
    }

    /// PostgreSQL: the hot reads' shared clients ([`pg_fast`]).
    pub fn pg_fast_reader(&self) -> Option<&pg_fast::PgFastReader> {
        self.pg_fast.as_deref()
    }

    /// The generation of authentication state, for a cache of it to follow.
    pub fn auth_state(&self) -> &std::sync::Arc<auth_state::AuthState> {
        &self.auth_state
    }

    /// Call after committing a change of a key, a merchant or a lockout and
    /// before answering it: returns once no gateway can still act on the state
    /// before the change ([`auth_state`]).
    pub async fn auth_state_changed(&self) {
        self.auth_state.changed().await;
    }

    /// Commits `work` in one transaction shared with other callers' work
    /// (group commit); returns once it is durable, or with the reason it was
    /// not written at all. An outcome that cannot be known (the database
    /// stopped answering after the commit was sent) is
    /// `StoreError::Unavailable` with `FaultKind::OutcomeUnknown`.
    pub async fn commit(&self, work: unit_of_work::UnitOfWork) -> Result<(), StoreError> {
        self.group_commit().run(work.into_job()?).await
    }

    /// The group-commit queue for small, frequent write transactions.
    pub fn group_commit(&self) -> &group_commit::GroupCommit {
        &self.group
    }

    /// Starts a write transaction, for the store's own maintenance
    /// statements only (everything else commits a `UnitOfWork`).
    ///
    /// On SQLite it begins `IMMEDIATE`, taking the write lock at once and
    /// waiting for it (busy timeout) while another connection writes: the
    /// commit thread, another gateway's, or a CLI command's. A deferred
    /// transaction that reads before it writes would instead fail with
    /// "database is locked" (`SQLITE_BUSY_SNAPSHOT`) whenever another
    /// connection committed between its read and its write, which no busy
    /// timeout can wait out.
    ///
    /// Below the free-space floor (SQLite) it is refused. On PostgreSQL,
    /// `BEGIN` must be answered within the write deadline; the statements
    /// that follow are bounded by the server's `statement_timeout`, not by
    /// a client-side deadline.
    pub(in crate::store) async fn begin(&self) -> Result<Tx, StoreError> {
        self.health.check_floor()?;
        Ok(match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let pool = self.reader.pool();
                match tokio::time::timeout(self.settings.write_deadline, pool.begin()).await {
                    Ok(tx) => tx?,
                    Err(_) => {
                        self.health.connection_discarded();
                        return Err(StoreError::Unavailable(fault::Fault::new(
                            fault::FaultKind::Timeout,
                            "BEGIN not answered within database.write_deadline",
                        )));
                    }
                }
            }
        })
    }

    /// Closes the pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    /// The versions of the applied migrations, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version")
                .fetch_all(&self.reader)
                .await?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }
}

/// Decodes a JSON text column written by this module.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(column: &str, raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|_| StoreError::Corrupt(format!("column {column} holds invalid JSON")))
}

/// Encodes a value for a JSON text column.
pub(crate) fn to_json_column<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

/// A key for keyset pagination: rows after this id, in id order.
pub type After<'a> = Option<&'a str>;

#[cfg(test)]
mod tests;
