//! The `audit_log` table and its chain head (`audit_head`, one row).
//!
//! Appending advances the head with `UPDATE … RETURNING` as its first
//! statement, which takes the row lock on PostgreSQL (and the write lock on
//! SQLite): appends from every replica serialise on it, so the chain stays a
//! single line even with several gateways sharing one database.

use std::borrow::Borrow;

use sqlx::{Any, Executor};

use sqlx::AnyConnection;

use super::write_op::{Value, WriteOp};
use super::StoreError;
use crate::domain::api_key::Mode;
use crate::domain::audit::{chain_hash, AuditEvent, AuditRecord, Outcome};
use crate::domain::time::Timestamp;

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    at: i64,
    request_id: Option<String>,
    merchant_id: Option<String>,
    key_id: Option<String>,
    client_ip: Option<String>,
    user_agent: Option<String>,
    action: String,
    resource: Option<String>,
    outcome: String,
    reason: Option<String>,
    mode: Option<String>,
    prev_hash: String,
    hash: String,
}

impl Row {
    /// Rebuilds the record. An unknown outcome is kept as `failure` so that the
    /// hash check (not this decoder) reports the modification.
    fn into_record(self) -> AuditRecord {
        AuditRecord {
            seq: self.seq,
            event: AuditEvent {
                at: Timestamp::from_millis(self.at),
                request_id: self.request_id,
                merchant_id: self.merchant_id,
                key_id: self.key_id,
                client_ip: self.client_ip,
                user_agent: self.user_agent,
                action: self.action,
                resource: self.resource,
                outcome: Outcome::parse(&self.outcome).unwrap_or(Outcome::Failure),
                reason: self.reason,
                // An unknown mode reads as none, so the hash check reports it.
                mode: self.mode.as_deref().and_then(Mode::parse),
            },
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

/// Rows per multi-row INSERT: 14 parameters each, well under SQLite's and
/// PostgreSQL's parameter limits.
const ROWS_PER_INSERT: usize = 100;
const COLUMNS_PER_ROW: usize = 14;

/// `INSERT … VALUES ($1, …, $14), ($15, …)` for `rows` rows. Built only from
/// constants and the row count; every value is a bound parameter. SQLite gets
/// anonymous `?` placeholders: binding a named one makes SQLite search its
/// name list, which is quadratic over a statement of a thousand parameters.
fn insert_statement(rows: usize, positional: bool) -> String {
    let mut sql = String::from(
        "INSERT INTO audit_log (seq, at, request_id, merchant_id, key_id, client_ip, user_agent, action, \
         resource, outcome, reason, mode, prev_hash, hash) VALUES ",
    );
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..COLUMNS_PER_ROW {
            if col > 0 {
                sql.push_str(", ");
            }
            if positional {
                sql.push('?');
            } else {
                sql.push_str(&format!("${}", row * COLUMNS_PER_ROW + col + 1));
            }
        }
        sql.push(')');
    }
    sql
}

/// Appends `events` in order, chained to the current head, inside `tx`.
/// Returns the sequence number of the last entry appended.
pub async fn append<E: Borrow<AuditEvent>>(tx: &mut AnyConnection, events: &[E]) -> Result<i64, StoreError> {
    let count = i64::try_from(events.len()).map_err(|_| StoreError::Corrupt("too many audit events".into()))?;
    if count == 0 {
        return head(&mut *tx).await.map(|(seq, _)| seq);
    }
    let (last_seq, mut prev_hash): (i64, String) =
        sqlx::query_as("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
            .bind(count)
            .fetch_one(&mut *tx)
            .await?;
    let first_seq = last_seq - count + 1;
    let positional = tx.backend_name() == "SQLite";
    let mut hashes = Vec::with_capacity(events.len());
    for (seq, event) in (first_seq..).zip(events) {
        let hash = chain_hash(seq, event.borrow(), &prev_hash);
        hashes.push((seq, std::mem::replace(&mut prev_hash, hash.clone()), hash));
    }
    for (chunk, chunk_hashes) in events.chunks(ROWS_PER_INSERT).zip(hashes.chunks(ROWS_PER_INSERT)) {
        let sql = insert_statement(chunk.len(), positional);
        let mut query = sqlx::query(&sql);
        for (event, (seq, prev, hash)) in chunk.iter().zip(chunk_hashes) {
            let event = event.borrow();
            query = query
                .bind(*seq)
                .bind(event.at.as_millis())
                .bind(event.request_id.as_deref())
                .bind(event.merchant_id.as_deref())
                .bind(event.key_id.as_deref())
                .bind(event.client_ip.as_deref())
                .bind(event.user_agent.as_deref())
                .bind(event.action.as_str())
                .bind(event.resource.as_deref())
                .bind(event.outcome.as_str())
                .bind(event.reason.as_deref())
                .bind(event.mode.map(Mode::as_str))
                .bind(prev.as_str())
                .bind(hash.as_str());
        }
        query.execute(&mut *tx).await?;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev_hash)
        .execute(&mut *tx)
        .await?;
    Ok(last_seq)
}

/// [`append`] as statements, for the PostgreSQL committers' pipeline: the
/// entries chained from the head (`last_seq` is the last of
/// them; `hash` the one before the first): multi-row inserts, then the
/// head's new hash.
pub(super) fn chained_inserts(events: &[&AuditEvent], last_seq: i64, hash: &str) -> Result<Vec<WriteOp>, StoreError> {
    let count = i64::try_from(events.len()).map_err(|_| StoreError::Corrupt("too many audit events".into()))?;
    let mut prev_hash = hash.to_owned();
    let mut writes = Vec::new();
    for (chunk, first_seq) in events
        .chunks(ROWS_PER_INSERT)
        .zip((last_seq - count + 1..).step_by(ROWS_PER_INSERT))
    {
        let mut params = Vec::with_capacity(chunk.len() * COLUMNS_PER_ROW);
        for (seq, event) in (first_seq..).zip(chunk.iter().copied()) {
            let hash = chain_hash(seq, event, &prev_hash);
            let prev = std::mem::replace(&mut prev_hash, hash.clone());
            params.extend([
                Value::Int(seq),
                Value::Int(event.at.as_millis()),
                event.request_id.as_deref().into(),
                event.merchant_id.as_deref().into(),
                event.key_id.as_deref().into(),
                event.client_ip.as_deref().into(),
                event.user_agent.as_deref().into(),
                event.action.as_str().into(),
                event.resource.as_deref().into(),
                event.outcome.as_str().into(),
                event.reason.as_deref().into(),
                event.mode.map(Mode::as_str).into(),
                Value::Text(prev),
                Value::Text(hash),
            ]);
        }
        writes.push(WriteOp::new(insert_statement(chunk.len(), false), params));
    }
    writes.push(WriteOp::new(
        "UPDATE audit_head SET hash = $1 WHERE id = 1",
        vec![Value::Text(prev_hash)],
    ));
    Ok(writes)
}

/// [`append`] on the SQLite commit thread's own connection, in its open
/// transaction.
pub fn append_rusqlite<E: Borrow<AuditEvent>>(conn: &rusqlite::Connection, events: &[E]) -> Result<(), StoreError> {
    use super::write_op::sqlite_error;
    let count = i64::try_from(events.len()).map_err(|_| StoreError::Corrupt("too many audit events".into()))?;
    if count == 0 {
        return Ok(());
    }
    // Read, then written once with the new head below: the commit thread
    // holds the write lock (`BEGIN IMMEDIATE`), so nothing comes in between,
    // and SQLite runs an `UPDATE … RETURNING` through a temporary table.
    let (head_seq, mut prev_hash): (i64, String) = conn
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")
        .and_then(|mut stmt| stmt.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(sqlite_error)?;
    let first_seq = head_seq + 1;
    let last_seq = head_seq + count;
    // One prepared single-row statement: inline on this thread, a row costs
    // microseconds, and the statement is parsed once for every batch size.
    let sql = insert_statement(1, true);
    let mut stmt = conn.prepare_cached(&sql).map_err(sqlite_error)?;
    for (seq, event) in (first_seq..).zip(events) {
        let event = event.borrow();
        let hash = chain_hash(seq, event, &prev_hash);
        let prev = std::mem::replace(&mut prev_hash, hash.clone());
        stmt.execute(rusqlite::params![
            seq,
            event.at.as_millis(),
            event.request_id,
            event.merchant_id,
            event.key_id,
            event.client_ip,
            event.user_agent,
            event.action,
            event.resource,
            event.outcome.as_str(),
            event.reason,
            event.mode.map(Mode::as_str),
            prev,
            hash,
        ])
        .map_err(sqlite_error)?;
    }
    conn.prepare_cached("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1")
        .and_then(|mut stmt| stmt.execute(rusqlite::params![last_seq, &prev_hash]))
        .map_err(sqlite_error)?;
    Ok(())
}

/// The head: the last sequence number and its hash.
pub async fn head<'e>(db: impl Executor<'e, Database = Any>) -> Result<(i64, String), StoreError> {
    Ok(sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(db)
        .await?)
}

/// Up to `limit` entries with `seq > after`, in storage order (by `seq`).
pub async fn page<'e>(
    db: impl Executor<'e, Database = Any>,
    after: i64,
    limit: i64,
) -> Result<Vec<AuditRecord>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT seq, at, request_id, merchant_id, key_id, client_ip, user_agent, action, resource, outcome, \
         reason, mode, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Row::into_record).collect())
}

/// How many entries the log holds.
pub async fn count<'e>(db: impl Executor<'e, Database = Any>) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_log").fetch_one(db).await?;
    Ok(n)
}

impl super::ports::AuditStore for super::Store {
    async fn audit_head(&self) -> Result<(i64, String), StoreError> {
        head(self.reader()).await
    }

    async fn audit_page(&self, after: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        page(self.reader(), after, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_rows_chain_from_the_head_in_chunks() {
        use crate::domain::audit::Outcome;
        let events: Vec<AuditEvent> = (0..150)
            .map(|i| {
                let mut e = AuditEvent::new("test.chunk", Outcome::Success);
                e.resource = Some(format!("r{i}"));
                e
            })
            .collect();
        let refs: Vec<&AuditEvent> = events.iter().collect();
        let writes = chained_inserts(&refs, 1150, "h0").unwrap();
        assert_eq!(writes.len(), 3, "100 rows, 50 rows, the head's hash");
        assert_eq!(writes[0].params.len(), 100 * 14);
        assert_eq!(writes[1].params.len(), 50 * 14);
        // First row: seq 1001, chained to the head's hash.
        assert_eq!(writes[0].params[0], Value::Int(1001));
        assert_eq!(writes[0].params[12], Value::Text("h0".into()));
        let first_hash = chain_hash(1001, &events[0], "h0");
        assert_eq!(writes[0].params[13], Value::Text(first_hash.clone()));
        assert_eq!(writes[0].params[14 + 12], Value::Text(first_hash));
        // The second chunk goes on from the first.
        assert_eq!(writes[1].params[0], Value::Int(1101));
        assert_eq!(writes[1].params[12], writes[0].params[99 * 14 + 13]);
        // The head keeps the last entry's hash.
        assert_eq!(writes[2].params, [writes[1].params[49 * 14 + 13].clone()]);
        assert_eq!(writes[1].params[49 * 14], Value::Int(1150));
    }
}
