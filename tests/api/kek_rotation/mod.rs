//! KEK rotation as an operator runs it: `secrets generate --output` writes a
//! new KEK owner-only and never over another; `vault status` counts
//! everything a KEK wraps (tokens, stored idempotent responses, webhook
//! signing secrets, processor connections' credentials); `vault rotate-kek` re-wraps only to a version the
//! configuration already lists, with the same key, and never invents one; and
//! the documented procedure (docs/operations.md), run as written against the
//! real binary, rotates under payment and webhook load on both backends
//! (`documented`).

use std::os::unix::fs::PermissionsExt;

use serde_json::{json, Value};

use crate::both_backends;
use crate::support::{test_pepper, write_secret_file, TestApp};

mod documented;
mod fleet;
mod load;
mod steps;

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
    async fn vault_status_counts_everything_a_kek_wraps(app) {
        let (_, sk) = app.merchant_with_secret("Inventory").await;
        let card = json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}});
        let token = app.client().post(app.url("/v1/tokens")).bearer_auth(&sk)
            .header("Idempotency-Key", "inventory-token").json(&card).send().await.unwrap();
        assert_eq!(token.status(), 200);
        let endpoint: Value = app.post("/v1/webhook_endpoints", &sk, &json!({"url": "https://hooks.example.com/a", "events": ["*"]}))
            .await.json().await.unwrap();
        let id = endpoint["id"].as_str().unwrap();
        // The rotated endpoint keeps its previous secret, sealed too.
        assert_eq!(app.post(&format!("/v1/webhook_endpoints/{id}/rotate_secret"), &sk, &json!({})).await.status(), 200);
        // A processor connection's credentials are sealed under the KEK too.
        let connection = app.post("/v1/connectors", &sk, &json!({"type": "stripe", "secret_key": "sk_test_51InventoryKeyValue0000"})).await;
        assert_eq!(connection.status(), 200);
        let status = app.cli_json(&["vault", "status"]);
        assert_eq!(
            status["kek_versions"],
            json!([{"version": 1, "tokens": 1, "idempotent_responses": 1, "webhook_secrets": 2, "connection_credentials": 1, "operator_secrets": 0}]),
            "{status}"
        );
        let text = String::from_utf8(app.cli(&["vault", "status"]).stdout).unwrap();
        assert!(text.contains("2 webhook signing secrets") && text.contains("1 connection credentials"), "{text}");

        // `--check-unused` fails while anything is wrapped under the version,
        // naming what is left, and passes for a version that wraps nothing.
        let busy = app.cli(&["vault", "status", "--check-unused", "1"]);
        assert_eq!(busy.status.code(), Some(1));
        let said = String::from_utf8_lossy(&busy.stderr);
        assert!(said.contains("KEK version 1") && said.contains("webhook signing secrets"), "{said}");
        let idle = app.cli(&["vault", "status", "--check-unused", "7"]);
        assert!(idle.status.success(), "{}", String::from_utf8_lossy(&idle.stderr));

        // Only the webhook secrets left under version 1: still not unused.
        let (file, _) = new_kek_file(app, "kek-v2");
        let env = [previous(2, &file)];
        let partial = app.cli_json_env(&["vault", "rotate-kek", "--new-key-file", &file, "--new-version", "2", "--limit", "2"], &env);
        assert_eq!(partial["report"]["webhook_secrets"]["rewrapped"], 0, "{partial}");
        assert_eq!(partial["report"]["connection_credentials"]["rewrapped"], 0, "{partial}");
        let busy = app.cli(&["vault", "status", "--check-unused", "1"]);
        assert_eq!(busy.status.code(), Some(1), "webhook secrets still need version 1");
        let done = app.cli_json_env(&["vault", "rotate-kek", "--new-key-file", &file, "--new-version", "2"], &env);
        assert_eq!(done["report"]["webhook_secrets"], json!({"rewrapped": 2, "skipped": 0, "remaining": 0}), "{done}");
        assert_eq!(done["report"]["connection_credentials"], json!({"rewrapped": 1, "skipped": 0, "remaining": 0}), "{done}");
        assert_eq!(done["report"]["complete"], true, "{done}");
        assert!(app.cli(&["vault", "status", "--check-unused", "1"]).status.success());
        assert_eq!(
            app.cli_json(&["vault", "status"])["kek_versions"],
            json!([{"version": 2, "tokens": 1, "idempotent_responses": 1, "webhook_secrets": 2, "connection_credentials": 1, "operator_secrets": 0}])
        );
    }

    async fn rotate_kek_only_targets_a_configured_version_with_the_same_key(app) {
        let (_, sk) = app.merchant_with_secret("Refusals").await;
        let card = json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}});
        assert_eq!(app.post("/v1/tokens", &sk, &card).await.status(), 200);
        let unchanged = json!([{"version": 1, "tokens": 1, "idempotent_responses": 0, "webhook_secrets": 0, "connection_credentials": 0, "operator_secrets": 0}]);
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
        assert_eq!(done["report"]["tokens"]["rewrapped"], 1, "{done}");
        // The same again with version 2 current and 1 readable (step 5): nothing is left to do.
        let old = app.data_path().join("kek-v1");
        write_secret_file(&old, &app.kek_b64);
        let step5 = [
            ("PAYWARDEN_VAULT__KEK", std::fs::read_to_string(&file).unwrap()),
            ("PAYWARDEN_VAULT__KEK_VERSION", "2".to_owned()),
            previous(1, old.to_str().unwrap()),
        ];
        let again = app.cli_json_env(&["vault", "rotate-kek", "--new-key-file", &file, "--new-version", "2"], &step5);
        assert_eq!((again["report"]["tokens"]["rewrapped"].as_u64(), again["report"]["complete"].as_bool()), (Some(0), Some(true)), "{again}");
    }
}
