//! `paywarden check` against a sound test-only deployment (no failure, the
//! development certificate only a warning) and against a deliberately bad
//! one: every bad practice is reported as the failure or warning it is,
//! the exit status is non-zero, and no secret appears in the output.

use std::os::unix::fs::PermissionsExt;

use serde_json::{json, Value};

use crate::both_backends;
use crate::support::write_secret_file;

/// The finding `check` in a `--json` report.
fn finding<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} finding in {report}"))
}

fn status<'a>(report: &'a Value, check: &str) -> &'a str {
    finding(report, check)["status"].as_str().unwrap()
}

both_backends! {
    async fn a_sound_test_deployment_passes_with_development_warnings(app) {
        let (merchant, secret) = app.merchant_with_secret("Sound Shop").await;
        let report = app.cli_json(&["check"]);
        assert_eq!(report["summary"]["fail"], 0, "{report}");
        assert_eq!(report["live_in_use"], false);
        // The development certificate is tolerable while only test mode is used.
        assert_eq!(status(&report, "tls.certificate"), "warn");
        for check in ["tls.listener", "keys.live_expiry", "keys.rotation", "keys.reveal", "webhooks.https",
                      "payments.stale", "audit.chain", "secrets.api_key_pepper", "vault.kek", "logging.level"] {
            assert_eq!(status(&report, check), "pass", "{check}: {report}");
        }
        // No head recorded outside the database yet: a warning naming the one to record.
        let anchor = finding(&report, "audit.anchor");
        assert_eq!(anchor["status"], "warn");
        assert!(anchor["detail"].as_str().unwrap().contains("--audit-anchor"));
        assert!(!report.to_string().contains(&secret), "no key in the report");
        assert!(report.to_string().contains("audit.chain"));

        // The run is audited with its counts.
        let audit = app.audit().await;
        let entry = audit.iter().rev().find(|r| r.event.action == "posture.checked").expect("check audited");
        assert!(entry.event.reason.as_deref().unwrap().ends_with("0 fail"));
        let _ = merchant;

        // The recorded head, given back, passes; the same text table exits 0.
        let head = anchor["detail"].as_str().unwrap().split('`').nth(1).unwrap().to_owned();
        let report = app.cli_json(&["check", "--audit-anchor", &head]);
        assert_eq!(status(&report, "audit.anchor"), "pass", "{report}");
        let text = app.cli(&["check"]);
        assert!(text.status.success());
        let text = String::from_utf8(text.stdout).unwrap();
        assert!(text.contains("WARN  tls.certificate"), "{text}");
        assert!(text.trim_end().ends_with("0 fail"), "{text}");
    }

    async fn a_bad_deployment_fails_on_every_bad_practice(app) {
        let (merchant, test_secret) = app.merchant_with_secret("Careless Shop").await;
        let m = merchant.as_str();
        // Live mode in use, with a key that never expires and one older than the policy.
        let live = app.cli_json(&["key", "create", "--merchant", m, "--kind", "secret", "--mode", "live"]);
        let live_id = live["id"].as_str().unwrap().to_owned();
        let old = app.cli_json(&["key", "create", "--merchant", m, "--kind", "secret", "--mode", "live"]);
        let old_id = old["id"].as_str().unwrap().to_owned();
        app.sql(&format!("UPDATE api_keys SET expires_at = NULL WHERE id = '{live_id}'")).await;
        let long_ago = paywarden::domain::time::Timestamp::now().as_millis() - 400 * 86_400_000;
        app.sql(&format!("UPDATE api_keys SET created_at = {long_ago} WHERE id = '{old_id}'")).await;
        // A key that may reveal card numbers.
        let reveal = app.cli_json(&["key", "create", "--merchant", m, "--kind", "restricted",
                                    "--permission", "tokens:reveal", "--expires-in", "90d"]);
        // A live webhook endpoint on plain HTTP (as a row written before the rule would be).
        let live_secret = live["secret"].as_str().unwrap().to_owned();
        let r = app.post("/v1/webhook_endpoints", &live_secret,
                         &json!({"url": "https://8.8.8.8/hooks", "events": ["*"]})).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let endpoint: Value = r.json().await.unwrap();
        let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
        app.sql(&format!("UPDATE webhook_endpoints SET url = 'http://8.8.8.8/hooks' WHERE id = '{endpoint_id}'")).await;
        // A payment stuck in processing for an hour.
        let r = app.post("/v1/payments", &test_secret, &json!({"amount": 500, "currency": "eur"})).await;
        assert_eq!(r.status(), 200);
        let payment: Value = r.json().await.unwrap();
        let payment_id = payment["id"].as_str().unwrap().to_owned();
        let hour_ago = paywarden::domain::time::Timestamp::now().as_millis() - 3_600_000;
        app.sql(&format!("UPDATE payments SET status = 'processing', created_at = {hour_ago} WHERE id = '{payment_id}'"))
            .await;
        // A previous KEK file anyone may read, an expired certificate, debug logging.
        let kek_file = app.data_path().join("old-kek");
        write_secret_file(&kek_file, &app.kek_b64);
        std::fs::set_permissions(&kek_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (cert_file, key_file) = expired_certificate(&app.data_path());
        let env = [
            ("PAYWARDEN_VAULT__PREVIOUS_KEK_FILES", format!("[{{version = 7, file = {kek_file:?}}}]")),
            ("PAYWARDEN_TLS__CERT_FILE", cert_file.display().to_string()),
            ("PAYWARDEN_TLS__KEY_FILE", key_file.display().to_string()),
            ("PAYWARDEN_LOG", "info,paywarden=debug".to_owned()),
        ];

        let out = app.cli_env(&["check", "--json"], &env);
        assert_eq!(out.status.code(), Some(1), "any failure exits 1: {}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["live_in_use"], true);
        for (check, expected, named) in [
            ("keys.live_expiry", "fail", live_id.as_str()),
            ("keys.rotation", "fail", old_id.as_str()),
            ("keys.reveal", "warn", reveal["id"].as_str().unwrap()),
            ("webhooks.https", "fail", endpoint_id.as_str()),
            ("payments.stale", "fail", payment_id.as_str()),
            ("vault.previous_kek_files", "fail", "old-kek"),
            ("tls.certificate", "fail", "expired"),
            ("logging.level", "fail", "debug"),
        ] {
            let f = finding(&report, check);
            assert_eq!(f["status"], expected, "{check}: {f}");
            assert!(f["detail"].as_str().unwrap().contains(named), "{check} names {named}: {f}");
        }
        let text = report.to_string();
        for secret in [test_secret.as_str(), live_secret.as_str(), app.kek_b64.as_str()] {
            assert!(!text.contains(secret), "no secret in the report");
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains(&live_secret) && !stderr.contains(&app.kek_b64), "no secret in the log");

        // A trail rewritten after its head was recorded fails twice: the
        // chain no longer verifies, and the recorded head is gone.
        let out = app.cli(&["check", "--json"]);
        let sound: Value = serde_json::from_slice(&out.stdout).unwrap();
        let detail = finding(&sound, "audit.anchor")["detail"].as_str().unwrap().to_owned();
        let head = detail.split('`').nth(1).unwrap().to_owned();
        app.sql("UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 2").await;
        let out = app.cli(&["check", "--json", "--audit-anchor", &head]);
        assert_eq!(out.status.code(), Some(1));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(status(&report, "audit.chain"), "fail", "{report}");
        let seq = head.split(':').next().unwrap();
        let wrong = format!("{seq}:{}", "0".repeat(64));
        let out = app.cli(&["check", "--json", "--audit-anchor", &wrong]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(status(&report, "audit.anchor"), "fail", "{report}");
        assert!(finding(&report, "audit.anchor")["detail"].as_str().unwrap().contains("rewritten"));
        // A malformed anchor is refused, naming the flag.
        let out = app.cli(&["check", "--json", "--audit-anchor", "12"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("--audit-anchor"));
    }
}

/// A self-signed certificate that expired yesterday, and its owner-only key.
fn expired_certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    let yesterday = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = yesterday;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_file, key_file) = (dir.join("expired.pem"), dir.join("expired.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    write_secret_file(&key_file, &key.serialize_pem());
    (cert_file, key_file)
}
