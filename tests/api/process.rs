//! The real `paywarden` binary as an operator runs it: `serve --dev` on a
//! fresh data dir, refusal to start without configuration, graceful SIGTERM,
//! TLS versions seen by an independent client (openssl), plain HTTP only on
//! request, header read timeout, and a scan of every log line, audit entry and
//! database file for secrets and card numbers.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{client_trusting, test_pepper, Db, TestDatabase};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_paywarden");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `paywarden serve` child process with its output captured.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) port: u16,
    dir: PathBuf,
    stdout: Arc<Mutex<String>>,
    pub(crate) stderr: Arc<Mutex<String>>,
}

fn capture(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&buf);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut b = sink.lock().unwrap();
            b.push_str(&line);
            b.push('\n');
        }
    });
    buf
}

impl Server {
    pub(crate) fn start(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let port = free_port();
        // Under the usual default soft limit of open files (systemd's, most
        // shells'), which `serve` must raise itself.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "ulimit -Sn 1024 && exec \"$0\" \"$@\"", BIN]);
        cmd.arg("serve")
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("PAYWARDEN_LOG", "debug")
            .env("PAYWARDEN_LOG_FORMAT", "json");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = capture(child.stdout.take().unwrap());
        let stderr = capture(child.stderr.take().unwrap());
        Server {
            child,
            port,
            dir: dir.to_path_buf(),
            stdout,
            stderr,
        }
    }

    pub(crate) async fn wait_ready(&self, client: &reqwest::Client, scheme: &str) {
        for _ in 0..200 {
            if let Ok(r) = client
                .get(format!("{scheme}://127.0.0.1:{}/healthz", self.port))
                .send()
                .await
            {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server never became ready; stderr:\n{}", self.stderr.lock().unwrap());
    }

    pub(crate) fn dev_client(&self) -> reqwest::Client {
        for _ in 0..200 {
            // Only a complete certificate: the server may still be writing the file.
            if let Ok(pem) = std::fs::read(self.dir.join("dev-tls/cert.pem")) {
                if String::from_utf8_lossy(&pem).contains("-----END CERTIFICATE-----") {
                    return client_trusting(&pem);
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("no dev certificate");
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn banner_value(&self, label: &str) -> String {
        for _ in 0..100 {
            if let Some(line) = self.stdout.lock().unwrap().lines().find(|l| l.contains(label)) {
                return line.split_whitespace().last().unwrap().to_owned();
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("no {label:?} in stdout");
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn terminate(mut self) -> (String, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            exit.success(),
            "server exited with {exit}; stderr:\n{}",
            self.stderr.lock().unwrap()
        );
        let out = self.stdout.lock().unwrap().clone();
        let err = self.stderr.lock().unwrap().clone();
        (out, err)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn cli(dir: &Path, args: &[&str], db_url: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--data-dir")
        .arg(dir)
        .arg("--dev")
        .current_dir(dir)
        .env("PAYWARDEN_LOG", "warn");
    if let Some(url) = db_url {
        cmd.arg("--database-url").arg(url);
    }
    cmd.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_bootstraps_once_with_private_files() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"], &[]);
    let client = server.dev_client();
    server.wait_ready(&client, "https").await;
    let sk = server.banner_value("Test secret key:");
    let pk = server.banner_value("Test publishable key:");
    assert!(sk.starts_with("sk_test_") && pk.starts_with("pk_test_"));
    let me: Value = client
        .get(server.url("/v1/merchant"))
        .bearer_auth(&sk)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "Demo Merchant");
    let (_, stderr) = server.terminate();
    assert!(
        stderr.contains("DEVELOPMENT MODE"),
        "development mode is flagged in the log"
    );
    for file in [
        "dev-secrets/api_key_pepper",
        "dev-tls/key.pem",
        "paywarden.db",
        "paywarden.db-wal",
    ] {
        let mode = std::fs::metadata(dir.path().join(file)).map(|m| m.permissions().mode() & 0o777);
        if let Ok(mode) = mode {
            assert_eq!(mode & 0o077, 0, "{file} is readable by others: {mode:o}");
        } else {
            assert!(file.ends_with("-wal"), "{file} missing");
        }
    }
    // Second start: same merchant, no new keys printed.
    let again = Server::start(dir.path(), &["--dev"], &[]);
    let client = again.dev_client();
    again.wait_ready(&client, "https").await;
    assert_eq!(
        client
            .get(again.url("/v1/merchant"))
            .bearer_auth(&sk)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (stdout, _) = again.terminate();
    assert!(!stdout.contains("sk_test_"), "keys are printed only on the first start");
}

#[test]
fn serve_refuses_to_start_without_configuration_and_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for item in [
        "tls.cert_file",
        "tls.key_file",
        "secrets.api_key_pepper",
        "PAYWARDEN_TLS__CERT_FILE",
    ] {
        assert!(err.contains(item), "{item} not named in: {err}");
    }
    let out = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .current_dir(dir.path())
        .env("PAYWARDEN_TLS__CERT_FILE", "/nonexistent/cert.pem")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("- tls.cert_file"),
        "configured items are not reported missing: {err}"
    );
    assert!(err.contains("tls.key_file"));
    let out = Command::new(BIN)
        .args(["serve", "--dev", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "dev mode refuses non-loopback addresses");
    std::fs::write(dir.path().join("paywarden.toml"), "listn = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--dev"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("listn"),
        "unknown config keys are named"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_loses_no_audit_entry() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"], &[]);
    let client = server.dev_client();
    server.wait_ready(&client, "https").await;
    let sk = server.banner_value("Test secret key:");
    let mut tasks = Vec::new();
    for i in 0..80 {
        let (client, url, sk) = (client.clone(), server.url("/v1/merchant"), sk.clone());
        tasks.push(tokio::spawn(async move {
            let r = if i % 4 == 0 {
                client
                    .post(url)
                    .bearer_auth(sk)
                    .json(&json!({"name": format!("Shop {i}")}))
                    .send()
                    .await
            } else {
                client.get(url).bearer_auth(sk).send().await
            };
            r.ok()
                .filter(|r| r.status() == 200)
                .map(|r| r.headers()["request-id"].to_str().unwrap().to_owned())
        }));
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let handle = std::thread::spawn(move || server.terminate());
    let mut answered = Vec::new();
    for t in tasks {
        if let Some(id) = t.await.unwrap() {
            answered.push(id);
        }
    }
    handle.join().unwrap();
    assert!(!answered.is_empty());
    let export = cli(dir.path(), &["audit", "export"], None);
    let text = String::from_utf8(export.stdout).unwrap();
    for id in &answered {
        assert!(text.contains(id.as_str()), "answered request {id} has no audit entry");
    }
    let verify = cli(dir.path(), &["audit", "verify"], None);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

fn openssl(port: u16, args: &[&str]) -> (bool, String) {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is installed");
    let _ = child.stdin.take().unwrap().write_all(b"Q\n");
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let negotiated = text.contains("Cipher is ") && !text.contains("Cipher is (NONE)");
    (negotiated, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_client_sees_only_tls12_and_tls13_with_forward_secret_aead() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev"], &[]);
    let client = server.dev_client();
    server.wait_ready(&client, "https").await;
    let (ok, text) = openssl(server.port, &["-tls1_3"]);
    assert!(ok && text.contains("TLSv1.3"), "{text}");
    let (ok, text) = openssl(server.port, &["-tls1_2"]);
    assert!(ok && text.contains("TLSv1.2"), "{text}");
    assert!(text.contains("ECDHE"), "TLS 1.2 uses ECDHE: {text}");
    // The client is told to allow old protocols; the server must refuse them.
    for old in ["-tls1_1", "-tls1"] {
        let (ok, text) = openssl(server.port, &[old, "-cipher", "DEFAULT@SECLEVEL=0"]);
        assert!(!ok, "{old} negotiated: {text}");
        // The client sent its hello (it was willing); the server answered with an alert.
        assert!(
            !text.contains("no protocols available"),
            "the client refused by itself: {text}"
        );
        assert!(
            text.contains("alert handshake failure") || text.contains("alert protocol version"),
            "{old}: {text}"
        );
    }
    for weak in ["AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA"] {
        let (ok, text) = openssl(server.port, &["-tls1_2", "-cipher", weak]);
        assert!(!ok, "non-forward-secret or non-AEAD suite {weak} negotiated: {text}");
    }
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_only_when_asked_and_slow_headers_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (pepper, _) = test_pepper();
    let server = Server::start(
        dir.path(),
        &[],
        &[
            ("PAYWARDEN_PLAIN_HTTP", "true"),
            ("PAYWARDEN_SECRETS__API_KEY_PEPPER", &pepper),
            ("PAYWARDEN_VAULT__KEK", &pepper),
            ("PAYWARDEN_VAULT__FINGERPRINT_KEY", &pepper),
            ("PAYWARDEN_LIMITS__HEADER_READ_TIMEOUT_SECS", "1"),
        ],
    );
    let client = reqwest::Client::new();
    server.wait_ready(&client, "http").await;
    // A client that never finishes its headers is disconnected.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "connection with unfinished headers was not closed"
    );
    let (_, stderr) = server.terminate();
    assert!(stderr.contains("PLAIN HTTP"), "plain HTTP is warned about: {stderr}");
    // The open-files limit was raised to the hard limit, and said so.
    let raised = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"].as_str().is_some_and(|m| m.contains("RLIMIT_NOFILE")))
        .unwrap_or_else(|| panic!("no open-files limit line: {stderr}"));
    assert_eq!(raised["soft_before"], 1024, "{raised}");
    assert_eq!(raised["soft_now"], raised["hard"], "{raised}");
    assert!(
        stderr.contains("\"max_connections\":4096"),
        "the connection limit is logged: {stderr}"
    );
}

async fn secrets_never_reach_logs_audit_or_database(kind: Db) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = TestDatabase::create(kind, &dir).await else {
        return;
    };
    let server = Server::start(dir.path(), &["--dev", "--database-url", &db.url], &[]);
    let client = server.dev_client();
    server.wait_ready(&client, "https").await;
    let sk = server.banner_value("Test secret key:");
    let pk = server.banner_value("Test publishable key:");
    let merchant = server.banner_value("Demo merchant created:");
    let rk_out = cli(
        dir.path(),
        &[
            "key",
            "create",
            "--merchant",
            &merchant,
            "--kind",
            "restricted",
            "--permission",
            "payments:read",
            "--json",
        ],
        Some(&db.url),
    );
    let rk: Value = serde_json::from_slice(&rk_out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&rk_out.stderr)));
    let rk = rk["secret"].as_str().unwrap().to_owned();
    let cards = [
        "4242424242424242",
        "5555555555554444",
        "378282246310005",
        "4000 0566 5566 5556",
    ];
    let card = cards[0];
    let wrong_key = format!("{}X", &sk[..sk.len() - 1]);
    for (i, c) in cards.iter().enumerate() {
        let enc = c.replace(' ', "%20");
        let _ = client
            .get(server.url(&format!("/v1/api_keys/{enc}")))
            .bearer_auth(&sk)
            .send()
            .await
            .unwrap();
        let _ = client
            .get(server.url(&format!("/v1/api_keys?starting_after={enc}")))
            .bearer_auth(&rk)
            .send()
            .await
            .unwrap();
        let _ = client
            .post(server.url("/v1/merchant"))
            .bearer_auth(&sk)
            .json(&json!({"name": format!("Shop {i}"), "card": {"number": c, "cvc": "123"}}))
            .send()
            .await
            .unwrap();
        let _ = client
            .post(server.url("/v1/merchant"))
            .bearer_auth(&sk)
            .json(&json!({ *c: c }))
            .send()
            .await
            .unwrap();
        let _ = client
            .post(server.url("/v1/merchant"))
            .bearer_auth(&sk)
            .header("content-type", "application/json")
            .body(format!("{{\"name\": {c}"))
            .send()
            .await
            .unwrap();
        let _ = client
            .get(server.url("/v1/merchant"))
            .bearer_auth(&sk)
            .header("user-agent", format!("agent {c} {sk}"))
            .send()
            .await
            .unwrap();
        let _ = client
            .get(server.url(&format!("/v1/nope/{enc}?card={enc}")))
            .bearer_auth(&sk)
            .send()
            .await
            .unwrap();
    }
    for c in &cards {
        let body = json!({"card": {"number": c, "exp_month": 12, "exp_year": 2034, "cvc": if c.starts_with('3') { "7391" } else { "739" }}});
        let r = client
            .post(server.url("/v1/tokens"))
            .bearer_auth(&pk)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "tokenizing with the publishable key");
    }
    for presented in [wrong_key.as_str(), card, &format!("Bearer {pk}")] {
        let _ = client
            .get(server.url("/v1/merchant"))
            .bearer_auth(presented)
            .send()
            .await
            .unwrap();
    }
    let _ = client
        .get(server.url("/v1/merchant"))
        .bearer_auth(&pk)
        .send()
        .await
        .unwrap();
    let (stdout, stderr) = server.terminate();
    assert_eq!(
        stdout.matches(&sk).count(),
        1,
        "the secret key is printed exactly once, on stdout"
    );

    let export = cli(dir.path(), &["audit", "export"], Some(&db.url));
    let audit = String::from_utf8(export.stdout).unwrap();
    assert!(audit.lines().count() > 20, "audit export has the activity");
    let mut haystacks = vec![("log", stderr.clone()), ("audit", audit)];
    if kind == Db::Sqlite {
        for f in ["paywarden.db", "paywarden.db-wal"] {
            if let Ok(bytes) = std::fs::read(dir.path().join(f)) {
                haystacks.push((f, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    } else {
        let store = paywarden::store::Store::open(&db.url, &Default::default())
            .await
            .unwrap();
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT CAST(row_to_json(t) AS TEXT) FROM (SELECT * FROM api_keys) t \
            UNION ALL SELECT CAST(row_to_json(a) AS TEXT) FROM (SELECT * FROM audit_log) a \
            UNION ALL SELECT CAST(row_to_json(m) AS TEXT) FROM (SELECT * FROM merchants) m",
        )
        .fetch_all(store.reader())
        .await
        .unwrap();
        haystacks.push((
            "database",
            rows.into_iter().map(|(r,)| r).collect::<Vec<_>>().join("\n"),
        ));
        store.close().await;
    }
    let secrets: Vec<String> = [
        sk.clone(),
        pk.clone(),
        rk.clone(),
        wrong_key.clone(),
        sk[8..].to_owned(),
    ]
    .into_iter()
    .chain(cards.iter().map(|c| c.replace(' ', "")))
    .chain(cards.iter().map(|c| c.to_string()))
    .collect();
    for (name, text) in &haystacks {
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "{name} contains a secret or card number ({}…)",
                &s[..6]
            );
        }
    }
    assert!(stderr.lines().count() > 5, "the log was captured");
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_audit_or_database_sqlite() {
    secrets_never_reach_logs_audit_or_database(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_audit_or_database_postgres() {
    secrets_never_reach_logs_audit_or_database(Db::Postgres).await;
}
