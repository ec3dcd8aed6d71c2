//! Attacks on the event list: injection in `type`, `starting_after`,
//! `limit`, in a parameter's name and in `/v1/events/{id}`. Each is a clean
//! 4xx naming the parameter; no answer carries another merchant's events.

use serde_json::Value;

use super::{assert_api_error, assert_intact, assert_not_echoed, enc, Rows, SQLI, XSS};
use crate::both_backends;
use crate::payments::pay;

both_backends! {
    async fn sql_injection_in_the_event_query_and_ids_is_refused(app) {
        let (_, sk) = app.merchant_with_secret("Events").await;
        let (_, other) = app.merchant_with_secret("Other").await;
        pay(app, &sk, "4242424242424242", 1000, "automatic").await;
        pay(app, &other, "4242424242424242", 2000, "automatic").await;
        let own: Value = app.get("/v1/events?limit=100", &sk).await.json().await.unwrap();
        let own: Vec<String> = own["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
        let theirs: Value = app.get("/v1/events?limit=100", &other).await.json().await.unwrap();
        let theirs: Vec<String> = theirs["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
        assert!(!own.is_empty() && !theirs.is_empty());
        let newest = &own[0];
        let before = Rows::snapshot(app).await;
        for payload in SQLI.iter().chain(XSS) {
            let p = enc(payload);
            for (query, param) in [
                (format!("type={p}"), "type"),
                (format!("type=payment.succeeded{p}"), "type"),
                (format!("starting_after={p}"), "starting_after"),
                (format!("starting_after={newest}{p}"), "starting_after"),
                (format!("starting_after={}", theirs[0]).replace("evt_", &format!("evt_{p}")), "starting_after"),
                (format!("limit={p}"), "limit"),
                (format!("limit=10{p}"), "limit"),
                (format!("type=payment.succeeded&limit=1{p}"), "limit"),
                (format!("{p}=1"), "query"),
            ] {
                let path = format!("/v1/events?{query}");
                let r = app.get(&path, &sk).await;
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                let e = assert_api_error(status, &text, &path);
                assert_eq!((status, e["error"]["param"].as_str()), (400, Some(param)), "{path}: {text}");
                assert_eq!(e["error"]["code"], "parameter_invalid", "{path}: {text}");
                assert_not_echoed(&e, payload, &path);
                for id in own.iter().chain(&theirs) {
                    assert!(!text.contains(id.as_str()), "{path}: {text}");
                }
            }
            for id in [p.clone(), format!("{newest}{p}"), format!("{}{p}", theirs[0])] {
                let path = format!("/v1/events/{id}");
                let r = app.get(&path, &sk).await;
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                let e = assert_api_error(status, &text, &path);
                assert_eq!((status, e["error"]["code"].as_str()), (404, Some("resource_missing")), "{path}: {text}");
                assert!(!text.contains("\"data\""), "{path}: {text}");
            }
        }
        // The list itself still answers exactly the merchant's own events.
        let listed: Value = app.get("/v1/events?limit=100", &sk).await.json().await.unwrap();
        let listed: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(listed, own.iter().map(String::as_str).collect::<Vec<_>>());
        assert_intact(app, before, |_| {}).await;
    }
}
