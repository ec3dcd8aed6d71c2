//! Storage faults: database errors classified by what a caller can do about
//! them, so that each is answered and logged under its own name.
//!
//! A [`Fault`] is a failure of the storage itself, not of the request: the
//! disk or database is full, the database cannot be reached, or it did not
//! answer within its deadline. A retry may succeed, so the API answers 503
//! `storage_unavailable` with `Retry-After`. [`FaultKind::OutcomeUnknown`] is
//! the one case where the change may have been made: the deadline passed
//! after the commit was sent. Nothing here retries a write; the client does,
//! with its `Idempotency-Key`, which finds what the first attempt committed.
//! Constraint violations and unreadable data are not faults: they stay
//! `StoreError::Constraint` and `StoreError::Corrupt` (500, a bug to fix).

use std::fmt;

/// What kind of storage fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The disk or the database is full, or below the free-space floor.
    Full,
    /// The database cannot be reached, refuses connections, or shuts down.
    Unavailable,
    /// No answer within a deadline, before anything was committed.
    Timeout,
    /// The deadline passed after the commit was sent: the change may or may
    /// not have been made.
    OutcomeUnknown,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Full => "full",
            FaultKind::Unavailable => "unavailable",
            FaultKind::Timeout => "timeout",
            FaultKind::OutcomeUnknown => "outcome_unknown",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A storage fault and its detail (for the log; never shown to clients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub detail: String,
}

impl Fault {
    pub fn new(kind: FaultKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage {}: {}", self.kind, self.detail)
    }
}

/// How a database error is to be treated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    Fault(FaultKind),
    /// A unique or primary-key violation.
    Duplicate,
    /// Another constraint (CHECK, NOT NULL, foreign key).
    Constraint,
    /// The stored data or the database file is damaged.
    Corrupt,
    /// Anything else (e.g. a bug in a statement).
    Other,
}

/// Classifies an SQLite result code (primary or extended).
pub fn sqlite_class(code: i32) -> Class {
    const CONSTRAINT_UNIQUE: i32 = 2067;
    const CONSTRAINT_PRIMARYKEY: i32 = 1555;
    if code == CONSTRAINT_UNIQUE || code == CONSTRAINT_PRIMARYKEY {
        return Class::Duplicate;
    }
    match code & 0xff {
        // SQLITE_FULL
        13 => Class::Fault(FaultKind::Full),
        // SQLITE_BUSY, SQLITE_LOCKED: another writer held the lock past busy_timeout.
        5 | 6 => Class::Fault(FaultKind::Timeout),
        // SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_PROTOCOL, SQLITE_READONLY, SQLITE_NOLFS
        10 | 14 | 15 | 8 | 22 => Class::Fault(FaultKind::Unavailable),
        // SQLITE_CORRUPT, SQLITE_NOTADB
        11 | 26 => Class::Corrupt,
        // SQLITE_CONSTRAINT
        19 => Class::Constraint,
        _ => Class::Other,
    }
}

/// Classifies a PostgreSQL SQLSTATE.
pub fn postgres_class(sqlstate: &str) -> Class {
    match sqlstate {
        "23505" => Class::Duplicate,
        // disk_full
        "53100" => Class::Fault(FaultKind::Full),
        // query_canceled (statement_timeout), lock_not_available (lock_timeout),
        // idle_in_transaction_session_timeout
        "57014" | "55P03" | "25P03" => Class::Fault(FaultKind::Timeout),
        // admin_shutdown, crash_shutdown, cannot_connect_now, database_dropped;
        // read_only_sql_transaction (a standby after a failover)
        "57P01" | "57P02" | "57P03" | "57P04" | "25006" => Class::Fault(FaultKind::Unavailable),
        // data_corrupted, index_corrupted
        "XX001" | "XX002" => Class::Corrupt,
        s if s.starts_with("08") || s.starts_with("53") => Class::Fault(FaultKind::Unavailable),
        s if s.starts_with("23") => Class::Constraint,
        _ => Class::Other,
    }
}

/// Classifies an sqlx error (either backend).
pub fn sqlx_class(e: &sqlx::Error) -> Class {
    match e {
        sqlx::Error::PoolTimedOut => Class::Fault(FaultKind::Timeout),
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => Class::Fault(FaultKind::Timeout),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Class::Fault(FaultKind::Unavailable),
        sqlx::Error::Database(db) => match db.code() {
            // PostgreSQL reports a five-character SQLSTATE, SQLite its
            // extended result code as a number of at most four digits.
            Some(code) if code.len() == 5 => postgres_class(&code),
            Some(code) => code.parse::<i32>().map_or(Class::Other, sqlite_class),
            None if db.is_unique_violation() => Class::Duplicate,
            None => Class::Other,
        },
        _ => Class::Other,
    }
}

/// A connection that answered with this error should not be used again.
pub fn breaks_connection(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_codes_are_classified() {
        assert_eq!(sqlite_class(13), Class::Fault(FaultKind::Full));
        assert_eq!(sqlite_class(5), Class::Fault(FaultKind::Timeout));
        assert_eq!(
            sqlite_class(517),
            Class::Fault(FaultKind::Timeout),
            "SQLITE_BUSY_SNAPSHOT"
        );
        assert_eq!(sqlite_class(10), Class::Fault(FaultKind::Unavailable));
        assert_eq!(
            sqlite_class(3338),
            Class::Fault(FaultKind::Unavailable),
            "SQLITE_IOERR_WRITE"
        );
        assert_eq!(sqlite_class(11), Class::Corrupt);
        assert_eq!(sqlite_class(2067), Class::Duplicate);
        assert_eq!(sqlite_class(275), Class::Constraint, "SQLITE_CONSTRAINT_CHECK");
        assert_eq!(sqlite_class(1), Class::Other);
    }

    #[test]
    fn postgres_sqlstates_are_classified() {
        assert_eq!(postgres_class("53100"), Class::Fault(FaultKind::Full));
        assert_eq!(postgres_class("57014"), Class::Fault(FaultKind::Timeout));
        assert_eq!(postgres_class("25P03"), Class::Fault(FaultKind::Timeout));
        assert_eq!(postgres_class("57P01"), Class::Fault(FaultKind::Unavailable));
        assert_eq!(postgres_class("08006"), Class::Fault(FaultKind::Unavailable));
        assert_eq!(postgres_class("53300"), Class::Fault(FaultKind::Unavailable));
        assert_eq!(postgres_class("23505"), Class::Duplicate);
        assert_eq!(postgres_class("23514"), Class::Constraint);
        assert_eq!(postgres_class("XX001"), Class::Corrupt);
        assert_eq!(postgres_class("42P01"), Class::Other);
    }

    #[test]
    fn connection_errors_are_faults() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(sqlx_class(&refused), Class::Fault(FaultKind::Unavailable));
        assert!(breaks_connection(&refused));
        let late = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert_eq!(sqlx_class(&late), Class::Fault(FaultKind::Timeout));
        assert_eq!(sqlx_class(&sqlx::Error::PoolTimedOut), Class::Fault(FaultKind::Timeout));
        assert_eq!(sqlx_class(&sqlx::Error::RowNotFound), Class::Other);
    }
}
