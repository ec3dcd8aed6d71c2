//! The PostgreSQL connection over TLS with a verified certificate: the store
//! connects with `sslmode=verify-full` to a server whose certificate chains to
//! the given root (the connection is encrypted, as the server itself reports),
//! refuses a server whose certificate does not, and the operator commands
//! (like `serve`) refuse a remote PostgreSQL URL that does not demand it.
//!
//! Uses the local PostgreSQL's own certificate (Debian's: `ssl = on` with the
//! "snakeoil" certificate for `localhost`); without TLS on that server these
//! tests print a loud SKIPPED line, and fail when `REQUIRE_POSTGRES=1`.

use std::process::Command;

use paywarden::store::{PoolSettings, Store};

use crate::support::{Db, TestDatabase, DEFAULT_POSTGRES_URL};

const SERVER_ROOT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
const BIN: &str = env!("CARGO_BIN_EXE_paywarden");

/// A fresh schema's URL rewritten to reach the server by the name on its
/// certificate, with `sslmode=verify-full` and `root` as the trusted CA.
async fn tls_database(dir: &tempfile::TempDir, root: &std::path::Path) -> Option<(TestDatabase, String)> {
    let base = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let required = std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let db = TestDatabase::create(Db::Postgres, dir).await?;
    let mut conn: sqlx::PgConnection = sqlx::Connection::connect(&base).await.ok()?;
    let (ssl,): (String,) = sqlx::query_as("SHOW ssl").fetch_one(&mut conn).await.ok()?;
    if ssl != "on" || !std::path::Path::new(SERVER_ROOT).exists() {
        assert!(
            !required,
            "PostgreSQL at {base} has no TLS (ssl = {ssl}) or {SERVER_ROOT} is missing"
        );
        eprintln!(
            "\n!!!! SKIPPED: PostgreSQL TLS test: the server at {base} has ssl = {ssl} / no {SERVER_ROOT} !!!!\n"
        );
        return None;
    }
    let mut url = url::Url::parse(&db.url).ok()?;
    url.set_host(Some("localhost")).ok()?;
    url.query_pairs_mut()
        .append_pair("sslmode", "verify-full")
        .append_pair("sslrootcert", &root.display().to_string());
    Some((db, url.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_reaches_postgresql_over_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, url)) = tls_database(&dir, std::path::Path::new(SERVER_ROOT)).await else {
        return;
    };
    let store = Store::open(&url, &PoolSettings::default())
        .await
        .expect("verified TLS connection");
    let (encrypted,): (bool,) = sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.reader())
        .await
        .unwrap();
    assert!(encrypted, "the server sees this connection as TLS");
    // The committers hold connections of their own (tokio-postgres): a write
    // job records what the server says of the connection that ran it.
    use paywarden::store::group_commit::WriteJob;
    use paywarden::store::write_op::WriteOp;
    let probe = WriteOp::new(
        "INSERT INTO merchants (id, name, created_at) \
         SELECT $1, CASE WHEN ssl THEN 'committer over tls' ELSE 'committer in clear' END, 0 \
         FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        vec!["mer_tlsprobe0000000000000000".into()],
    );
    store
        .group_commit()
        .run(WriteJob::new(vec![probe], vec![]))
        .await
        .unwrap();
    let (name,): (String,) = sqlx::query_as("SELECT name FROM merchants WHERE id = 'mer_tlsprobe0000000000000000'")
        .fetch_one(store.reader())
        .await
        .unwrap();
    assert_eq!(name, "committer over tls");
    store.close().await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let other_root = dir.path().join("other-ca.pem");
    std::fs::write(&other_root, other.cert.pem()).unwrap();
    let Some((db, url)) = tls_database(&dir, &other_root).await else {
        return;
    };
    let opened = Store::open(&url, &PoolSettings::default()).await;
    assert!(
        opened.is_err(),
        "a certificate that does not chain to the trusted root must not be accepted"
    );
    db.drop_schema().await;
}

#[test]
fn operator_commands_refuse_a_remote_postgresql_without_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "postgres://pw:hunter2@db.example.internal/pw",
        "postgres://pw:hunter2@db.example.internal/pw?sslmode=require",
    ] {
        let out = Command::new(BIN)
            .args(["merchant", "list", "--database-url", url, "--data-dir"])
            .arg(dir.path())
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("sslmode=verify-full"), "{url}: {err}");
        assert!(!err.contains("hunter2"), "the password is not echoed: {err}");
    }
}
