//! A production deployment in a temp dir: replicas of the real `paywarden
//! serve` (no `--dev`) sharing one database and one `paywarden.toml`, and
//! an operator host (the same directory, `paywarden` on `PATH`) where the
//! documented commands run as written. A `[vault]` change is applied the way
//! docs/operations.md says: the configuration changes, then the replicas restart one
//! by one (SIGTERM, wait for the exit, start, wait until it answers).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::steps::SECRETS_DIR;
use crate::support::{client_trusting, test_ca};

const BIN: &str = env!("CARGO_BIN_EXE_paywarden");

struct Replica {
    port: u16,
    child: Option<Child>,
    /// Every start appends its output here.
    log: PathBuf,
}

pub struct Fleet {
    root: PathBuf,
    /// The configuration without its `[vault]` table.
    base: String,
    replicas: Vec<Replica>,
    /// Trusts the replicas' certificate (the tests' CA).
    pub client: reqwest::Client,
}

impl Fleet {
    /// Prepares `replicas` gateways on `database_url` under `root`, with a
    /// pepper and fingerprint key made by `paywarden secrets generate`; the
    /// vault table comes from [`Fleet::set_vault`].
    pub fn new(root: &Path, database_url: &str, replicas: usize) -> Fleet {
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(BIN, bin.join("paywarden")).unwrap();
        std::fs::create_dir_all(root.join("secrets")).unwrap();
        let ca = test_ca();
        let base = format!(
            "data_dir = {data:?}\n\
             database_url = {database_url:?}\n\
             [tls]\ncert_file = {cert:?}\nkey_file = {key:?}\n\
             [secrets]\napi_key_pepper_file = {pepper:?}\n\
             [limits]\nshutdown_grace_secs = 10\n\
             [webhooks]\nextra_root_ca_file = {ca_file:?}\npoll_interval = \"100ms\"\n\
             retry_initial = \"200ms\"\nretry_max_interval = \"1s\"\nlease = \"15s\"\n",
            data = root.join("data"),
            cert = ca.cert_file,
            key = ca.key_file,
            pepper = root.join("secrets/api_key_pepper"),
            ca_file = ca.ca_file,
        );
        let replicas = (0..replicas)
            .map(|n| Replica {
                port: free_port(),
                child: None,
                log: root.join(format!("replica-{n}.log")),
            })
            .collect();
        let fleet = Fleet {
            root: root.to_path_buf(),
            base,
            replicas,
            client: client_trusting(ca.ca_pem.as_bytes()),
        };
        for name in ["api_key_pepper", "fingerprint_key", "kek-v1"] {
            let path = fleet.secret_path(name);
            fleet.sh_ok(&format!("paywarden secrets generate --output {path:?}"));
        }
        fleet
    }

    /// Where the documented `/etc/paywarden/secrets/NAME` lives here.
    pub fn secret_path(&self, name: &str) -> String {
        self.root.join("secrets").join(name).to_str().unwrap().to_owned()
    }

    /// The documented text with its secrets directory replaced by ours.
    pub fn localize(&self, text: &str) -> String {
        text.replace(SECRETS_DIR, &format!("{}/", self.root.join("secrets").display()))
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("paywarden.toml")
    }

    /// Writes `paywarden.toml` with this `[vault]` table (documented paths).
    pub fn set_vault(&self, vault: &str) {
        std::fs::write(self.config_path(), format!("{}{}", self.base, self.localize(vault))).unwrap();
    }

    pub fn urls(&self) -> Vec<String> {
        self.replicas
            .iter()
            .map(|r| format!("https://127.0.0.1:{}", r.port))
            .collect()
    }

    pub async fn start_all(&mut self) {
        for n in 0..self.replicas.len() {
            self.start(n).await;
        }
    }

    /// Restarts the replicas one by one, each answering before the next stops.
    pub async fn roll(&mut self) {
        for n in 0..self.replicas.len() {
            self.stop(n).await;
            self.start(n).await;
        }
    }

    async fn start(&mut self, n: usize) {
        let replica = self.replicas.get_mut(n).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&replica.log)
            .unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{}", replica.port)])
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .env("PAYWARDEN_LOG", "warn")
            .spawn()
            .unwrap();
        replica.child = Some(child);
        let url = format!("https://127.0.0.1:{}/healthz", replica.port);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.client.get(&url).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            if let Some(status) = replica.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("replica {n} exited with {status}: {}", self.log_of(n));
            }
            assert!(
                Instant::now() < deadline,
                "replica {n} never answered: {}",
                self.log_of(n)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then waits for a clean exit (in-flight requests finish first).
    async fn stop(&mut self, n: usize) {
        let Some(mut child) = self.replicas.get_mut(n).unwrap().child.take() else {
            return;
        };
        let term = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "replica {n} did not stop: {}",
                self.log_of(n)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(status.success(), "replica {n} exited with {status}: {}", self.log_of(n));
    }

    pub fn log_of(&self, n: usize) -> String {
        std::fs::read_to_string(&self.replicas.get(n).unwrap().log).unwrap_or_default()
    }

    /// Runs `script` with `sh -e` on the operator host: the fleet's
    /// directory (its `paywarden.toml`) as working directory, `paywarden` on
    /// `PATH`.
    pub fn sh(&self, script: &str) -> Output {
        let path = format!(
            "{}:{}",
            self.root.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("sh")
            .args(["-e", "-c", script])
            .current_dir(&self.root)
            .env("PATH", path)
            .env("PAYWARDEN_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// [`Fleet::sh`], which must succeed; returns stdout.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "`{script}` failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `paywarden ARGS --json` on the operator host, parsed.
    pub fn cli_json(&self, args: &str) -> Value {
        let out = self.sh_ok(&format!("paywarden {args} --json"));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for r in &mut self.replicas {
            if let Some(mut child) = r.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
