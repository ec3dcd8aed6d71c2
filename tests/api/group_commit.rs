//! Group commit: concurrent writers share commits, each is answered only
//! after its own work is durable, and one failing job does not take the
//! others of its batch down with it.

use paywarden::domain::api_key::KeyKind;
use paywarden::domain::audit::{AuditEvent, Outcome};
use paywarden::store::group_commit::WriteJob;
use paywarden::store::write_op::{Value, WriteOp};
use serde_json::json;

use crate::both_backends;

both_backends! {
    async fn concurrent_tokenizations_all_commit_with_their_audit_entries(app) {
        let m = app.merchant("Busy vault").await;
        // The merchant's own server (a secret key: not rate limited).
        let pk = app.key(&m, KeyKind::Secret, &[]).await;
        let mut tasks = Vec::new();
        for _ in 0..48 {
            let (client, url, key) = (app.client().clone(), app.url("/v1/tokens"), pk.secret.expose().to_owned());
            tasks.push(tokio::spawn(async move {
                let body = json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034}});
                let r = client.post(url).bearer_auth(key).json(&body).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap());
        }
        // Every answered tokenization is already committed: no waiting needed.
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM card_tokens").fetch_one(app.store.reader()).await.unwrap();
        assert_eq!(n, 48);
        let audit = app.audit().await;
        for id in &ids {
            assert!(audit.iter().any(|r| r.event.action == "token.created" && r.event.resource.as_deref() == Some(id.as_str())));
        }
        let out = app.cli(&["audit", "verify"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }

    async fn a_failing_job_is_rolled_back_alone(app) {
        let queue = app.store.group_commit().clone();
        let mut jobs = Vec::new();
        for i in 0..20 {
            let queue = queue.clone();
            jobs.push(tokio::spawn(async move {
                let mut event = AuditEvent::new("test.job", Outcome::Success);
                event.resource = Some(format!("job {i}"));
                let mut ops = vec![WriteOp::new(
                    "INSERT INTO merchants (id, name, created_at) VALUES ($1, 'job', 0)",
                    vec![Value::Text(format!("mer_job{i:019}"))],
                )];
                if i % 5 == 0 {
                    // Fails after writing: its row and audit entry must vanish with it.
                    ops.push(WriteOp::new("INSERT INTO no_such_table VALUES (1)", vec![]));
                }
                queue
                    .run(WriteJob::new(ops, vec![event]))
                    .await
                    .is_ok()
            }));
        }
        let mut ok = 0;
        for (i, j) in jobs.into_iter().enumerate() {
            let succeeded = j.await.unwrap();
            assert_eq!(succeeded, i % 5 != 0, "job {i}");
            ok += usize::from(succeeded);
        }
        let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM merchants WHERE name = 'job'").fetch_one(app.store.reader()).await.unwrap();
        assert_eq!(rows, ok as i64, "failed jobs left no rows");
        let audit = app.audit().await;
        let written: Vec<_> = audit.iter().filter(|r| r.event.action == "test.job").collect();
        assert_eq!(written.len(), ok);
        assert!(written.iter().all(|r| !r.event.resource.as_deref().unwrap().ends_with(" 0") && !r.event.resource.as_deref().unwrap().ends_with(" 5")));
        let out = app.cli(&["audit", "verify"]);
        assert!(out.status.success(), "the chain has no hole where failed jobs were: {}", String::from_utf8_lossy(&out.stdout));
    }
}

both_backends! {
    async fn a_compare_and_set_that_finds_the_row_changed_fails_its_job(app) {
        use paywarden::store::write_op::Failure;
        let queue = app.store.group_commit().clone();
        let m = app.merchant("Versioned").await;
        let rename = |from: &str, to: &str| WriteOp::new(
            "UPDATE merchants SET name = $1 WHERE id = $2 AND name = $3",
            vec![to.into(), m.as_str().into(), from.into()],
        ).expect_one(Failure::Conflict);
        queue.run(WriteJob::new(vec![rename("Versioned", "Second")], vec![])).await.unwrap();
        let stale = queue.run(WriteJob::new(vec![rename("Versioned", "Third")], vec![])).await;
        assert!(matches!(stale, Err(paywarden::store::StoreError::Conflict)), "{stale:?}");
        let (name,): (String,) = sqlx::query_as("SELECT name FROM merchants WHERE id = $1").bind(m.as_str()).fetch_one(app.store.reader()).await.unwrap();
        assert_eq!(name, "Second");
    }
}
