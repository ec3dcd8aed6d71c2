//! `GET /v1/events`: newest first, pagination, type filter, tenant isolation.

use paywarden::domain::api_key::Mode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::receiver::emit;

both_backends! {
    async fn events_are_listed_newest_first_paginated_and_filtered(app) {
        let (merchant, sk) = app.merchant_with_secret("Events").await;
        let mut ids = Vec::new();
        for (i, t) in ["payment.created", "payment.succeeded", "payment.created", "refund.succeeded", "payment.created"].iter().enumerate() {
            ids.push(emit(&app.store, &merchant, Mode::Test, t, json!({"id": format!("pay_{i}"), "n": i})).await);
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
        let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
        let all: Value = app.get("/v1/events", &sk).await.json().await.unwrap();
        assert_eq!(all["object"], "list");
        assert_eq!(all["has_more"], false);
        let listed: Vec<String> = all["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(listed, newest_first);
        let first = &all["data"][0];
        assert_eq!(first["object"], "event");
        assert_eq!(first["type"], "payment.created");
        assert_eq!(first["livemode"], false);
        assert_eq!(first["data"]["object"], json!({"id": "pay_4", "n": 4}));
        assert!(first["created"].as_i64().unwrap() > 1_700_000_000);
        // Pages of two.
        let page1: Value = app.get("/v1/events?limit=2", &sk).await.json().await.unwrap();
        assert_eq!(page1["has_more"], true);
        assert_eq!(page1["data"].as_array().unwrap().len(), 2);
        let after = page1["data"][1]["id"].as_str().unwrap();
        let page2: Value = app.get(&format!("/v1/events?limit=2&starting_after={after}"), &sk).await.json().await.unwrap();
        assert_eq!(page2["data"][0]["id"], newest_first[2].as_str());
        assert_eq!(page2["data"][1]["id"], newest_first[3].as_str());
        assert_eq!(page2["has_more"], true);
        // Filter by type, with pagination.
        let created: Value = app.get("/v1/events?type=payment.created&limit=2", &sk).await.json().await.unwrap();
        let got: Vec<&str> = created["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(got, [ids[4].as_str(), ids[2].as_str()]);
        assert_eq!(created["has_more"], true);
        let rest: Value = app.get(&format!("/v1/events?type=payment.created&starting_after={}", ids[2]), &sk).await.json().await.unwrap();
        assert_eq!(rest["data"].as_array().unwrap().len(), 1);
        assert_eq!(rest["data"][0]["id"], ids[0].as_str());
        let refunds: Value = app.get("/v1/events?type=refund.succeeded", &sk).await.json().await.unwrap();
        assert_eq!(refunds["data"].as_array().unwrap().len(), 1);
        // Bad parameters name themselves.
        for (query, param) in [("type=payment.*", "type"), ("limit=0", "limit"), ("limit=101", "limit"),
                               ("starting_after=pay_x", "starting_after"), ("colour=red", "colour")] {
            let r = app.get(&format!("/v1/events?{query}"), &sk).await;
            assert_eq!(r.status(), 400, "{query}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["param"], param, "{query}: {body}");
        }
        // One event.
        let shown: Value = app.get(&format!("/v1/events/{}", ids[1]), &sk).await.json().await.unwrap();
        assert_eq!(shown["type"], "payment.succeeded");
        assert_eq!(shown["data"]["object"]["n"], 1);
    }

    async fn the_events_of_one_change_store_its_snapshot_once_and_each_shows_it(app) {
        let (_, sk) = app.merchant_with_secret("Snapshots").await;
        let payment = crate::payments::pay(app, &sk, "4242424242424242", 1234, "automatic").await;
        let id = payment["id"].as_str().unwrap();
        let listed: Value = app.get("/v1/events", &sk).await.json().await.unwrap();
        let events = listed["data"].as_array().unwrap();
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["payment.succeeded", "payment.created"], "newest first");
        for event in events {
            assert_eq!(event["data"]["object"]["id"], id);
            assert_eq!(event["data"]["object"]["status"], "succeeded");
            assert_eq!(event["data"]["object"]["amount"], 1234);
            let shown: Value = app.get(&format!("/v1/events/{}", event["id"].as_str().unwrap()), &sk).await.json().await.unwrap();
            assert_eq!(&shown, event, "one event reads as it is listed");
        }
        let (created, succeeded) = (events[1]["id"].as_str().unwrap(), events[0]["id"].as_str().unwrap());
        let rows: Vec<(String, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT id, data, snapshot_of FROM events WHERE object_id = $1 ORDER BY id")
                .bind(id).fetch_all(app.store.reader()).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, created);
        assert!(rows[0].1.as_deref().is_some_and(|d| d.contains(id)) && rows[0].2.is_none(), "the first holds the snapshot");
        assert_eq!((rows[1].0.as_str(), rows[1].1.as_deref(), rows[1].2.as_deref()), (succeeded, None, Some(created)),
            "the second refers to it");
    }

    async fn events_of_other_merchants_are_invisible(app) {
        let (a, _) = app.merchant_with_secret("A").await;
        let (_, b_sk) = app.merchant_with_secret("B").await;
        let mut live = crate::support::new_key(&a, paywarden::domain::api_key::KeyKind::Secret, &[]);
        live.mode = Mode::Live;
        let a_live = app.issue(live).await;
        let id = emit(&app.store, &a, Mode::Live, "payment.succeeded", json!({"id": "pay_a"})).await;
        let mine: Value = app.get(&format!("/v1/events/{id}"), a_live.secret.expose()).await.json().await.unwrap();
        assert_eq!(mine["livemode"], true);
        let missing = paywarden::domain::ids::EventId::generate().unwrap().to_string();
        let mut answers = Vec::new();
        for target in [id.as_str(), missing.as_str(), "evt_'%20OR%201=1--"] {
            let r = app.get(&format!("/v1/events/{target}"), &b_sk).await;
            assert_eq!(r.status(), 404);
            let mut body: Value = r.json().await.unwrap();
            body["error"]["request_id"] = Value::Null;
            answers.push(body);
        }
        assert_eq!(answers[0], answers[1], "another merchant's event looks missing");
        let theirs: Value = app.get("/v1/events", &b_sk).await.json().await.unwrap();
        assert!(theirs["data"].as_array().unwrap().is_empty());
        let paged: Value = app.get(&format!("/v1/events?starting_after={id}"), &b_sk).await.json().await.unwrap();
        assert!(paged["data"].as_array().unwrap().is_empty());
    }
}
