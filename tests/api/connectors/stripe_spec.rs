//! The connector and the fake both speak Stripe as its OpenAPI document
//! (API 2023-08-16, the subset in `../shared/vendor-specs/stripe`) defines
//! it: every parameter the connector sends exists on the operation it calls,
//! and every field of every answer the fake gave exists in the schema of
//! that answer (success or error), nested objects included.

use paywarden::connectors::stripe::Stripe;
use paywarden::connectors::stripe::StripeConfig;
use paywarden::connectors::{AuthorizeOutcome, Connector};
use paywarden::domain::ids::RefundId;
use serde_json::Value;

use super::fake_stripe::wire::Call;
use super::fake_stripe::FakeStripe;
use super::{authorize, config_for, eur};

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/vendor-specs/stripe/stripe-gateway-subset.json"
);

fn spec() -> Value {
    let text = std::fs::read_to_string(SPEC).unwrap_or_else(|e| panic!("the Stripe spec subset at {SPEC}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            resolve(spec, &spec["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// The object schemas `schema` may be (itself, or its anyOf/oneOf/allOf
/// variants), resolved.
fn variants<'a>(spec: &'a Value, schema: &'a Value) -> Vec<&'a Value> {
    let schema = resolve(spec, schema);
    let mut found = Vec::new();
    if schema.get("properties").is_some() || schema.get("additionalProperties").is_some() {
        found.push(schema);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for variant in schema[key].as_array().into_iter().flatten() {
            found.extend(variants(spec, variant));
        }
    }
    if let Some(items) = schema.get("items") {
        found.extend(variants(spec, items));
    }
    found
}

/// Records every key of `value` that no variant of `schema` declares.
fn check(spec: &Value, value: &Value, schema: &Value, at: &str, problems: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            let candidates = variants(spec, schema);
            if candidates
                .iter()
                .any(|c| c.get("additionalProperties").is_some_and(|a| a != false))
            {
                return; // free-form (metadata)
            }
            for (key, field) in object {
                match candidates.iter().find_map(|c| c["properties"].get(key)) {
                    Some(field_schema) => check(spec, field, field_schema, &format!("{at}.{key}"), problems),
                    None => problems.push(format!("{at}.{key}")),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                check(spec, item, schema, &format!("{at}[]"), problems);
            }
        }
        _ => {}
    }
}

/// The spec's path template that `path` matches.
fn operation<'a>(spec: &'a Value, call: &Call) -> (&'a str, &'a Value) {
    let segments: Vec<&str> = call.path.split('/').collect();
    let paths = spec["paths"].as_object().unwrap();
    let (template, item) = paths
        .iter()
        .filter(|(template, _)| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == segments.len() && parts.iter().zip(&segments).all(|(p, s)| p.starts_with('{') || p == s)
        })
        // A literal segment (`search`) wins over a parameter (`{intent}`).
        .min_by_key(|(template, _)| template.matches('{').count())
        .unwrap_or_else(|| panic!("no operation in the spec for {}", call.path));
    (template.as_str(), &item[call.method.to_ascii_lowercase()])
}

fn check_call(spec: &Value, call: &Call, problems: &mut Vec<String>) {
    let (template, op) = operation(spec, call);
    let at = format!("{} {template}", call.method);
    if call.method == "POST" {
        let body = &op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
        for (key, _) in &call.form {
            let (top, nested) = match key.split_once('[') {
                Some((top, rest)) => (top, rest.trim_end_matches(']').trim_end_matches("[")),
                None => (key.as_str(), ""),
            };
            let Some(field) = body["properties"].get(top) else {
                problems.push(format!("{at}: parameter {key}"));
                continue;
            };
            if !nested.is_empty() {
                let candidates = variants(spec, field);
                let free = candidates.iter().any(|c| c.get("additionalProperties").is_some());
                if !free && !candidates.iter().any(|c| c["properties"].get(nested).is_some()) {
                    problems.push(format!("{at}: parameter {key}"));
                }
            }
        }
    } else {
        let query: Vec<(String, String)> = form_urlencoded::parse(call.query.as_bytes()).into_owned().collect();
        for (key, _) in &query {
            let declared = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == key.as_str() && p["in"] == "query");
            if !declared {
                problems.push(format!("{at}: query parameter {key}"));
            }
        }
    }
    let (status, body) = call.answer.clone().expect("answered");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let response = if status == 200 { "200" } else { "default" };
    let schema = &op["responses"][response]["content"]["application/json"]["schema"];
    assert!(!schema.is_null(), "{at}: no {response} response in the spec");
    check(spec, &answer, schema, &format!("{at} -> {status}"), problems);
}

#[tokio::test]
async fn requests_and_the_fakes_answers_use_only_fields_the_spec_defines() {
    let spec = spec();
    let fake = FakeStripe::start().await;
    let stripe = Stripe::new(StripeConfig {
        return_url: Some("https://gateway.example/return".into()),
        ..config_for(&fake.base)
    })
    .unwrap();
    let (payment, outcome) = authorize(&stripe, "4242424242424242", 2000).await;
    let AuthorizeOutcome::Approved { reference } = outcome.unwrap().outcome else {
        panic!("approved")
    };
    stripe.capture(&reference, eur(1500)).await.unwrap();
    stripe
        .refund(&reference, &RefundId::generate().unwrap(), eur(100))
        .await
        .unwrap();
    let _ = authorize(&stripe, "4000000000009995", 2000).await; // a 402 card_error
    let _ = authorize(&stripe, "4000002760003184", 2000).await; // next_action
    let (_, voided) = authorize(&stripe, "4242424242424242", 500).await;
    let AuthorizeOutcome::Approved { reference: voided } = voided.unwrap().outcome else {
        panic!("approved")
    };
    stripe.void(&voided).await.unwrap();
    stripe.sync(&payment).await.unwrap();
    stripe_at_restart(&fake).sync(&payment).await.unwrap(); // the search API

    let calls = fake.calls();
    assert!(calls.len() >= 17, "{} calls", calls.len());
    let mut problems = Vec::new();
    for call in &calls {
        check_call(&spec, call, &mut problems);
    }
    assert!(problems.is_empty(), "fields the spec does not define: {problems:#?}");
}

fn stripe_at_restart(fake: &FakeStripe) -> Stripe {
    Stripe::new(config_for(&fake.base)).unwrap()
}

#[test]
fn the_checker_catches_an_undeclared_field() {
    let spec = spec();
    let intent = serde_json::json!({"id": "pi_1", "object": "payment_intent", "not_a_field": 1,
                                    "next_action": {"type": "x", "bogus": true}});
    let mut problems = Vec::new();
    check(
        &spec,
        &intent,
        &serde_json::json!({"$ref": "#/components/schemas/payment_intent"}),
        "pi",
        &mut problems,
    );
    problems.sort();
    assert_eq!(problems, ["pi.next_action.bogus", "pi.not_a_field"]);
}
