//! The real `paywarden` binary and its secret files: a production start (no
//! `--dev`) refuses a pepper, KEK (current or previous), fingerprint key or TLS
//! private key that group or others may access, naming the file and its mode;
//! it refuses secrets that `--dev` generated, wherever they were copied to;
//! it starts with owner-only files; and the operator CLI applies the same rules.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{client_trusting, test_pepper};

const BIN: &str = env!("CARGO_BIN_EXE_paywarden");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_with_mode(path: &Path, contents: &str, mode: u32) {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A production configuration whose every secret is a 0600 file in `dir`.
struct Production {
    dir: tempfile::TempDir,
    cert_pem: String,
}

impl Production {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let cert_pem = certified.cert.pem();
        let p = Production { dir, cert_pem };
        write_with_mode(&p.path("cert.pem"), &p.cert_pem, 0o644);
        write_with_mode(&p.path("key.pem"), &certified.key_pair.serialize_pem(), 0o600);
        for name in ["pepper", "kek-v2", "kek-v1", "fingerprint"] {
            write_with_mode(&p.path(name), &test_pepper().0, 0o600);
        }
        let config = format!(
            "[tls]\ncert_file = {cert:?}\nkey_file = {key:?}\n\
             [secrets]\napi_key_pepper_file = {pepper:?}\n\
             [vault]\nkek_file = {kek:?}\nkek_version = 2\n\
             previous_kek_files = [{{version = 1, file = {previous:?}}}]\n\
             fingerprint_key_file = {fingerprint:?}\n",
            cert = p.path("cert.pem"),
            key = p.path("key.pem"),
            pepper = p.path("pepper"),
            kek = p.path("kek-v2"),
            previous = p.path("kek-v1"),
            fingerprint = p.path("fingerprint"),
        );
        std::fs::write(p.path("production.toml"), config).unwrap();
        p
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--config")
            .arg(self.path("production.toml"))
            .arg("--data-dir")
            .arg(self.path("data"))
            .current_dir(self.dir.path())
            .env("PAYWARDEN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn serve(&self, port: u16) -> Child {
        self.command(&["serve", "--listen", &format!("127.0.0.1:{port}")])
            .spawn()
            .unwrap()
    }
}

/// Waits (up to 30 s) for `child` to exit; a server still running then has
/// started when it should not have.
fn expect_refusal(mut child: Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            assert!(!out.status.success(), "exited successfully");
            return String::from_utf8_lossy(&out.stderr).into_owned();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!(
        "the server started instead of refusing; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until `https://127.0.0.1:port/healthz` answers 200 with the given
/// certificate trusted, then stops the server.
async fn expect_start(mut child: Child, port: u16, cert_pem: &[u8]) {
    let client = client_trusting(cert_pem);
    for _ in 0..400 {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the server exited ({status}) instead of starting:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if let Ok(r) = client.get(format!("https://127.0.0.1:{port}/healthz")).send().await {
            assert_eq!(r.status(), 200);
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    panic!("the server never became ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_with_owner_only_secret_files() {
    let p = Production::new();
    let port = free_port();
    expect_start(p.serve(port), port, p.cert_pem.as_bytes()).await;
}

#[test]
fn serve_refuses_secret_files_that_group_or_others_can_read() {
    let p = Production::new();
    for (file, mode, shown) in [
        ("pepper", 0o644, "0644"),
        ("kek-v2", 0o640, "0640"),
        ("kek-v1", 0o604, "0604"),
        ("fingerprint", 0o644, "0644"),
        ("key.pem", 0o644, "0644"),
    ] {
        let path = p.path(file);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let stderr = expect_refusal(p.serve(free_port()));
        assert!(
            stderr.contains(&path.display().to_string()),
            "{file}: the path is not named: {stderr}"
        );
        assert!(
            stderr.contains(shown),
            "{file}: the mode {shown} is not named: {stderr}"
        );
        // The message names the file, never its contents.
        let contents = std::fs::read_to_string(&path).unwrap();
        let secret_line = contents
            .lines()
            .find(|l| l.len() > 40 && !l.starts_with("-----"))
            .unwrap();
        assert!(!stderr.contains(secret_line), "{file}: the contents leaked");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn the_operator_cli_refuses_an_open_pepper_file_too() {
    let p = Production::new();
    std::fs::set_permissions(p.path("pepper"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let created = p
        .command(&["merchant", "create", "--name", "Shop", "--json"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let merchant: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let id = merchant["id"].as_str().unwrap();
    let out: Output = p
        .command(&["key", "create", "--merchant", id, "--kind", "secret"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&p.path("pepper").display().to_string()) && stderr.contains("0644"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_secrets_are_refused_without_dev() {
    // `serve --dev` on a fresh data dir generates its secrets and starts.
    let p = Production::new();
    let data = p.path("data");
    let port = free_port();
    let dev = Command::new(BIN)
        .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&data)
        .current_dir(p.dir.path())
        .env("PAYWARDEN_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut cert = Vec::new();
    for _ in 0..200 {
        cert = std::fs::read(data.join("dev-tls/cert.pem")).unwrap_or_default();
        if String::from_utf8_lossy(&cert).contains("-----END CERTIFICATE-----") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    expect_start(dev, port, &cert).await;

    // Each generated secret, named by a production configuration, is refused.
    let config = std::fs::read_to_string(p.path("production.toml")).unwrap();
    for (configured, generated) in [
        (p.path("pepper"), data.join("dev-secrets/api_key_pepper")),
        (p.path("kek-v2"), data.join("dev-secrets/kek-v1")),
        (p.path("fingerprint"), data.join("dev-secrets/fingerprint_key")),
        (p.path("key.pem"), data.join("dev-tls/key.pem")),
    ] {
        let mode = std::fs::metadata(&generated).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is generated owner-only", generated.display());
        let pointed = config.replace(&format!("{configured:?}"), &format!("{generated:?}"));
        std::fs::write(p.path("production.toml"), &pointed).unwrap();
        let stderr = expect_refusal(p.serve(free_port()));
        assert!(
            stderr.contains(&generated.display().to_string()) && stderr.contains("--dev"),
            "{}: {stderr}",
            generated.display()
        );
        // Copied out of the data dir (keeping its owner-only mode), still refused.
        std::fs::copy(&generated, &configured).unwrap();
        std::fs::write(p.path("production.toml"), &config).unwrap();
        let stderr = expect_refusal(p.serve(free_port()));
        assert!(
            stderr.contains(&configured.display().to_string()) && stderr.contains("--dev"),
            "copy of {}: {stderr}",
            generated.display()
        );
        std::fs::write(&configured, test_pepper().0).unwrap();
        if configured.ends_with("key.pem") {
            let fresh = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
            std::fs::write(&configured, fresh.key_pair.serialize_pem()).unwrap();
            std::fs::write(p.path("cert.pem"), fresh.cert.pem()).unwrap();
        }
    }
    // With --dev, the same data dir still starts (the README's set-up command).
    let port = free_port();
    let again = Command::new(BIN)
        .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&data)
        .current_dir(p.dir.path())
        .env("PAYWARDEN_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    expect_start(again, port, &cert).await;
}
