//! At-least-once delivery across a crash: the real `paywarden` binary is
//! SIGKILLed while deliveries are in flight and pending, restarted on the
//! same database, and the merchant's receiver still gets every event
//! (deduplicated on the event id), on SQLite and on PostgreSQL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use paywarden::domain::api_key::Mode;
use paywarden::domain::ids::MerchantId;
use paywarden::store::{PoolSettings, Store};
use serde_json::{json, Value};

use crate::receiver::{emit, Receiver};
use crate::support::{client_trusting, test_ca, Db, TestDatabase};

const BIN: &str = env!("CARGO_BIN_EXE_paywarden");

struct Gateway {
    child: Child,
    stdout: Arc<Mutex<String>>,
}

impl Gateway {
    fn start(dir: &Path, port: u16, database_url: Option<&str>) -> Gateway {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .env("PAYWARDEN_LOG", "warn")
            .env("PAYWARDEN_WEBHOOKS__EXTRA_ROOT_CA_FILE", &test_ca().ca_file)
            .env("PAYWARDEN_WEBHOOKS__POLL_INTERVAL", "100ms")
            .env("PAYWARDEN_WEBHOOKS__LEASE", "3s")
            .env("PAYWARDEN_WEBHOOKS__RETRY_INITIAL", "200ms")
            .env("PAYWARDEN_WEBHOOKS__RETRY_MAX_INTERVAL", "1s");
        if let Some(url) = database_url {
            cmd.arg("--database-url").arg(url);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stdout);
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Gateway { child, stdout }
    }

    fn sigkill(&mut self) {
        // `Child::kill` is SIGKILL: no shutdown code runs.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_ready(dir: &Path, port: u16) -> reqwest::Client {
    for _ in 0..400 {
        if let Ok(pem) = std::fs::read(dir.join("dev-tls/cert.pem")) {
            let client = client_trusting(&pem);
            if let Ok(r) = client.get(format!("https://127.0.0.1:{port}/healthz")).send().await {
                if r.status() == 200 {
                    return client;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gateway never became ready");
}

async fn crash_and_restart_lose_no_delivery(kind: Db) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = TestDatabase::create(kind, &dir).await else {
        return;
    };
    let url = match kind {
        Db::Sqlite => None,
        Db::Postgres => Some(db.url.clone()),
    };
    let store_url = url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("paywarden.db").display()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut gateway = Gateway::start(dir.path(), port, url.as_deref());
    let client = wait_ready(dir.path(), port).await;
    let sk = {
        let text = gateway.stdout.lock().unwrap().clone();
        let line = text
            .lines()
            .find(|l| l.contains("Test secret key:"))
            .expect("dev banner")
            .to_owned();
        line.split_whitespace().last().unwrap().to_owned()
    };
    let api = |path: &str| format!("https://127.0.0.1:{port}{path}");
    let me: Value = client
        .get(api("/v1/merchant"))
        .bearer_auth(&sk)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let merchant = MerchantId::parse(me["id"].as_str().unwrap()).unwrap();

    // A slow receiver, so that deliveries are in flight when the gateway dies.
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_millis(1500));
    let created: Value = client
        .post(api("/v1/webhook_endpoints"))
        .bearer_auth(&sk)
        .json(&json!({"url": receiver.url("/hooks"), "events": ["*"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();

    let store = Store::open(&store_url, &PoolSettings::default()).await.unwrap();
    let mut expected = std::collections::HashSet::new();
    for i in 0..12 {
        let id = emit(
            &store,
            &merchant,
            Mode::Test,
            "payment.succeeded",
            json!({"id": format!("pay_{i}")}),
        )
        .await;
        expected.insert(id);
    }
    receiver.wait_for(Duration::from_secs(20), |r| !r.is_empty()).await;
    gateway.sigkill();
    let before_restart = receiver.received().len();
    assert!(
        before_restart < 12 * 2,
        "the crash came while deliveries were still due"
    );
    let pending: Vec<String> = sqlx::query_as::<_, (String,)>("SELECT status FROM webhook_deliveries")
        .fetch_all(store.reader())
        .await
        .unwrap()
        .into_iter()
        .map(|(s,)| s)
        .collect();
    assert!(
        pending.iter().any(|s| s == "pending"),
        "some deliveries were still pending at the crash: {pending:?}"
    );

    receiver.set_delay(Duration::ZERO);
    let _gateway = Gateway::start(dir.path(), port, url.as_deref());
    let got = receiver
        .wait_for(Duration::from_secs(60), |r| {
            let seen: std::collections::HashSet<String> = r.iter().map(|x| x.event_id()).collect();
            expected.is_subset(&seen)
        })
        .await;
    // Every delivery verifies; duplicates are only redeliveries of the same event.
    for r in &got {
        let event = paywarden::webhooks::verify(&r.body, &r.signature, &secret).unwrap();
        assert!(expected.contains(&event.id));
    }
    assert_eq!(receiver.event_ids(), expected);
    // The outbox settles: every delivery recorded as succeeded.
    for _ in 0..100 {
        let statuses: Vec<(String,)> = sqlx::query_as("SELECT status FROM webhook_deliveries")
            .fetch_all(store.reader())
            .await
            .unwrap();
        if statuses.len() == 12 && statuses.iter().all(|(s,)| s == "succeeded") {
            store.close().await;
            db.drop_schema().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("deliveries never all succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_delivery_sqlite() {
    crash_and_restart_lose_no_delivery(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_delivery_postgres() {
    crash_and_restart_lose_no_delivery(Db::Postgres).await;
}
