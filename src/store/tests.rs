//! Tests of the store as a whole: backends from URLs, and the migrations
//! that rebuild populated tables.

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
    let indexes: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'payments' ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap();
    let names: Vec<&str> = indexes.iter().map(|(n,)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "payments_awaiting_action",
            "payments_by_idempotency_key",
            // Migration 20261209000401: processors' webhooks find a payment by
            // its processor reference (connection-routed payments only).
            "payments_by_processor_reference",
            // Migration 20261209000403: the reconciliation job's scan.
            "payments_processing",
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
