//! Write operations as data: a constant SQL statement, its parameters, and
//! what its row count must be. A job of the group commit is a list of them,
//! so one job can run on either backend: through sqlx on PostgreSQL, and on
//! SQLite inline on the committing thread's own connection (no thread hop
//! per statement).
//!
//! Invariant: `sql` is always a constant of a store module with `$n`
//! placeholders; values travel only as parameters.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::StoreError;

/// A parameter value. NULLs carry their column type: PostgreSQL refuses a
/// text NULL for a BIGINT column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Text(String),
    NullInt,
    NullText,
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::NullInt, Value::Int)
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        v.map_or(Value::NullText, Value::Text)
    }
}

impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        v.map_or(Value::NullText, |s| Value::Text(s.to_owned()))
    }
}

impl From<&Option<String>> for Value {
    fn from(v: &Option<String>) -> Self {
        v.as_deref().into()
    }
}

/// What the number of affected rows must be.
#[derive(Debug, Clone)]
pub enum Expect {
    /// Anything.
    Any,
    /// Exactly one row, or the job fails with this error (and is rolled back).
    OneRow(Failure),
    /// Records whether exactly one row changed; never fails.
    Report(Arc<AtomicBool>),
    /// Records how many rows changed (a multi-row statement); never fails.
    Rows(Arc<AtomicU64>),
}

/// The error a failed expectation turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A compare-and-set found the row changed.
    Conflict,
    /// An insert-if-absent found the row present.
    Duplicate,
}

/// Multi-row statements, built once per row count.
///
/// A store module holds one of these as a `static` with the function that
/// builds its statement for `n` rows (from constants and `n` only); counts
/// above `max` are built on each call, as they never happen in practice.
pub struct StatementsPerCount {
    max: usize,
    build: fn(usize) -> String,
    built: std::sync::OnceLock<Vec<String>>,
}

impl StatementsPerCount {
    pub const fn new(max: usize, build: fn(usize) -> String) -> Self {
        Self {
            max,
            build,
            built: std::sync::OnceLock::new(),
        }
    }

    /// The statement for `rows` rows (at least one).
    pub fn get(&'static self, rows: usize) -> Cow<'static, str> {
        let built = self.built.get_or_init(|| (1..=self.max).map(self.build).collect());
        match built.get(rows.max(1) - 1) {
            Some(sql) => Cow::Borrowed(sql.as_str()),
            None => Cow::Owned((self.build)(rows)),
        }
    }
}

/// Row counts that multi-row statements are built for. A batch is cut into
/// chunks of at most the largest, each padded up to the smallest size that
/// holds it with rows that match nothing, so that three statements serve
/// every batch size (each connection prepares and caches them once).
pub const BATCH_SIZES: [usize; 3] = [8, 32, 128];
const LARGEST_BATCH: usize = 128;

/// One chunk of a batch: its rows are `start..start + rows`, and its
/// statement is built for `size` rows (`class` is the 1-based index of
/// `size` in [`BATCH_SIZES`], the row count to give a [`StatementsPerCount`]
/// built over the classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub start: usize,
    pub rows: usize,
    pub size: usize,
    pub class: usize,
}

/// The chunks of a batch of `n` rows.
pub fn batch_chunks(n: usize) -> impl Iterator<Item = Chunk> {
    (0..n).step_by(LARGEST_BATCH).map(move |start| {
        let rows = (n - start).min(LARGEST_BATCH);
        let (class, size) = BATCH_SIZES
            .iter()
            .copied()
            .enumerate()
            .find(|(_, size)| *size >= rows)
            .unwrap_or((BATCH_SIZES.len() - 1, LARGEST_BATCH));
        Chunk {
            start,
            rows,
            size,
            class: class + 1,
        }
    })
}

/// The size of batch class `class` (1-based), for a [`StatementsPerCount`]
/// builder.
pub fn class_size(class: usize) -> usize {
    BATCH_SIZES
        .get(class.saturating_sub(1))
        .copied()
        .unwrap_or(LARGEST_BATCH)
}

/// `(CAST($a AS T1), CAST($b AS T2), …), (…)` for `rows` rows of `types`,
/// numbered from `$first`: the body of a `VALUES` list.
pub fn values_rows(rows: usize, types: &[&str], first: usize) -> String {
    (0..rows)
        .map(|row| {
            let cells: Vec<String> = types
                .iter()
                .enumerate()
                .map(|(c, t)| format!("CAST(${} AS {t})", first + row * types.len() + c))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The row counts of the statements of a batch, read once the job is done.
#[derive(Debug, Default, Clone)]
pub struct RowCounts(Vec<Arc<AtomicU64>>);

impl RowCounts {
    /// A new counter for one more statement.
    pub fn counter(&mut self) -> Arc<AtomicU64> {
        let c = Arc::new(AtomicU64::new(0));
        self.0.push(Arc::clone(&c));
        c
    }

    /// Rows changed by all of them.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// One statement of a job.
#[derive(Debug, Clone)]
pub struct WriteOp {
    /// A constant, or built only from constants and a row count.
    pub sql: Cow<'static, str>,
    pub params: Vec<Value>,
    pub expect: Expect,
}

impl WriteOp {
    pub fn new(sql: impl Into<Cow<'static, str>>, params: Vec<Value>) -> Self {
        Self {
            sql: sql.into(),
            params,
            expect: Expect::Any,
        }
    }

    /// The job fails with `failure` unless exactly one row changes.
    pub fn expect_one(mut self, failure: Failure) -> Self {
        self.expect = Expect::OneRow(failure);
        self
    }

    /// Sets `flag` to whether exactly one row changed.
    pub fn report_to(mut self, flag: Arc<AtomicBool>) -> Self {
        self.expect = Expect::Report(flag);
        self
    }

    /// Sets `count` to the number of rows that changed (stored, not added:
    /// a batch run again after a failed job reports its last run only).
    pub fn count_to(mut self, count: Arc<AtomicU64>) -> Self {
        self.expect = Expect::Rows(count);
        self
    }

    /// Checks the row count against the expectation.
    pub(crate) fn check(&self, rows: u64) -> Result<(), StoreError> {
        match &self.expect {
            Expect::Any => Ok(()),
            Expect::OneRow(_) if rows == 1 => Ok(()),
            Expect::OneRow(Failure::Conflict) => Err(StoreError::Conflict),
            Expect::OneRow(Failure::Duplicate) => Err(StoreError::Duplicate),
            Expect::Report(flag) => {
                flag.store(rows == 1, Ordering::Relaxed);
                Ok(())
            }
            Expect::Rows(count) => {
                count.store(rows, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// Runs the statement through sqlx (PostgreSQL, or SQLite without the
    /// inline writer).
    pub(crate) async fn run_sqlx(&self, conn: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
        let mut query = sqlx::query(&self.sql);
        for value in &self.params {
            query = match value {
                Value::Int(v) => query.bind(*v),
                Value::Text(v) => query.bind(v.as_str()),
                Value::NullInt => query.bind(None::<i64>),
                Value::NullText => query.bind(None::<String>),
            };
        }
        let done = query.execute(&mut *conn).await.map_err(StoreError::from_insert)?;
        self.check(done.rows_affected())
    }

    /// Runs the statement on the connection of `statements`. Parameters are
    /// bound by their `$n` names, so reuse and order of placeholders do not
    /// matter.
    pub(crate) fn run_rusqlite(&self, statements: &mut SqliteStatements<'_>) -> Result<(), StoreError> {
        let rows = match &self.sql {
            Cow::Borrowed(text) => {
                let prepared = statements.prepared(text)?;
                bind_and_execute(&mut prepared.statement, &prepared.positions, &self.params)?
            }
            Cow::Owned(text) => {
                let mut statement = statements.conn.prepare_cached(text).map_err(sqlite_error)?;
                let positions = sqlite_positions::of(text, &statement)?;
                bind_and_execute(&mut statement, &positions, &self.params)?
            }
        };
        self.check(u64::try_from(rows).unwrap_or(0))
    }
}

/// Binds `params` (`positions[i]` is the value of parameter index `i + 1`),
/// runs the statement and clears its bindings again. Returns the row count.
fn bind_and_execute(
    statement: &mut rusqlite::Statement<'_>,
    positions: &[usize],
    params: &[Value],
) -> Result<usize, StoreError> {
    for (index, position) in positions.iter().enumerate() {
        let Some(value) = params.get(*position) else {
            return Err(StoreError::Corrupt(format!(
                "statement parameter {} has no value",
                index + 1
            )));
        };
        let index = index + 1;
        let bound = match value {
            Value::Int(v) => statement.raw_bind_parameter(index, v),
            Value::Text(v) => statement.raw_bind_parameter(index, v.as_str()),
            Value::NullInt | Value::NullText => statement.raw_bind_parameter(index, rusqlite::types::Null),
        };
        bound.map_err(sqlite_error)?;
    }
    let rows = statement.raw_execute().map_err(sqlite_error);
    statement.clear_bindings();
    rows
}

/// The committing thread's prepared statements, on its one connection.
///
/// Statement texts are constants (`&'static str`), so a statement is found
/// by the address and length of its text: rusqlite's own cache hashes the
/// whole text twice per use (taking the statement out and putting it back),
/// and a payment's insert alone is 700 characters. Texts built at run time
/// (`Cow::Owned`) go through rusqlite's cache.
pub(crate) struct SqliteStatements<'c> {
    conn: &'c rusqlite::Connection,
    by_text: std::collections::HashMap<(usize, usize), Prepared<'c>>,
}

struct Prepared<'c> {
    statement: rusqlite::Statement<'c>,
    positions: std::rc::Rc<[usize]>,
}

/// Statements kept at most; the store has a few dozen constant texts.
const MAX_PREPARED: usize = 256;

impl<'c> SqliteStatements<'c> {
    pub(crate) fn new(conn: &'c rusqlite::Connection) -> Self {
        Self {
            conn,
            by_text: std::collections::HashMap::new(),
        }
    }

    pub(crate) fn conn(&self) -> &'c rusqlite::Connection {
        self.conn
    }

    fn prepared(&mut self, text: &'static str) -> Result<&mut Prepared<'c>, StoreError> {
        let key = (text.as_ptr() as usize, text.len());
        if !self.by_text.contains_key(&key) {
            if self.by_text.len() >= MAX_PREPARED {
                self.by_text.clear();
            }
            let statement = self.conn.prepare(text).map_err(sqlite_error)?;
            let positions = sqlite_positions::of(text, &statement)?;
            self.by_text.insert(key, Prepared { statement, positions });
        }
        self.by_text
            .get_mut(&key)
            .ok_or_else(|| StoreError::Corrupt("prepared statement vanished".into()))
    }
}

/// Which `$n` each SQLite parameter index stands for, per statement text.
///
/// SQLite numbers named parameters such as `$3` in the order they first
/// appear, and finding the name of an index walks a list: per statement,
/// quadratic in its parameters (a multi-row insert has dozens). The mapping
/// of a statement text never changes, so the committing thread works it out
/// once per text.
mod sqlite_positions {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;

    use super::StoreError;

    /// Statement texts remembered; the store has a few dozen.
    const MAX_TEXTS: usize = 512;

    thread_local! {
        static KNOWN: RefCell<HashMap<String, Rc<[usize]>>> = RefCell::new(HashMap::new());
    }

    /// For each parameter index of `stmt` (prepared from `sql`), the 0-based
    /// position of its value (`$n` → `n - 1`).
    pub(super) fn of(sql: &str, stmt: &rusqlite::Statement<'_>) -> Result<Rc<[usize]>, StoreError> {
        if let Some(known) = KNOWN.with(|k| k.borrow().get(sql).cloned()) {
            return Ok(known);
        }
        let positions = (1..=stmt.parameter_count())
            .map(|index| {
                stmt.parameter_name(index)
                    .and_then(|name| name.strip_prefix('$'))
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| n.checked_sub(1))
                    .ok_or_else(|| StoreError::Corrupt(format!("statement parameter {index} is not $n")))
            })
            .collect::<Result<Rc<[usize]>, _>>()?;
        KNOWN.with(|k| {
            let mut known = k.borrow_mut();
            if known.len() >= MAX_TEXTS {
                known.clear();
            }
            known.insert(sql.to_owned(), Rc::clone(&positions));
        });
        Ok(positions)
    }
}

/// Maps a rusqlite error by its result code ([`super::fault`]): a unique
/// violation is `Duplicate`, "database or disk is full" a `Full` fault, etc.
pub(crate) fn sqlite_error(e: rusqlite::Error) -> StoreError {
    let class = match &e {
        rusqlite::Error::SqliteFailure(f, _) => super::fault::sqlite_class(f.extended_code),
        _ => super::fault::Class::Other,
    };
    StoreError::classified(class, format!("sqlite: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_cut_into_padded_chunks_of_a_few_sizes() {
        let chunks = |n| {
            batch_chunks(n)
                .map(|c| (c.start, c.rows, c.size, c.class))
                .collect::<Vec<_>>()
        };
        assert!(chunks(0).is_empty());
        assert_eq!(chunks(1), [(0, 1, 8, 1)]);
        assert_eq!(chunks(8), [(0, 8, 8, 1)]);
        assert_eq!(chunks(9), [(0, 9, 32, 2)]);
        assert_eq!(chunks(128), [(0, 128, 128, 3)]);
        assert_eq!(chunks(300), [(0, 128, 128, 3), (128, 128, 128, 3), (256, 44, 128, 3)]);
        assert_eq!((1..=3).map(class_size).collect::<Vec<_>>(), BATCH_SIZES);
        assert_eq!(
            values_rows(2, &["TEXT", "BIGINT"], 3),
            "(CAST($3 AS TEXT), CAST($4 AS BIGINT)), (CAST($5 AS TEXT), CAST($6 AS BIGINT))"
        );
    }

    #[test]
    fn statements_per_count_are_built_once_up_to_their_maximum() {
        fn build(rows: usize) -> String {
            format!("rows {rows}")
        }
        static STATEMENTS: StatementsPerCount = StatementsPerCount::new(3, build);
        assert!(matches!(STATEMENTS.get(2), Cow::Borrowed("rows 2")));
        assert!(matches!(STATEMENTS.get(0), Cow::Borrowed("rows 1")));
        let above = STATEMENTS.get(4);
        assert!(matches!(above, Cow::Owned(_)));
        assert_eq!(above, "rows 4");
    }

    #[test]
    fn parameters_bind_by_name_whatever_their_order() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a BIGINT, b TEXT, c BIGINT)")
            .unwrap();
        let mut statements = SqliteStatements::new(&conn);
        WriteOp::new(
            "INSERT INTO t (b, a, c) VALUES ($2, $1, $1)",
            vec![7.into(), "x".into()],
        )
        .run_rusqlite(&mut statements)
        .unwrap();
        let row: (i64, String, i64) = conn
            .query_row("SELECT a, b, c FROM t", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        assert_eq!(row, (7, "x".to_owned(), 7));
        // The second run of the same text reuses the prepared statement and
        // its parameter positions.
        WriteOp::new(
            "INSERT INTO t (b, a, c) VALUES ($2, $1, $1)",
            vec![8.into(), "y".into()],
        )
        .run_rusqlite(&mut statements)
        .unwrap();
        let second: (i64, i64) = conn
            .query_row("SELECT a, c FROM t WHERE b = 'y'", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(second, (8, 8));
        let missing = WriteOp::new("UPDATE t SET a = $1 WHERE b = $2", vec![1.into(), "nope".into()])
            .expect_one(Failure::Conflict)
            .run_rusqlite(&mut statements);
        assert!(matches!(missing, Err(StoreError::Conflict)));
    }
}
