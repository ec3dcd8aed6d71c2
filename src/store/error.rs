//! What can go wrong in storage: each error says what to do about it
//! (retry, refuse as a duplicate or a conflict, report corruption) without
//! carrying any stored value.

use super::fault::{self};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database_url must start with sqlite:// or postgres://")]
    UnsupportedUrl,
    /// A database error that is neither a fault nor a constraint (e.g. a
    /// statement the database refuses).
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Data read back is not what this code writes, or the database file is damaged.
    #[error("stored row is not valid: {0}")]
    Corrupt(String),
    #[error("a row with this unique value already exists")]
    Duplicate,
    /// A compare-and-set write found the row changed since it was read.
    #[error("the row was changed concurrently")]
    Conflict,
    /// The storage cannot take the request now (full, unreachable, too
    /// slow): a retry may succeed ([`fault`]).
    #[error("{0}")]
    Unavailable(fault::Fault),
    /// A CHECK, NOT NULL or foreign-key constraint refused a write.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// An unclassified failure of the SQLite library.
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    /// Classifies the error: faults, duplicates and constraint violations
    /// get their own variants.
    fn from(e: sqlx::Error) -> Self {
        match fault::sqlx_class(&e) {
            fault::Class::Other => StoreError::Database(e),
            class => StoreError::classified(class, e.to_string()),
        }
    }
}

impl StoreError {
    /// Maps a unique-constraint violation to `Duplicate`, anything else as `From` does.
    pub fn from_insert(e: sqlx::Error) -> Self {
        Self::from(e)
    }

    /// The error of a classified failure with this detail (for the log).
    pub fn classified(class: fault::Class, detail: String) -> Self {
        match class {
            fault::Class::Fault(kind) => StoreError::Unavailable(fault::Fault::new(kind, detail)),
            fault::Class::Duplicate => StoreError::Duplicate,
            fault::Class::Constraint => StoreError::Constraint(detail),
            fault::Class::Corrupt => StoreError::Corrupt(detail),
            fault::Class::Other => StoreError::Other(detail),
        }
    }

    /// A storage fault, if this is one.
    pub fn fault(&self) -> Option<&fault::Fault> {
        match self {
            StoreError::Unavailable(f) => Some(f),
            _ => None,
        }
    }

    /// The same error for another caller (each job of a failed batch gets
    /// its own copy; `sqlx::Error` cannot be cloned).
    pub fn shared(&self) -> StoreError {
        match self {
            StoreError::Unavailable(f) => StoreError::Unavailable(f.clone()),
            StoreError::Duplicate => StoreError::Duplicate,
            StoreError::Conflict => StoreError::Conflict,
            StoreError::Constraint(d) => StoreError::Constraint(d.clone()),
            StoreError::Corrupt(d) => StoreError::Corrupt(d.clone()),
            other => StoreError::Other(format!("group commit failed: {other}")),
        }
    }
}
