//! Migrations that move data: a database populated before them keeps every
//! row, on SQLite and on PostgreSQL. (The SQLite layout migrations have a
//! test of their own in `store`.)

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

use crate::support::{Db, TestDatabase};

/// Migration 11: each payment's history moves from `payment_history` rows
/// into a column of its row, in `seq` order, with text escaped; a payment
/// without history gets `[]`; the old table is gone.
async fn history_moves_into_the_payment_row(kind: Db) {
    const HISTORY_IN_PAYMENTS: i64 = 20261202000011;
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = TestDatabase::create(kind, &dir).await else {
        return;
    };
    let url = if db.url.starts_with("sqlite:") {
        format!("{}?mode=rwc", db.url)
    } else {
        db.url.clone()
    };
    let pool = AnyPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    let migrator = || -> Migrator {
        match kind {
            Db::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Db::Postgres => sqlx::migrate!("./migrations/postgres"),
        }
    };
    let full = migrator();
    let mut before = migrator();
    before.migrations = full
        .migrations
        .iter()
        .filter(|m| m.version < HISTORY_IN_PAYMENTS)
        .cloned()
        .collect();
    before.run(&pool).await.unwrap();

    for sql in [
        "INSERT INTO merchants (id, name, created_at) VALUES ('mer_1', 'M', 1)",
        "INSERT INTO payments (id, merchant_id, mode, status, amount, currency, capture_method, payment_method, \
         amount_capturable, amount_received, amount_refunded, metadata, connector, version, created_at, updated_at) \
         VALUES ('pay_1', 'mer_1', 'test', 'succeeded', 500, 'usd', 'automatic', NULL, 0, 500, 0, '{}', \
         'sandbox', 3, 1, 2), \
         ('pay_2', 'mer_1', 'test', 'requires_payment_method', 700, 'usd', 'automatic', NULL, 0, 0, 0, '{}', \
         'sandbox', 1, 1, 1)",
        // Out of order on purpose: `seq` decides.
        "INSERT INTO payment_history (payment_id, seq, at, action, from_status, to_status, outcome, amount, reason) \
         VALUES ('pay_1', 17, 2, 'capture', 'requires_capture', 'succeeded', 'succeeded', 500, 'said \"yes\"'), \
                ('pay_1', 16, 1, 'create', NULL, 'requires_confirmation', 'succeeded', NULL, NULL)",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    full.run(&pool).await.unwrap();

    let history = |id: &'static str| {
        let pool = pool.clone();
        async move {
            let (column,): (String,) = sqlx::query_as("SELECT history FROM payments WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap();
            paywarden::store::payments::parse_history(&column).unwrap()
        }
    };
    let moved = history("pay_1").await;
    let steps: Vec<_> = moved
        .iter()
        .map(|e| {
            (
                e.at.as_millis(),
                e.action.as_str(),
                e.from.map(|s| s.as_str()),
                e.to.as_str(),
                e.amount.map(|a| a.get()),
                e.reason.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (1, "create", None, "requires_confirmation", None, None),
            (
                2,
                "capture",
                Some("requires_capture"),
                "succeeded",
                Some(500),
                Some("said \"yes\"")
            ),
        ]
    );
    assert!(history("pay_2").await.is_empty());
    let gone = sqlx::query("SELECT COUNT(*) FROM payment_history")
        .fetch_one(&pool)
        .await;
    assert!(gone.is_err(), "payment_history is dropped");
    pool.close().await;
    db.drop_schema().await;
}

#[tokio::test]
async fn history_moves_into_the_payment_row_on_sqlite() {
    history_moves_into_the_payment_row(Db::Sqlite).await;
}

#[tokio::test]
async fn history_moves_into_the_payment_row_on_postgres() {
    history_moves_into_the_payment_row(Db::Postgres).await;
}
