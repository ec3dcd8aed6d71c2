//! KEK rotation as an operator runs it: `secrets generate --output` writes a
//! new KEK owner-only and never over another; `vault rotate-kek` re-wraps
//! only to a version the configuration already lists, with the same key, and
//! never invents one.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::both_backends;
use crate::support::{test_pepper, write_secret_file, TestApp};

#[test]
fn secrets_generate_writes_an_owner_only_file_and_never_replaces_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek-v2");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_paywarden"))
            .args(args)
            .current_dir(dir.path())
            .env("PAYWARDEN_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run(&["secrets", "generate", "--output", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "the secret goes to the file only");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let written = std::fs::read_to_string(&path).unwrap();
    let _32_bytes = crate::support::kek(written.trim());
    // A second run must not replace a KEK that may already wrap data keys.
    let again = run(&["secrets", "generate", "--output", path.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("kek-v2"));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        written,
        "the existing file is untouched"
    );
    assert!(!String::from_utf8_lossy(&again.stderr).contains(written.trim()));
}

/// `previous_kek_files` naming `file` as `version`, as the environment
/// variable of the real binary.
fn previous(version: u32, file: &str) -> (&'static str, String) {
    (
        "PAYWARDEN_VAULT__PREVIOUS_KEK_FILES",
        format!("[{{version = {version}, file = {file:?}}}]"),
    )
}

/// A fresh KEK in a 0600 file in the app's data dir: (path, base64).
fn new_kek_file(app: &TestApp, name: &str) -> (String, String) {
    let (b64, _) = test_pepper();
    let path = app.data_path().join(name);
    write_secret_file(&path, &b64);
    (path.to_str().unwrap().to_owned(), b64)
}

both_backends! {
    async fn rotate_kek_only_targets_a_configured_version_with_the_same_key(app) {
        let (_, sk) = app.merchant_with_secret("Refusals").await;
        let card = json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}});
        assert_eq!(app.post("/v1/tokens", &sk, &card).await.status(), 200);
        let unchanged = json!([{"version": 1, "tokens": 1}]);
        let (file, _) = new_kek_file(app, "kek-v2");
        let refused = |args: &[&str], env: &[(&str, String)], says: &str| {
            let out = app.cli_env(args, env);
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(!out.status.success(), "{args:?} must be refused");
            assert!(err.contains(says), "{args:?}: {err}");
            assert_eq!(app.cli_json(&["vault", "status"])["kek_versions"], unchanged, "{args:?} changed nothing");
        };
        // No version given: none is invented.
        refused(&["vault", "rotate-kek", "--new-key-file", &file], &[previous(2, &file)], "--new-version");
        // A version no replica has been told about would be unreadable to them.
        refused(&["vault", "rotate-kek", "--new-key-file", &file, "--new-version", "2"], &[], "not in this configuration");
        refused(&["vault", "rotate-kek", "--new-key-file", &file, "--new-version", "3"], &[previous(2, &file)], "not in this configuration");
        // The configuration lists version 2 with other key bytes than the file.
        let (other, _) = new_kek_file(app, "kek-other");
        refused(&["vault", "rotate-kek", "--new-key-file", &file, "--new-version", "2"], &[previous(2, &other)], "does not hold");
        // The documented path: the version is configured (readable) with this very key.
        let done = app.cli_json_env(&["vault", "rotate-kek", "--new-key-file", &file, "--new-version", "2"], &[previous(2, &file)]);
        assert_eq!(done["version"], 2);
        assert_eq!(done["report"]["rewrapped"], 1, "{done}");
        // The same again with version 2 current and 1 readable (step 5): nothing is left to do.
        let old = app.data_path().join("kek-v1");
        write_secret_file(&old, &app.kek_b64);
        let step5 = [
            ("PAYWARDEN_VAULT__KEK", std::fs::read_to_string(&file).unwrap()),
            ("PAYWARDEN_VAULT__KEK_VERSION", "2".to_owned()),
            previous(1, old.to_str().unwrap()),
        ];
        let again = app.cli_json_env(&["vault", "rotate-kek", "--new-key-file", &file, "--new-version", "2"], &step5);
        assert_eq!((again["report"]["rewrapped"].as_u64(), again["report"]["remaining"].as_i64()), (Some(0), Some(0)), "{again}");
    }
}
