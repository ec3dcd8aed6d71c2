//! Contract tests of the storage ports: the same assertions, written once
//! per port, run against every implementation: the in-memory double,
//! SQLite, and PostgreSQL when `TEST_POSTGRES_URL` is set (required, and
//! unreachable fails, when `REQUIRE_POSTGRES=1`). They are what makes the
//! double honest: a service test that passes on it passes against the
//! semantics the database has.
//!
//! A contract is an async fn generic over the store; [`contracts!`] turns
//! a list of them into one test per backend, named
//! `store::contract::<port>::<backend>::<contract>`. Each test gets a
//! fresh store: a new SQLite file, a new PostgreSQL schema.

mod api_keys;
mod audit;
mod connections;
mod events;
mod fraud;
mod fraud_signals;
mod idempotency;
mod lockouts;
mod merchants;
mod operators;
mod payments;
mod sca;
mod tokens;
mod webhook_deliveries;
mod webhook_endpoints;

use sqlx::Connection;

use super::ports::Commit;
use super::unit_of_work::UnitOfWork;
use super::{PoolSettings, Store, StoreError};
use crate::domain::ids::MerchantId;
use crate::domain::merchant::{Merchant, MerchantName};
use crate::domain::time::Timestamp;

/// One test per contract and backend (see the module docs).
macro_rules! contracts {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&crate::store::memory::MemoryStore::new()).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::store::contract::TestDb::sqlite().await;
                    super::$name(&db.store).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = crate::store::contract::TestDb::postgres().await else { return };
                    super::$name(&db.store).await;
                    db.finish().await;
                }
            )*
        }
    };
}
pub(super) use contracts;

/// A store on a fresh database, dropped by [`TestDb::finish`].
pub(super) struct TestDb {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL schema of this test, and the server's URL.
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("pw.db").display());
        let store = Store::open(&url, &PoolSettings::default()).await.unwrap();
        Self {
            store,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// `None` (with a note) without `TEST_POSTGRES_URL`, or with it
    /// unreachable unless `REQUIRE_POSTGRES=1`.
    pub async fn postgres() -> Option<Self> {
        let required = std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
        let Ok(base) = std::env::var("TEST_POSTGRES_URL") else {
            assert!(!required, "REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set");
            eprintln!("SKIPPED: PostgreSQL contract (TEST_POSTGRES_URL not set)");
            return None;
        };
        sqlx::any::install_default_drivers();
        let schema = format!(
            "pwc_{}",
            crate::domain::random::base62_string(12).unwrap().to_lowercase()
        );
        match sqlx::AnyConnection::connect(&base).await {
            Ok(mut conn) => {
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let _ = conn.close().await;
            }
            Err(e) => {
                assert!(!required, "PostgreSQL required but unreachable at {base}: {e}");
                eprintln!("SKIPPED: PostgreSQL contract: cannot reach {base} ({e})");
                return None;
            }
        }
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        let settings = PoolSettings {
            max_connections: 4,
            ..PoolSettings::default()
        };
        let store = Store::open(&url, &settings).await.unwrap();
        Some(Self {
            store,
            _dir: None,
            pg: Some((schema, base)),
        })
    }

    /// Closes the store and drops the test's schema.
    pub async fn finish(self) {
        self.store.close().await;
        if let Some((schema, base)) = &self.pg {
            if let Ok(mut conn) = sqlx::AnyConnection::connect(base).await {
                let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
        }
    }
}

/// Commits the writes `stage` adds to a new unit.
pub(super) async fn commit<S: Commit>(store: &S, stage: impl FnOnce(&mut UnitOfWork)) -> Result<(), StoreError> {
    let mut work = UnitOfWork::new();
    stage(&mut work);
    store.commit(work).await
}

/// A merchant not stored yet, with a fresh id.
pub(super) fn new_merchant(name: &str) -> Merchant {
    Merchant {
        id: MerchantId::generate().unwrap(),
        name: MerchantName::parse(name).unwrap(),
        created_at: Timestamp::from_millis(1_700_000_000_123),
        element_origins: Vec::new(),
        connector: "sandbox".to_owned(),
        live_connector: None,
        frozen: None,
    }
}

/// A merchant, stored.
pub(super) async fn stored_merchant<S: super::ports::MerchantStore + Commit>(store: &S, name: &str) -> Merchant {
    let merchant = new_merchant(name);
    commit(store, |work| store.insert_merchant(work, &merchant))
        .await
        .unwrap();
    merchant
}
