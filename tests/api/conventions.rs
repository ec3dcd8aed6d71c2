//! API conventions: error format, request ids, security headers, body and
//! content-type limits, unknown fields and routes, pagination, OpenAPI.

use serde_json::{json, Value};

use crate::both_backends;

fn assert_error(body: &Value, code: &str) {
    let e = &body["error"];
    assert_eq!(e["code"], code, "{body}");
    for field in ["type", "code", "message", "param", "request_id"] {
        assert!(e.get(field).is_some(), "error lacks {field}: {body}");
    }
    assert!(e["request_id"].as_str().unwrap().starts_with("req_"));
}

both_backends! {
    async fn health_is_bare_and_carries_security_headers(app) {
        let r = app.client().get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let h = r.headers();
        assert_eq!(h["strict-transport-security"], "max-age=63072000; includeSubDomains");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cache-control"], "no-store");
        assert!(h["request-id"].to_str().unwrap().starts_with("req_"));
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");
    }

    async fn every_response_has_its_own_request_id_also_on_errors(app) {
        let a = app.client().get(app.url("/v1/merchant")).send().await.unwrap();
        let b = app.client().get(app.url("/v1/merchant")).send().await.unwrap();
        let (ida, idb) = (a.headers()["request-id"].clone(), b.headers()["request-id"].clone());
        assert_ne!(ida, idb);
        assert_eq!(a.headers()["cache-control"], "no-store");
        let body: Value = a.json().await.unwrap();
        assert_eq!(body["error"]["request_id"], ida.to_str().unwrap());
    }

    async fn unknown_routes_and_methods_answer_in_the_error_format(app) {
        let (_, sk) = app.merchant_with_secret("Routes").await;
        let r = app.get("/v1/does_not_exist", &sk).await;
        assert_eq!(r.status(), 404);
        assert_error(&r.json().await.unwrap(), "route_not_found");
        let r = app.client().delete(app.url("/v1/merchant")).bearer_auth(&sk).send().await.unwrap();
        assert_eq!(r.status(), 405);
        assert_error(&r.json().await.unwrap(), "method_not_allowed");
    }

    async fn bodies_over_the_limit_are_refused_with_413(app) {
        let (_, sk) = app.merchant_with_secret("Big").await;
        let body = json!({ "name": "x".repeat(70 * 1024) });
        let r = app.post("/v1/merchant", &sk, &body).await;
        assert_eq!(r.status(), 413);
        assert_error(&r.json().await.unwrap(), "body_too_large");
    }

    async fn wrong_content_type_and_malformed_json_are_4xx(app) {
        let (_, sk) = app.merchant_with_secret("Types").await;
        let r = app.client().post(app.url("/v1/merchant")).bearer_auth(&sk)
            .header("content-type", "text/plain").body("{\"name\":\"x\"}").send().await.unwrap();
        assert_eq!(r.status(), 415);
        assert_error(&r.json().await.unwrap(), "unsupported_content_type");
        let r = app.client().post(app.url("/v1/merchant")).bearer_auth(&sk)
            .header("content-type", "application/json").body("{\"name\": ").send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert_error(&r.json().await.unwrap(), "invalid_json");
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let r = app.client().post(app.url("/v1/merchant")).bearer_auth(&sk)
            .header("content-type", "application/json").body(deep).send().await.unwrap();
        assert_eq!(r.status(), 400);
    }

    async fn unknown_fields_are_rejected_naming_the_field(app) {
        let (_, sk) = app.merchant_with_secret("Fields").await;
        let r = app.post("/v1/merchant", &sk, &json!({"name": "ok", "id": "mer_x"})).await;
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_error(&body, "parameter_unknown");
        assert_eq!(body["error"]["param"], "id");
        let r = app.post("/v1/merchant", &sk, &json!({"name": 42})).await;
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["param"], "name");
        assert_eq!(body["error"]["code"], "parameter_invalid");
    }

    async fn query_parameters_are_validated(app) {
        let (_, sk) = app.merchant_with_secret("Query").await;
        for (q, param) in [("limit=0", "limit"), ("limit=101", "limit"), ("limit=abc", "limit"), ("colour=red", "colour"), ("starting_after=nope", "starting_after")] {
            let r = app.get(&format!("/v1/api_keys?{q}"), &sk).await;
            assert_eq!(r.status(), 400, "{q}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["param"], param, "{q}: {body}");
        }
    }

    async fn openapi_document_is_generated_and_lists_every_route(app) {
        let r = app.client().get(app.url("/openapi.json")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let doc: Value = r.json().await.unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        for path in ["/healthz", "/v1/merchant", "/v1/api_keys", "/v1/api_keys/{id}", "/v1/api_keys/{id}/revoke"] {
            assert!(doc["paths"].get(path).is_some(), "missing {path}");
        }
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }
}
