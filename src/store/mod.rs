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
pub mod group_commit;
pub mod health;
mod hot_read;
pub mod idempotency_keys;
pub mod lockouts;
#[cfg(test)]
pub mod memory;
pub mod merchants;
pub mod payments;
pub mod pg_committer;
pub mod pg_connect;
pub mod pg_fast;
pub mod ports;
pub mod reader;
pub mod redis_buckets;
pub mod refunds;
pub mod reveal_allowances;
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
    ApiKeyStore, AuditStore, Commit, EventStore, MerchantStore, PaymentStore, RefundStore, TokenStore,
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
mod tests {
    use sqlx::any::AnyPoolOptions;
    use sqlx::Executor;

    use super::*;

    #[test]
    fn backend_follows_the_url_scheme() {
        assert_eq!(Backend::from_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::from_url("postgres://h/db").unwrap(), Backend::Postgres);
        assert!(Backend::from_url("mysql://h/db").is_err());
    }

    /// The layout migrations (7 clusters tables, 9 unclusters events, 11 moves
    /// each payment's history into its row, 12 unclusters payments, 13 keys
    /// events by merchant, 15 rewrites the rules on states) rebuild populated
    /// tables: every
    /// row and reference survives, history entries keep their order, the
    /// audit chain still verifies, and foreign keys are enforced again
    /// afterwards.
    #[tokio::test]
    async fn clustering_migration_keeps_populated_sqlite_data() {
        const CLUSTERING: i64 = 20261126000007;
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/pw.db?mode=rwc", dir.path().display());
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| Box::pin(async move { conn.execute("PRAGMA foreign_keys = ON").await.map(drop) }))
            .connect(&url)
            .await
            .unwrap();
        let full = sqlx::migrate!("./migrations/sqlite");
        let mut before = sqlx::migrate!("./migrations/sqlite");
        before.migrations = full
            .migrations
            .iter()
            .filter(|m| m.version < CLUSTERING)
            .cloned()
            .collect();
        before.run(&pool).await.unwrap();

        let seed = [
            "INSERT INTO merchants (id, name, created_at) VALUES ('mer_1', 'M', 1)",
            "INSERT INTO card_tokens (id, merchant_id, mode, brand, bin, last4, exp_month, exp_year, fingerprint, \
             kek_version, wrapped_dek, ciphertext, created_at) \
             VALUES ('tok_1', 'mer_1', 'test', 'visa', '424242', '4242', 12, 2030, 'fp', 1, 'w', 'c', 1)",
            "INSERT INTO payments (id, merchant_id, mode, status, amount, currency, capture_method, payment_method, \
             amount_capturable, amount_received, amount_refunded, metadata, connector, version, created_at, updated_at) \
             VALUES ('pay_1', 'mer_1', 'test', 'succeeded', 500, 'usd', 'automatic', 'tok_1', 0, 500, 100, '{}', \
             'sandbox', 3, 1, 2)",
            "INSERT INTO payment_history (payment_id, seq, at, action, to_status, outcome) \
             VALUES ('pay_1', 16, 1, 'create', 'requires_confirmation', 'ok'), \
                    ('pay_1', 17, 2, 'capture', 'succeeded', 'ok')",
            "INSERT INTO refunds (id, merchant_id, payment_id, mode, amount, currency, status, created_at, updated_at) \
             VALUES ('re_1', 'mer_1', 'pay_1', 'test', 100, 'usd', 'succeeded', 3, 3)",
            "INSERT INTO events (id, merchant_id, mode, type, object_id, data, created_at) \
             VALUES ('evt_1', 'mer_1', 'test', 'payment.succeeded', 'pay_1', '{}', 2)",
            "INSERT INTO webhook_endpoints (id, merchant_id, mode, url, events, status, kek_version, \
             secret_wrapped_dek, secret_ciphertext, created_at, updated_at) \
             VALUES ('we_1', 'mer_1', 'test', 'https://hooks.example/x', '[\"*\"]', 'enabled', 1, 'w', 'c', 1, 1)",
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, merchant_id, status, attempts, next_attempt_at, \
             created_at, updated_at) VALUES ('we_1', 'evt_1', 'mer_1', 'pending', 0, 2, 2, 2)",
        ];
        for sql in seed {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        // Entries as the schema of the time held them (no mode column yet).
        let mut prev = crate::domain::audit::GENESIS_HASH.to_owned();
        for seq in 1..=3_i64 {
            let event =
                crate::domain::audit::AuditEvent::new(&format!("test.{seq}"), crate::domain::audit::Outcome::Success);
            let hash = crate::domain::audit::chain_hash(seq, &event, &prev);
            sqlx::query(
                "INSERT INTO audit_log (seq, at, action, outcome, prev_hash, hash) VALUES ($1, $2, $3, 'success', $4, $5)",
            )
            .bind(seq)
            .bind(event.at.as_millis())
            .bind(&event.action)
            .bind(&prev)
            .bind(&hash)
            .execute(&pool)
            .await
            .unwrap();
            prev = hash;
        }
        sqlx::query("UPDATE audit_head SET seq = 3, hash = $1 WHERE id = 1")
            .bind(&prev)
            .execute(&pool)
            .await
            .unwrap();

        full.run(&pool).await.unwrap();

        for (table, rows) in [
            ("card_tokens", 1),
            ("payments", 1),
            ("refunds", 1),
            ("events", 1),
            ("webhook_deliveries", 1),
            ("audit_log", 3),
        ] {
            let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(n, rows, "{table}");
        }
        // Clustered by migration 7; events back to a rowid table by migration 9,
        // payments by migration 12.
        for (table, clustered) in [("card_tokens", true), ("payments", false), ("events", false)] {
            let (sql,): (String,) = sqlx::query_as("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = $1")
                .bind(table)
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(sql.ends_with("WITHOUT ROWID"), clustered, "{table}: {sql}");
        }
        let (history,): (String,) = sqlx::query_as("SELECT history FROM payments WHERE id = 'pay_1'")
            .fetch_one(&pool)
            .await
            .unwrap();
        let entries = payments::parse_history(&history).unwrap();
        let steps: Vec<_> = entries
            .iter()
            .map(|e| {
                (
                    e.at.as_millis(),
                    e.action.as_str(),
                    e.to.as_str(),
                    e.from.map(|s| s.as_str()),
                )
            })
            .collect();
        assert_eq!(
            steps,
            [
                (1, "create", "requires_confirmation", None),
                (2, "capture", "succeeded", None)
            ]
        );
        let (tables,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'payment_history'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(tables, 0, "the history table is gone");
        let violations = sqlx::query("PRAGMA foreign_key_check").fetch_all(&pool).await.unwrap();
        assert!(violations.is_empty());
        // Enforcement is back on: a refund of a payment that does not exist is refused.
        let orphan = sqlx::query(
            "INSERT INTO refunds (id, merchant_id, payment_id, mode, amount, currency, status, created_at, updated_at) \
             VALUES ('re_2', 'mer_1', 'pay_missing', 'test', 1, 'usd', 'succeeded', 3, 3)",
        )
        .execute(&pool)
        .await;
        assert!(orphan.is_err());
        // Migration 13: events are keyed by (merchant_id, id), their one index,
        // and whatever refers to an event names it with its own merchant.
        let indexes: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events' ORDER BY name")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(indexes, [("sqlite_autoindex_events_1".to_owned(),)]);
        let key: Vec<(String,)> = sqlx::query_as("SELECT name FROM pragma_index_info('sqlite_autoindex_events_1')")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(key, [("merchant_id".to_owned(),), ("id".to_owned(),)]);
        for sql in [
            "INSERT INTO merchants (id, name, created_at) VALUES ('mer_2', 'Other', 1)",
            "INSERT INTO webhook_endpoints (id, merchant_id, mode, url, events, status, kek_version, \
             secret_wrapped_dek, secret_ciphertext, created_at, updated_at) \
             VALUES ('we_2', 'mer_2', 'test', 'https://hooks.example/y', '[\"*\"]', 'enabled', 1, 'w', 'c', 1, 1)",
            // An event sharing the snapshot of an event of its own merchant.
            "INSERT INTO events (id, merchant_id, mode, type, object_id, data, snapshot_of, created_at) \
             VALUES ('evt_2', 'mer_1', 'test', 'payment.captured', 'pay_1', NULL, 'evt_1', 2)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        for (what, sql) in [
            (
                "a delivery of another merchant's event",
                "INSERT INTO webhook_deliveries (endpoint_id, event_id, merchant_id, status, attempts, \
                 next_attempt_at, created_at, updated_at) VALUES ('we_2', 'evt_1', 'mer_2', 'pending', 0, 2, 2, 2)",
            ),
            (
                "an attempt of another merchant's event",
                "INSERT INTO webhook_attempts (id, endpoint_id, event_id, merchant_id, attempt, attempted_at, \
                 duration_ms, outcome) VALUES ('wa_1', 'we_2', 'evt_1', 'mer_2', 1, 2, 1, 'failed')",
            ),
            (
                "a snapshot of another merchant's event",
                "INSERT INTO events (id, merchant_id, mode, type, object_id, data, snapshot_of, created_at) \
                 VALUES ('evt_3', 'mer_2', 'test', 'payment.captured', 'pay_1', NULL, 'evt_1', 2)",
            ),
            (
                "a refund of another merchant's payment",
                "INSERT INTO refunds (id, merchant_id, payment_id, mode, amount, currency, status, created_at, \
                 updated_at) VALUES ('re_3', 'mer_2', 'pay_1', 'test', 1, 'usd', 'succeeded', 3, 3)",
            ),
            (
                "a delivery of an event that does not exist",
                "INSERT INTO webhook_deliveries (endpoint_id, event_id, merchant_id, status, attempts, \
                 next_attempt_at, created_at, updated_at) VALUES ('we_1', 'evt_missing', 'mer_1', 'pending', 0, 2, 2, 2)",
            ),
        ] {
            assert!(sqlx::query(sql).execute(&pool).await.is_err(), "{what} was accepted");
        }
        // Migration 12: payments are keyed by (merchant_id, id) too; the read by
        // id alone (the challenge page) goes through the partial index of
        // payments with a next action, never a scan of the table.
        let indexes: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'payments' ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let names: Vec<&str> = indexes.iter().map(|(n,)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "payments_awaiting_action",
                "payments_by_idempotency_key",
                "payments_with_next_action",
                "sqlite_autoindex_payments_1"
            ]
        );
        let key: Vec<(String,)> = sqlx::query_as("SELECT name FROM pragma_index_info('sqlite_autoindex_payments_1')")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(key, [("merchant_id".to_owned(),), ("id".to_owned(),)]);
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as("EXPLAIN QUERY PLAN SELECT * FROM payments WHERE id = 'pay_1' AND next_action IS NOT NULL")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(
            plan.iter()
                .any(|(_, _, _, step)| step.contains("USING INDEX payments_with_next_action")),
            "{plan:?}"
        );
        // Migration 15: the rules on states still refuse what they refused,
        // and writing a payment, refund or delivery builds no temporary
        // B-tree (SQLite's `OpenEphemeral`, which an `IN` list of more than
        // two constants costs on every execution).
        for (what, sql) in [
            (
                "a payment in an unknown state",
                "UPDATE payments SET status = 'settled' WHERE id = 'pay_1'",
            ),
            (
                "a refund in an unknown state",
                "UPDATE refunds SET status = 'reversed' WHERE id = 're_1'",
            ),
            (
                "a delivery in an unknown state",
                "UPDATE webhook_deliveries SET status = 'lost' WHERE event_id = 'evt_1'",
            ),
        ] {
            assert!(sqlx::query(sql).execute(&pool).await.is_err(), "{what} was accepted");
        }
        let file = rusqlite::Connection::open(dir.path().join("pw.db")).unwrap();
        for (what, sql) in [
            ("payment insert", payments::INSERT_SQL.to_owned()),
            ("payment update", payments::UPDATE_SQL.to_owned()),
            ("refund insert", refunds::INSERT_SQL.to_owned()),
            ("refund settlement", refunds::SETTLE_SQL.to_owned()),
            ("delivery fan-out", webhook_deliveries::enqueue_statement(2)),
        ] {
            let mut explain = file.prepare(&format!("EXPLAIN {sql}")).unwrap();
            let mut rows = explain.raw_query();
            let mut opcodes = Vec::new();
            while let Some(row) = rows.next().unwrap() {
                opcodes.push(row.get::<_, String>(1).unwrap());
            }
            assert!(opcodes.iter().any(|op| op == "Halt"), "{what}: {opcodes:?}");
            assert!(
                !opcodes.iter().any(|op| op == "OpenEphemeral"),
                "{what} builds a temporary B-tree: {opcodes:?}"
            );
        }
        pool.close().await;

        let store = Store::open(&url, &PoolSettings::default()).await.unwrap();
        let report = crate::services::audit::verify(&store).await.unwrap();
        assert!(report.intact(), "{report:?}");
        assert!(store.applied_migrations().await.unwrap().contains(&CLUSTERING));
    }

    #[test]
    fn sqlite_urls_create_their_file() {
        assert_eq!(sqlite_url_creating_file("sqlite://a.db"), "sqlite://a.db?mode=rwc");
        assert_eq!(
            sqlite_url_creating_file("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
    }

    /// A write transaction that reads before it writes (freeze, unfreeze,
    /// revoke, …) while another connection commits in between: a CLI command
    /// while the gateway writes, or a request while the commit thread writes.
    /// It must wait for the other writer, never fail with "database is
    /// locked" (SQLite cannot wait out a read snapshot gone stale, so the
    /// write lock is taken when the transaction begins).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_that_reads_first_waits_for_another_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw.db");
        let store = Store::open(&format!("sqlite://{}", path.display()), &PoolSettings::default())
            .await
            .unwrap();
        sqlx::query("INSERT INTO merchants (id, name, created_at) VALUES ('mer_a', 'A', 0)")
            .execute(&store.writer)
            .await
            .unwrap();

        let mut tx = store.begin().await.unwrap();
        let (name,): (String,) = sqlx::query_as("SELECT name FROM merchants WHERE id = 'mer_a'")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        // Another process writes now, with SQLite's busy timeout (rusqlite's
        // default, 5 s) as every connection of ours has.
        let (done_tx, done) = std::sync::mpsc::channel();
        let other = std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&path).unwrap();
            let wrote = conn.execute(
                "INSERT INTO merchants (id, name, created_at) VALUES ('mer_b', 'B', 0)",
                [],
            );
            let _ = done_tx.send(());
            wrote
        });
        // Either the other write commits first (and ours must still work), or
        // it waits for us; give it a second to commit if it can.
        let _ = tokio::task::spawn_blocking(move || done.recv_timeout(Duration::from_secs(1)))
            .await
            .unwrap();
        sqlx::query("UPDATE merchants SET name = $1 WHERE id = 'mer_a'")
            .bind(format!("{name} frozen"))
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        other.join().unwrap().unwrap();

        let names: Vec<(String,)> = sqlx::query_as("SELECT name FROM merchants ORDER BY id")
            .fetch_all(store.reader())
            .await
            .unwrap();
        assert_eq!(names, [("A frozen".to_owned(),), ("B".to_owned(),)]);
        store.close().await;
    }
}
