//! Pool sizes, timeouts and deadlines of the store (`[database]` in the
//! configuration), and how PostgreSQL's connections are split between the
//! pool and the write committers.

use std::time::Duration;

use super::group_commit;

/// Pool sizes, timeouts and deadlines (`[database]` in the configuration).
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Connections per process (PostgreSQL: the pool plus the committers').
    pub max_connections: u32,
    /// Longest wait for a connection of the pool (including opening one).
    pub acquire_timeout: Duration,
    /// Longest wait for a new connection of a committer.
    pub connect_timeout: Duration,
    /// PostgreSQL's own `statement_timeout` for our sessions; an idle
    /// transaction is ended by the server after twice this.
    pub statement_timeout: Duration,
    /// Client-side: from a write batch's `BEGIN` to the answer to its `COMMIT`.
    pub write_deadline: Duration,
    /// Client-side: one read (PostgreSQL).
    pub read_deadline: Duration,
    /// SQLite: writes are refused while the database's file system has less
    /// free space than this (0: no floor).
    pub min_free_bytes: u64,
    /// SQLite: caps the database at this many pages (`PRAGMA max_page_count`
    /// on the gateway's write connections; it cannot go below the size at
    /// opening). For tests of a full database; `None` in production.
    pub sqlite_max_pages: Option<u32>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            write_deadline: Duration::from_secs(10),
            read_deadline: Duration::from_secs(10),
            min_free_bytes: 0,
            sqlite_max_pages: None,
        }
    }
}

impl PoolSettings {
    pub(super) fn deadlines(&self) -> group_commit::Deadlines {
        group_commit::Deadlines {
            batch: self.write_deadline,
            connect: self.connect_timeout,
        }
    }

    /// PostgreSQL: committers holding their own connections, and the pool's
    /// share of `max_connections`.
    pub(super) fn postgres_split(&self) -> (usize, u32) {
        let committers: u32 = if self.max_connections >= 8 {
            4
        } else {
            (self.max_connections / 2).max(1)
        };
        (
            committers as usize,
            self.max_connections.saturating_sub(committers).max(1),
        )
    }
}
