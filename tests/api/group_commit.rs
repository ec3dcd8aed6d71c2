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

/// One job of the batch tests below: a merchant row named `name`, renamed in
/// steps that each depend on the one before (a compare-and-set on the name
/// the previous statement wrote), so that the final name shows the order in
/// which the job's statements ran; `miss` puts a compare-and-set that finds
/// nothing in the middle of the job.
fn stepwise_job(i: usize, miss: bool) -> WriteJob {
    use paywarden::store::write_op::Failure;
    let id = format!("mer_step{i:020}");
    let step = |from: &str, to: &str| {
        WriteOp::new(
            "UPDATE merchants SET name = $1 WHERE id = $2 AND name = $3",
            vec![to.into(), id.as_str().into(), from.into()],
        )
        .expect_one(Failure::Conflict)
    };
    let mut ops = vec![
        WriteOp::new(
            "INSERT INTO merchants (id, name, created_at) VALUES ($1, 'step a', 0)",
            vec![Value::Text(id.clone())],
        ),
        step("step a", "step ab"),
    ];
    if miss {
        ops.push(step("no such name", "step missed"));
    }
    ops.push(step("step ab", "step abc"));
    let mut event = AuditEvent::new("test.step", Outcome::Success);
    event.resource = Some(id.clone());
    WriteJob::new(ops, vec![event])
}

both_backends! {
    async fn a_compare_and_set_miss_in_the_middle_of_a_batch_undoes_only_its_job(app) {
        let queue = app.store.group_commit().clone();
        // Sent together, so that they share batches: every third job's
        // compare-and-set in its middle finds nothing.
        let jobs: Vec<_> = (0..30)
            .map(|i| {
                let queue = queue.clone();
                tokio::spawn(async move { queue.run(stepwise_job(i, i % 3 == 1)).await })
            })
            .collect();
        let mut committed = Vec::new();
        for (i, job) in jobs.into_iter().enumerate() {
            let outcome = job.await.unwrap();
            if i % 3 == 1 {
                assert!(matches!(outcome, Err(paywarden::store::StoreError::Conflict)), "job {i}: {outcome:?}");
            } else {
                assert!(outcome.is_ok(), "job {i}: {outcome:?}");
                committed.push(format!("mer_step{i:020}"));
            }
        }
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, name FROM merchants WHERE id LIKE 'mer_step%' ORDER BY id")
            .fetch_all(app.store.reader())
            .await
            .unwrap();
        let ids: Vec<_> = rows.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(ids, committed, "a failed job's insert before its miss is undone with it");
        assert!(
            rows.iter().all(|(_, name)| name == "step abc"),
            "each job's statements ran in order, its own writes visible to the next: {rows:?}"
        );
        let audit = app.audit().await;
        let written: Vec<_> = audit
            .iter()
            .filter(|r| r.event.action == "test.step")
            .filter_map(|r| r.event.resource.clone())
            .collect();
        let mut sorted = written.clone();
        sorted.sort();
        assert_eq!(sorted, committed, "audit entries of the committed jobs only, each once");
        let out = app.cli(&["audit", "verify"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }

    async fn a_job_reading_an_earlier_jobs_row_in_the_same_batch_sees_it(app) {
        use paywarden::store::write_op::Failure;
        let queue = app.store.group_commit().clone();
        // Twenty pairs: a job creates a row, the next renames it with a
        // compare-and-set. Whatever the batches, a rename either follows its
        // creation (and succeeds) or precedes it (and misses alone).
        let mut tasks = Vec::new();
        for i in 0..20 {
            let id = format!("mer_pair{i:020}");
            let create = WriteJob::new(
                vec![WriteOp::new("INSERT INTO merchants (id, name, created_at) VALUES ($1, 'pair new', 0)", vec![Value::Text(id.clone())])],
                vec![],
            );
            let rename = WriteJob::new(
                vec![WriteOp::new("UPDATE merchants SET name = 'pair renamed' WHERE id = $1 AND name = 'pair new'", vec![Value::Text(id.clone())]).expect_one(Failure::Conflict)],
                vec![],
            );
            let (q1, q2) = (queue.clone(), queue.clone());
            tasks.push(tokio::spawn(async move {
                let created = q1.run(create);
                let renamed = q2.run(rename);
                // Both queued before either is awaited to the end.
                let (c, r) = tokio::join!(created, renamed);
                (id, c.is_ok(), r.is_ok())
            }));
        }
        for task in tasks {
            let (id, created, renamed) = task.await.unwrap();
            assert!(created, "{id}");
            let (name,): (String,) = sqlx::query_as("SELECT name FROM merchants WHERE id = $1").bind(&id).fetch_one(app.store.reader()).await.unwrap();
            assert_eq!(name == "pair renamed", renamed, "{id}: the row says what the rename's answer said");
        }
    }
}
