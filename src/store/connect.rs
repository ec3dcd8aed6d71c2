//! Opening the databases: PostgreSQL's session settings and pool, SQLite's
//! pools and its database file (created owner-only before the driver opens
//! it).

use sqlx::any::AnyPoolOptions;
use sqlx::Executor;

use super::{PoolSettings, StoreError};

/// The PostgreSQL URL with our server-side session settings added to its
/// `options` (appended to any it has): statements end after
/// `statement_timeout`, an idle transaction after twice that (a gateway that
/// vanished mid-transaction frees its locks), and the server probes an idle
/// connection with TCP keepalives (30 s idle, then every 10 s, 3 probes), so
/// it notices a gateway gone without a word. (The driver offers no
/// client-side TCP keepalive: deadlines bound every wait of ours instead.)
pub(super) fn postgres_session_url(url: &str, settings: &PoolSettings) -> Result<String, StoreError> {
    let mut parsed = url::Url::parse(url).map_err(|_| StoreError::UnsupportedUrl)?;
    let statement_ms = settings.statement_timeout.as_millis().max(1);
    let session = format!(
        "-c statement_timeout={statement_ms} -c idle_in_transaction_session_timeout={} \
         -c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3",
        statement_ms.saturating_mul(2)
    );
    parsed.query_pairs_mut().append_pair("options", &session);
    Ok(parsed.into())
}

pub(super) fn postgres_pool(max: u32, settings: &PoolSettings) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        // A ping before every checkout doubles the round trips of every
        // query; a dead connection fails its query (within the read
        // deadline) and is closed instead.
        .test_before_acquire(false)
        .acquire_timeout(settings.acquire_timeout)
}

pub(super) fn sqlite_pool(max: u32, settings: &PoolSettings) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(settings.acquire_timeout)
        // Each SQLite connection lives on its own worker thread: a ping before
        // every checkout would add a thread round trip to every query.
        .test_before_acquire(false)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // WAL lets readers proceed during a write; FULL makes every commit
                // durable across power loss; foreign keys are off by default.
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA busy_timeout = 5000").await?;
                Ok(())
            })
        })
}

/// Creates the SQLite file with owner-only permissions before SQLite does, so
/// the database (and its `-wal`/`-shm` files, which SQLite creates with the
/// database's permissions) is never readable by other users.
pub(super) fn create_private_sqlite_file(url: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let Some(path) = sqlite_path(url) else { return Ok(()) };
    if std::path::Path::new(path).exists() {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| StoreError::Corrupt(format!("cannot create the database file: {e}")))
}

/// The file path of a `sqlite://` URL (none for in-memory databases).
pub(super) fn sqlite_path(url: &str) -> Option<&str> {
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Adds `mode=rwc` so that a fresh data directory gets its database file.
pub(super) fn sqlite_url_creating_file(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}
