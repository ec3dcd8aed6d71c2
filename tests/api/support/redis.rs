//! Redis for rate-limit tests: the shared one (127.0.0.1:6379, as CI starts
//! it) under a key prefix of the test's own, or a private `redis-server` on
//! a free port that a test may stop and start again (never the shared one).

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use paywarden::server::gateway::SharedRateLimits;
use paywarden::store::redis_buckets::RedisBuckets;
use secrecy::SecretString;

/// The Redis every test may use, each under its own prefix.
pub const SHARED_REDIS_URL: &str = "redis://127.0.0.1:6379/0";

/// A key prefix no other test (or earlier run) uses.
pub fn unique_prefix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "pw-test:{}:{nanos}:{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Buckets in the Redis at `url` under `prefix`, a take waiting at most 50 ms.
pub fn shared_limits(url: &str, prefix: &str) -> SharedRateLimits {
    let timeout = Duration::from_millis(50);
    SharedRateLimits {
        buckets: Arc::new(RedisBuckets::new(&SecretString::from(url.to_owned()), timeout).unwrap()),
        key_prefix: prefix.to_owned(),
        timeout,
    }
}

/// A `redis-server` of the test's own, on a free loopback port.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.resume().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts the server (again) on its port and waits until it answers.
    pub async fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for the rate-limit tests");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not listen on port {}", self.port);
    }

    /// Stops (`true`) or continues the server process: a server that takes
    /// connections and commands but answers none (a slow Redis).
    pub fn pause(&self, paused: bool) {
        let pid = self.child.as_ref().expect("redis-server running").id().to_string();
        let signal = if paused { "-STOP" } else { "-CONT" };
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
    }

    /// Kills the server (an outage).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused server must be continued to die of SIGKILL promptly
            // (SIGKILL works on a stopped process too; CONT is harmless).
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
