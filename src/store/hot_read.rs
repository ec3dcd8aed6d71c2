//! The reads on every payment (a token before an authorization, a payment
//! before a refund, capture or confirm), each on the fastest path its backend
//! has: inline on SQLite ([`super::sqlite_fast`]), through the shared
//! `tokio-postgres` clients on PostgreSQL ([`super::pg_fast`]), and through
//! the pool otherwise. One place decides which, so each table module only
//! says how a row maps.

use std::future::Future;

use super::{Store, StoreError};

/// How a row of either driver maps, for table `table` (named in errors).
pub(super) struct RowMapping<T> {
    pub table: &'static str,
    pub from_sqlite: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    pub from_postgres: fn(&tokio_postgres::Row) -> Result<T, tokio_postgres::Error>,
}

/// At most one row of `sql` (a constant with `$1..$3`) for `params`; `pool`
/// (not polled unless needed) reads it when the store has no fast path.
pub(super) async fn one<T>(
    store: &Store,
    sql: &'static str,
    params: [&str; 3],
    mapping: RowMapping<T>,
    pool: impl Future<Output = Result<Option<T>, StoreError>>,
) -> Result<Option<T>, StoreError> {
    let [a, b, c] = params;
    if let Some(fast) = store.fast_reader() {
        return fast.with(|conn| {
            let mut stmt = conn.prepare_cached(sql)?;
            let mut rows = stmt.query(rusqlite::params![a, b, c])?;
            rows.next()?.map(mapping.from_sqlite).transpose()
        });
    }
    if let Some(pg) = store.pg_fast_reader() {
        return pg
            .query_opt(sql, &[&a, &b, &c])
            .await?
            .map(|row| (mapping.from_postgres)(&row))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("{} row: {e}", mapping.table)));
    }
    pool.await
}
