//! A synchronous read path for the one query on every request (authentication)
//! when the backend is SQLite.
//!
//! sqlx runs each SQLite connection on its own worker thread, so every query
//! costs several cross-thread wake-ups; on a small machine those dominate the
//! price of an indexed point read. This reader runs the statement inline on
//! the calling thread instead: a few microseconds, shorter than the
//! wake-ups it replaces. Connections are read-only (WAL readers never wait for
//! the writer) and statements are constants with bound parameters.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// Read-only SQLite connections used inline.
pub struct FastReader {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for FastReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastReader")
            .field("connections", &self.conns.len())
            .finish()
    }
}

fn db_error(e: rusqlite::Error) -> StoreError {
    super::write_op::sqlite_error(e)
}

impl FastReader {
    /// Opens `count` read-only connections to the database file at `path`.
    pub fn open(path: &Path, count: usize) -> Result<Self, StoreError> {
        let mut conns = Vec::with_capacity(count);
        for _ in 0..count.max(1) {
            let conn =
                Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .map_err(db_error)?;
            conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(db_error)?;
            conns.push(Mutex::new(conn));
        }
        Ok(Self {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `read` on a free connection (or waits briefly for one).
    pub fn with<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.conns.len();
        for i in 0..n {
            if let Some(slot) = self.conns.get((start + i) % n) {
                if let Ok(conn) = slot.try_lock() {
                    return read(&conn).map_err(db_error);
                }
            }
        }
        let slot = self
            .conns
            .get(start % n)
            .ok_or_else(|| StoreError::Corrupt("no sqlite reader".into()))?;
        let conn = slot
            .lock()
            .map_err(|_| StoreError::Corrupt("sqlite reader poisoned".into()))?;
        read(&conn).map_err(db_error)
    }
}
