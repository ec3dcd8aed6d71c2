//! The audit trail: every request recorded with its facts, a hash chain that
//! `paywarden audit verify` checks (finding modified, deleted, inserted and
//! reordered entries), JSON-lines export, and a contiguous chain under load.

use paywarden::domain::audit::Outcome;
use serde_json::{json, Value};

use crate::both_backends;
use crate::support::TestApp;

/// Creates activity: a merchant, keys and a few requests; returns the entry count.
async fn activity(app: &TestApp) -> usize {
    let (_, sk) = app.merchant_with_secret("Audited").await;
    for _ in 0..3 {
        assert_eq!(app.get("/v1/merchant", &sk).await.status(), 200);
    }
    app.wait_for_audit(|a| a.iter().filter(|r| r.event.action == "api.request").count() >= 3)
        .await
        .len()
}

fn verify(app: &TestApp) -> (bool, Value) {
    let out = app.cli(&["audit", "verify", "--json"]);
    let value: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        out.status.success(),
        value["intact"] == true,
        "exit status matches the verdict"
    );
    (out.status.success(), value)
}

fn first_break(report: &Value) -> i64 {
    report["report"]["first_break"]["seq"]
        .as_i64()
        .unwrap_or_else(|| panic!("no break reported: {report}"))
}

both_backends! {
    async fn requests_are_audited_with_their_facts(app) {
        let (m, sk) = app.merchant_with_secret("Facts").await;
        let r = app.client().get(app.url("/v1/merchant")).bearer_auth(&sk).header("user-agent", "facts-agent/1.0").send().await.unwrap();
        let request_id = r.headers()["request-id"].to_str().unwrap().to_owned();
        let audit = app.wait_for_audit(|a| a.iter().any(|r| r.event.request_id.as_deref() == Some(request_id.as_str()))).await;
        let e = &audit.iter().find(|r| r.event.request_id.as_deref() == Some(request_id.as_str())).unwrap().event;
        assert_eq!(e.action, "api.request");
        assert_eq!(e.merchant_id.as_deref(), Some(m.as_str()));
        assert!(e.key_id.as_deref().unwrap().starts_with("key_"));
        assert_eq!(e.client_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(e.user_agent.as_deref(), Some("facts-agent/1.0"));
        assert_eq!(e.resource.as_deref(), Some("GET /v1/merchant -> 200"));
        assert_eq!(e.outcome, Outcome::Success);
        // Health checks are not merchant activity.
        app.client().get(app.url("/healthz")).send().await.unwrap();
        let r = app.get("/v1/api_keys?limit=500", &sk).await;
        assert_eq!(r.status(), 400);
        let audit = app.wait_for_audit(|a| a.iter().any(|r| r.event.resource.as_deref() == Some("GET /v1/api_keys -> 400"))).await;
        assert!(!audit.iter().any(|r| r.event.resource.as_deref().is_some_and(|s| s.contains("healthz"))));
        let bad = audit.iter().find(|r| r.event.resource.as_deref() == Some("GET /v1/api_keys -> 400")).unwrap();
        assert_eq!(bad.event.outcome, Outcome::Denied);
        assert_eq!(bad.event.reason.as_deref(), Some("parameter_invalid"));
    }

    async fn an_untouched_chain_verifies_and_exports(app) {
        let n = activity(app).await;
        let (ok, report) = verify(app);
        assert!(ok, "{report}");
        assert!(report["report"]["entries_checked"].as_u64().unwrap() >= n as u64);
        let out = app.cli(&["audit", "export"]);
        assert!(out.status.success());
        let lines: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(lines.len() >= n);
        assert_eq!(lines[0]["seq"], 1);
        for field in ["time", "action", "outcome", "hash", "prev_hash", "request_id", "client_ip", "key_id", "merchant_id"] {
            assert!(lines[0].get(field).is_some(), "{field} missing from export");
        }
        // Verification and export are themselves operator actions in the trail.
        let audit = app.audit().await;
        assert!(audit.iter().any(|r| r.event.action == "audit.verified"));
        assert!(audit.iter().any(|r| r.event.action == "audit.exported"));
    }

    async fn a_modified_entry_is_found(app) {
        activity(app).await;
        app.sql("UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 3").await;
        let (ok, report) = verify(app);
        assert!(!ok);
        assert_eq!(first_break(&report), 3);
        assert!(report["report"]["first_break"]["problem"].as_str().unwrap().contains("modified"));
    }

    async fn a_deleted_entry_is_found(app) {
        activity(app).await;
        app.sql("DELETE FROM audit_log WHERE seq = 4").await;
        let (ok, report) = verify(app);
        assert!(!ok);
        assert_eq!(first_break(&report), 4);
    }

    async fn entries_deleted_from_the_end_are_found(app) {
        let n = activity(app).await as i64;
        app.sql(&format!("DELETE FROM audit_log WHERE seq >= {}", n - 1)).await;
        let (ok, _) = verify(app);
        assert!(!ok);
    }

    async fn an_inserted_entry_is_found(app) {
        activity(app).await;
        app.sql("UPDATE audit_log SET seq = seq + 1000000 WHERE seq >= 5").await;
        app.sql("UPDATE audit_log SET seq = seq - 999999 WHERE seq >= 1000000").await;
        app.sql("INSERT INTO audit_log (seq, at, action, outcome, prev_hash, hash) \
                 SELECT 5, at, 'api.request', 'success', hash, hash FROM audit_log WHERE seq = 4").await;
        let (ok, report) = verify(app);
        assert!(!ok);
        assert_eq!(first_break(&report), 5);
    }

    async fn reordered_entries_are_found(app) {
        activity(app).await;
        app.sql("UPDATE audit_log SET seq = -3 WHERE seq = 3").await;
        app.sql("UPDATE audit_log SET seq = 3 WHERE seq = 4").await;
        app.sql("UPDATE audit_log SET seq = 4 WHERE seq = -3").await;
        let (ok, report) = verify(app);
        assert!(!ok);
        assert_eq!(first_break(&report), 3);
    }

    async fn concurrent_writers_keep_one_contiguous_chain(app) {
        let (_, sk) = app.merchant_with_secret("Busy").await;
        let mut tasks = Vec::new();
        for i in 0..60 {
            let client = app.client().clone();
            let url = app.url("/v1/merchant");
            let sk = sk.clone();
            tasks.push(tokio::spawn(async move {
                let r = if i % 3 == 0 {
                    client.post(url).bearer_auth(sk).json(&json!({"name": format!("Busy {i}")})).send().await
                } else {
                    client.get(url).bearer_auth(sk).send().await
                };
                r.unwrap().status().as_u16()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
        let audit = app.wait_for_audit(|a| {
            a.iter().filter(|r| r.event.action == "api.request").count() >= 40 && a.iter().filter(|r| r.event.action == "merchant.updated").count() >= 20
        }).await;
        for (i, r) in audit.iter().enumerate() {
            assert_eq!(r.seq, i as i64 + 1, "sequence is contiguous");
        }
        let (ok, report) = verify(app);
        assert!(ok, "{report}");
    }
}
