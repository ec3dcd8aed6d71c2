//! Operator step-up with TOTP, as an operator runs it: `operator enroll`
//! prints a secret once (the test computes codes from it with `totp-rs`, as
//! an authenticator app would); once an operator exists, privileged
//! commands refuse without `--operator`/`--totp`, refuse a wrong or replayed
//! code (audited, never with the code), lock the operator out after repeated
//! failures, and name the operator in the action's audit entry. With no
//! operator enrolled they proceed and `paywarden check` warns. KEK rotation
//! re-wraps operators' secrets, which still verify under the new KEK; the
//! secret never reaches the audit trail or a database column in clear.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use paywarden::domain::api_key::KeyKind;

use crate::both_backends;
use crate::support::{test_pepper, write_secret_file, TestApp};

/// The code an authenticator app shows `ahead` steps of 30 s from now.
fn code(secret_b32: &str, ahead: i64) -> String {
    let secret = totp_rs::Secret::Encoded(secret_b32.to_owned()).to_bytes().unwrap();
    let totp = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, secret, None, String::new()).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    totp.generate(now.checked_add_signed(30 * ahead).unwrap())
}

/// A code that is none of the codes of the steps around now (one step of
/// skew either side, and the test's own later steps).
fn wrong(secret_b32: &str) -> String {
    let valid: Vec<String> = (-1..=3).map(|a| code(secret_b32, a)).collect();
    (0..10u32)
        .map(|n| format!("00000{n}"))
        .find(|c| !valid.contains(c))
        .unwrap()
}

/// Runs the CLI with `--json`; (succeeded, document).
fn cli_run(app: &TestApp, args: &[&str]) -> (bool, Value) {
    run_env(app, args, &[])
}

fn run_env(app: &TestApp, args: &[&str], env: &[(&str, String)]) -> (bool, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = app.cli_env(&all, env);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), doc)
}

fn refused(app: &TestApp, args: &[&str], says: &str) {
    let (ok, doc) = cli_run(app, args);
    assert!(!ok, "{args:?} must be refused: {doc}");
    let message = doc["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{args:?}: {message}");
}

/// Enrols `name`: its base32 secret.
fn enroll(app: &TestApp, name: &str, step_up: &[&str]) -> String {
    let mut args = vec!["operator", "enroll", name];
    args.extend_from_slice(step_up);
    let enrolled = app.cli_json(&args);
    assert!(enrolled["id"].as_str().unwrap().starts_with("op_"), "{enrolled}");
    let secret = enrolled["secret"].as_str().unwrap().to_owned();
    let uri = enrolled["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with(&format!("otpauth://totp/paywarden:{name}?")), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    secret
}

/// Every audit entry and every operators row, as text.
async fn everything_stored(app: &TestApp) -> String {
    let rows: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT id, name, wrapped_dek, ciphertext FROM operators")
            .fetch_all(app.store.reader())
            .await
            .unwrap();
    format!("{:?}\n{:?}", app.audit().await, rows)
}

both_backends! {
    async fn an_enrolled_operator_steps_up_to_unfreeze_and_wrong_or_replayed_codes_are_refused(app) {
        let m = app.merchant("Step-up Shop").await;
        let key = app.key(&m, KeyKind::Secret, &[]).await;
        let (id, sk) = (key.key.id.to_string(), key.secret.expose().to_owned());
        app.cli_json(&["key", "freeze", &id]);
        assert_eq!(app.get("/v1/merchant", &sk).await.status(), 403);

        let secret = enroll(app, "alice", &[]);
        // The human enrolment prints the QR code and the secret once.
        let listed = app.cli_json(&["operator", "list"]);
        assert_eq!(listed["data"][0]["name"], "alice");
        assert!(!listed.to_string().contains(&secret), "list never shows the secret");

        refused(app, &["key", "unfreeze", &id], "--operator");
        refused(app, &["key", "unfreeze", &id, "--operator", "alice"], "--totp");
        refused(app, &["key", "unfreeze", &id, "--operator", "bob", "--totp", &code(&secret, 0)], "no operator named bob");
        let bad = wrong(&secret);
        refused(app, &["key", "unfreeze", &id, "--operator", "alice", "--totp", &bad], "wrong TOTP code");
        refused(app, &["key", "unfreeze", &id, "--operator", "alice", "--totp", "12345"], "6 digits");
        assert_eq!(app.get("/v1/merchant", &sk).await.status(), 403, "still frozen");

        let now = code(&secret, 0);
        let unfrozen = app.cli_json(&["key", "unfreeze", &id, "--operator", "alice", "--totp", &now]);
        assert_eq!(unfrozen["frozen"], Value::Null);
        assert_eq!(app.get("/v1/merchant", &sk).await.status(), 200);

        // The same code again, even for another command, is refused.
        app.cli_json(&["key", "freeze", &id]);
        refused(app, &["key", "unfreeze", &id, "--operator", "alice", "--totp", &now], "already used");
        assert_eq!(app.get("/v1/merchant", &sk).await.status(), 403);

        let audit = app.audit().await;
        let entry = audit.iter().rev().find(|r| r.event.action == "api_key.unfrozen").unwrap();
        let agent = entry.event.user_agent.as_deref().unwrap();
        assert!(agent.contains("key unfreeze (operator alice op_"), "{agent}");
        let of = |action: &str| audit.iter().filter(|r| r.event.action == action).count();
        assert_eq!(of("operator.step_up"), 1);
        assert_eq!(of("operator.step_up_failed"), 5, "every refusal (the malformed code never reaches it)");
        assert_eq!(of("operator.enrolled"), 1);

        // The trail leaves the database only with a step-up (the next step's code).
        let file = app.data_path().join("audit.jsonl");
        let file = file.to_str().unwrap();
        refused(app, &["audit", "export", "--output", file], "--operator");
        let exported = app.cli_json(&["audit", "export", "--output", file, "--operator", "alice", "--totp", &code(&secret, 1)]);
        assert!(exported["exported"].as_u64().unwrap() > 0);
        let export = std::fs::read_to_string(file).unwrap();
        // The secret appears nowhere in the export or a stored row.
        let stored = everything_stored(app).await;
        for text in [&export, &stored] {
            assert!(!text.contains(&secret) && !text.contains(&secret[..16]), "secret stored");
        }
        assert!(stored.contains("alice"));
        // No code given appears in what an entry says (its free-text fields:
        // hashes and times are digits of their own).
        let said: Vec<String> = export
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .flat_map(|entry| ["reason", "resource", "user_agent"].map(|f| entry[f].as_str().unwrap_or_default().to_owned()))
            .collect();
        let said = said.join("\n");
        assert!(said.contains("wrong TOTP code for operator alice"), "{said}");
        for given in [&now, &bad, &code(&secret, 1)] {
            assert!(!said.contains(given.as_str()), "{given} in the trail: {said}");
        }
    }

    async fn one_code_given_to_two_commands_at_once_passes_only_once(app) {
        let secret = enroll(app, "alice", &[]);
        let now = code(&secret, 0);
        let args = ["lockout", "clear", "192.0.2.9", "--operator", "alice", "--totp", now.as_str(), "--json"];
        let outputs: Vec<std::process::Output> = std::thread::scope(|s| {
            let runs: Vec<_> = (0..2).map(|_| s.spawn(|| app.cli(&args))).collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let passed = outputs.iter().filter(|o| o.status.success()).count();
        assert_eq!(passed, 1, "{outputs:?}");
        let refused = outputs.iter().find(|o| !o.status.success()).unwrap();
        let doc: Value = serde_json::from_slice(&refused.stdout).unwrap();
        assert!(doc["error"]["message"].as_str().unwrap().contains("already used"), "{doc}");
        let audit = app.audit().await;
        let of = |action: &str| audit.iter().filter(|r| r.event.action == action).count();
        assert_eq!((of("operator.step_up"), of("operator.step_up_failed"), of("auth.lockout_cleared")), (1, 1, 1));
    }

    async fn repeated_failed_codes_lock_the_operator_out(app) {
        let secret = enroll(app, "alice", &[]);
        let bad = wrong(&secret);
        for n in 1..=4 {
            refused(app, &["lockout", "clear", "192.0.2.7", "--operator", "alice", "--totp", &bad], "wrong TOTP code");
            let _ = n;
        }
        refused(app, &["lockout", "clear", "192.0.2.7", "--operator", "alice", "--totp", &bad], "locked out");
        // Locked out: even the right code is refused, and the lockout is listed and audited.
        refused(app, &["lockout", "clear", "192.0.2.7", "--operator", "alice", "--totp", &code(&secret, 0)], "locked out");
        let listed = app.cli_json(&["operator", "list"]);
        assert!(listed["data"][0]["locked_until"].is_i64(), "{listed}");
        let audit = app.audit().await;
        let locked = audit.iter().find(|r| r.event.action == "operator.locked_out").expect("lockout audited");
        assert!(locked.event.reason.as_deref().unwrap().contains("5 failed codes"));
        assert!(!audit.iter().any(|r| r.event.action == "auth.lockout_cleared"), "nothing was cleared");
        let report = app.cli_json(&["check"]);
        let finding = report["checks"].as_array().unwrap().iter().find(|f| f["check"] == "operators.step_up").unwrap();
        assert_eq!(finding["status"], "warn", "{finding}");
        assert!(finding["detail"].as_str().unwrap().contains("alice"));
    }

    async fn without_an_operator_privileged_commands_proceed_and_check_warns(app) {
        let m = app.merchant("No Operator Shop").await;
        let key = app.key(&m, KeyKind::Secret, &[]).await;
        let id = key.key.id.to_string();
        app.cli_json(&["key", "freeze", &id]);
        app.cli_json(&["key", "unfreeze", &id]);
        let reveal = ["key", "create", "--merchant", m.as_str(), "--kind", "restricted", "--permission", "tokens:reveal", "--expires-in", "30d"];
        app.cli_json(&reveal);
        let report = app.cli_json(&["check"]);
        let finding = |r: &Value| r["checks"].as_array().unwrap().iter().find(|f| f["check"] == "operators.step_up").cloned().unwrap();
        let warn = finding(&report);
        assert_eq!(warn["status"], "warn");
        assert!(warn["detail"].as_str().unwrap().contains("no operator enrolled for step-up"), "{warn}");

        // Once one is enrolled: a key holding tokens:reveal needs a step-up,
        // and so does enrolling a second operator; check passes.
        let secret = enroll(app, "alice", &[]);
        refused(app, &reveal, "--operator");
        refused(app, &["operator", "enroll", "mallory"], "--operator");
        let mut with_code = reveal.to_vec();
        let now = code(&secret, 0);
        with_code.extend(["--operator", "alice", "--totp", &now]);
        let created = app.cli_json(&with_code);
        assert_eq!(created["permissions"], serde_json::json!(["tokens:reveal"]));
        let bob = enroll(app, "bob", &["--operator", "alice", "--totp", &code(&secret, 1)]);
        assert_ne!(bob, secret);
        assert_eq!(finding(&app.cli_json(&["check"]))["status"], "pass");
        // Removing an operator needs a step-up too (bob removes alice).
        refused(app, &["operator", "remove", "alice"], "--operator");
        app.cli_json(&["operator", "remove", "alice", "--operator", "bob", "--totp", &code(&bob, 0)]);
        let listed = app.cli_json(&["operator", "list"]);
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        // The human enrolment shows the QR code, the secret and the URI.
        // With debug logging, the log (stderr) holds neither the secret nor the code.
        let bob_code = code(&bob, 1);
        let debug = [("PAYWARDEN_LOG", "debug".to_owned())];
        let out = app.cli_env(&["operator", "enroll", "carol", "--operator", "bob", "--totp", &bob_code], &debug);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains('█') || text.contains('▀'), "{text}");
        assert!(text.contains("otpauth://totp/paywarden:carol?secret="), "{text}");
        let carol = text.split("or type in the secret: ").nth(1).unwrap().split_whitespace().next().unwrap();
        assert_eq!(carol.len(), 32, "{text}");
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(!log.contains(carol) && !log.contains(&bob_code), "{log}");
        let audit = app.audit().await;
        let created = audit.iter().rev().find(|r| r.event.action == "api_key.created").unwrap();
        assert!(created.event.user_agent.as_deref().unwrap().contains("operator alice"));
    }

    async fn kek_rotation_rewraps_operator_secrets_which_still_verify(app) {
        let secret = enroll(app, "alice", &[]);
        let status = app.cli_json(&["vault", "status"]);
        assert_eq!(status["kek_versions"][0]["operator_secrets"], 1, "{status}");
        let (b64, _) = test_pepper();
        let path = app.data_path().join("kek-v2");
        write_secret_file(&path, &b64);
        let file = path.to_str().unwrap().to_owned();
        let previous = ("PAYWARDEN_VAULT__PREVIOUS_KEK_FILES", format!("[{{version = 2, file = {file:?}}}]"));
        let rotate = ["vault", "rotate-kek", "--new-key-file", file.as_str(), "--new-version", "2"];
        let (ok, doc) = run_env(app, &rotate, std::slice::from_ref(&previous));
        assert!(!ok && doc["error"]["message"].as_str().unwrap().contains("--operator"), "{doc}");
        let mut args = rotate.to_vec();
        let now = code(&secret, 0);
        args.extend(["--operator", "alice", "--totp", &now]);
        let done = app.cli_json_env(&args, std::slice::from_ref(&previous));
        assert_eq!(done["report"]["operator_secrets"], serde_json::json!({"rewrapped": 1, "skipped": 0, "remaining": 0}), "{done}");
        assert_eq!(done["report"]["complete"], true);

        // KEK 2 alone (version 1 retired): the re-wrapped secret still opens and verifies.
        let only_v2 = [
            ("PAYWARDEN_VAULT__KEK", b64.clone()),
            ("PAYWARDEN_VAULT__KEK_VERSION", "2".to_owned()),
        ];
        let status = app.cli_json_env(&["vault", "status"], &only_v2);
        assert_eq!(status["kek_versions"], serde_json::json!([{"version": 2, "tokens": 0, "idempotent_responses": 0,
            "webhook_secrets": 0, "connection_credentials": 0, "operator_secrets": 1}]));
        let ip = ["lockout", "clear", "192.0.2.8", "--operator", "alice"];
        let mut args = ip.to_vec();
        let next = code(&secret, 1);
        args.extend(["--totp", &next]);
        let cleared = app.cli_json_env(&args, &only_v2);
        assert_eq!(cleared["ip"], "192.0.2.8");
        // Under the old KEK alone it no longer opens.
        let mut args = ip.to_vec();
        let later = code(&secret, 2);
        args.extend(["--totp", &later]);
        let (ok, doc) = cli_run(app, &args);
        assert!(!ok, "KEK 1 no longer opens the secret: {doc}");
        assert!(doc["error"]["message"].as_str().unwrap().contains("could not be checked"), "{doc}");
        assert!(!doc.to_string().contains(&secret));
    }
}
