//! Tests of the generated OpenAPI document: id and name patterns, links,
//! shared and body-related responses, path parameters, the idempotency
//! header, list item schemas.

use serde_json::Value;

use crate::domain::ids::{ApiKeyId, MerchantId, PaymentId, RefundId};

#[test]
fn id_patterns_describe_generated_ids() {
    for (id, prefix) in [
        (ApiKeyId::generate().unwrap().to_string(), ApiKeyId::PREFIX),
        (MerchantId::generate().unwrap().to_string(), MerchantId::PREFIX),
    ] {
        let pattern = crate::api::schema::id_schema(prefix).build().pattern.unwrap();
        assert_eq!(pattern, format!("^{prefix}[0-9A-Za-z]{{24}}$"));
        let rest = id.strip_prefix(prefix).unwrap();
        assert_eq!(rest.len(), 24, "{id}");
        assert!(rest.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
    }
}

/// Every link names an operation of the document and takes the id the
/// response carries, so a client (or Schemathesis's stateful phase) can
/// follow a created object to the operations on it.
#[test]
fn creating_operations_link_to_the_operations_on_what_they_created() {
    let doc: Value = serde_json::from_str(super::document()).unwrap();
    let mut operations = std::collections::HashMap::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            operations.insert(op["operationId"].as_str().unwrap().to_owned(), op.clone());
        }
    }
    let linked = |from: &str| -> Vec<String> {
        let links = operations[from]["responses"]["200"]["links"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for link in links.values() {
            let target = link["operationId"].as_str().unwrap();
            assert!(operations.contains_key(target), "{from} links to unknown {target}");
            assert_eq!(link["parameters"]["id"], "$response.body#/id", "{from} -> {target}");
            let params = operations[target]["parameters"].as_array().unwrap();
            assert!(
                params.iter().any(|p| p["name"] == "id" && p["in"] == "path"),
                "{target} takes an id"
            );
        }
        let mut targets: Vec<String> = links
            .values()
            .map(|l| l["operationId"].as_str().unwrap().to_owned())
            .collect();
        targets.sort();
        targets
    };
    assert_eq!(
        linked("create_payment"),
        ["cancel_payment", "capture_payment", "confirm_payment", "get_payment"]
    );
    assert_eq!(linked("create_refund"), ["get_refund"]);
    assert_eq!(linked("create_token"), ["delete_token", "get_token"]);
    assert_eq!(linked("create_webhook_endpoint").len(), 5);
}

#[test]
fn authenticated_operations_document_the_shared_errors() {
    let doc: Value = serde_json::from_str(super::document()).unwrap();
    let mut ids = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ids.push(op["operationId"].as_str().unwrap().to_owned());
            let responses = op["responses"].as_object().unwrap();
            for (status, response) in responses {
                let described =
                    response.get("$ref").is_some() || response["description"].as_str().is_some_and(|d| !d.is_empty());
                assert!(described, "{method} {path} {status} has no description");
            }
            if op.get("security").is_some() {
                assert!(op["security"].as_array().is_some_and(|s| !s.is_empty()));
                for status in ["401", "429", "500", "503"] {
                    assert!(responses.contains_key(status), "{method} {path} lacks {status}");
                }
            }
        }
    }
    let count = ids.len();
    assert!(count > 0);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "operation ids must be unique");
}

/// The ranges of a regex class body such as `\u0000-\u001F\u00A0`.
fn class_ranges(class: &str) -> Vec<(u32, u32)> {
    let code = |s: &str| u32::from_str_radix(s, 16).unwrap();
    class
        .split("\\u")
        .filter(|part| !part.is_empty())
        .fold(Vec::new(), |mut ranges: Vec<(u32, u32)>, part| {
            match part.strip_suffix('-') {
                Some(low) => ranges.push((code(low), u32::MAX)),
                None => match ranges.last_mut() {
                    Some(last) if last.1 == u32::MAX => last.1 = code(part),
                    _ => ranges.push((code(part), code(part))),
                },
            }
            ranges
        })
}

/// The documented `name` pattern, `^[W]*[^N](?:[^A]{0,198}[^N])?[W]*$`,
/// accepts what `MerchantName::parse` accepts: W is the whitespace that
/// `trim` removes, A the characters forbidden in a name, N those and
/// whitespace (a name cannot start or end with it once trimmed).
#[test]
fn merchant_name_pattern_matches_the_parser() {
    use crate::domain::merchant::MerchantName;
    let doc: Value = serde_json::from_str(super::document()).unwrap();
    let name = &doc["components"]["schemas"]["UpdateMerchant"]["allOf"][0]["properties"]["name"];
    let pattern = name["pattern"].as_str().unwrap();
    let classes: Vec<&str> = pattern
        .split('[')
        .skip(1)
        .map(|c| c.split(']').next().unwrap())
        .collect();
    let [w, n, a, ..] = classes[..] else {
        panic!("{pattern}");
    };
    let (n, a) = (n.strip_prefix('^').unwrap(), a.strip_prefix('^').unwrap());
    assert_eq!(pattern, format!("^[{w}]*[^{n}](?:[^{a}]{{0,198}}[^{n}])?[{w}]*$"));
    assert_eq!(
        name["maxLength"],
        Value::Null,
        "whitespace around the name does not count"
    );
    let (w, n, a) = (class_ranges(w), class_ranges(n), class_ranges(a));
    let within = |ranges: &[(u32, u32)], c: char| ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&u32::from(c)));
    for c in (0..=0x10FFFF).filter_map(char::from_u32) {
        let hex = u32::from(c);
        assert_eq!(
            c.is_whitespace(),
            within(&w, c),
            "U+{hex:04X}: W is `trim`'s whitespace"
        );
        let inside = MerchantName::parse(&format!("a{c}a")).is_ok();
        assert_eq!(inside, !within(&a, c), "U+{hex:04X} inside a name");
        let alone = MerchantName::parse(&c.to_string()).is_ok();
        assert_eq!(alone, !within(&n, c), "U+{hex:04X} as the whole name");
    }
    let ok = |s: String| MerchantName::parse(&s).is_ok();
    assert!(ok("x".repeat(200)) && !ok("x".repeat(201)) && ok(format!("\t {} \n", "x".repeat(200))));
}

/// Each `{param}` is documented once (utoipa also derives path parameters
/// from axum's `Path` extractor), with the shape of the id it holds.
#[test]
fn path_parameters_are_documented_once_with_their_shape() {
    let doc: Value = serde_json::from_str(super::document()).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let parameters = op["parameters"].as_array().cloned().unwrap_or_default();
            let mut seen: Vec<(String, String)> = parameters
                .iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap().to_owned(),
                        p["in"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            let count = seen.len();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), count, "{method} {path}: duplicated parameters");
            for p in parameters.iter().filter(|p| p["in"] == "path") {
                let name = p["name"].as_str().unwrap();
                assert!(path.contains(&format!("{{{name}}}")), "{method} {path}: {name}");
                let prefix = [
                    ("/v1/api_keys/", ApiKeyId::PREFIX),
                    ("/v1/payments/", PaymentId::PREFIX),
                    ("/v1/refunds/", RefundId::PREFIX),
                ]
                .into_iter()
                .find_map(|(route, prefix)| path.starts_with(route).then_some(prefix));
                if let Some(prefix) = prefix {
                    let expected = crate::api::schema::id_schema(prefix).build().pattern;
                    assert_eq!(p["schema"]["pattern"].as_str(), expected.as_deref(), "{method} {path}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 2 + 4 + 1, "api_keys, payments and refunds routes with an id");
}

/// Every POST that reads a JSON body says what an oversized (413) or
/// non-JSON (415) body gets.
#[test]
fn posts_with_a_body_document_413_and_415() {
    let doc: Value = serde_json::from_str(super::document()).unwrap();
    let mut bodies = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get("post") else { continue };
        if op.get("requestBody").is_none() {
            continue;
        }
        bodies += 1;
        for status in ["400", "413", "415"] {
            assert!(op["responses"].get(status).is_some(), "POST {path} lacks {status}");
        }
    }
    assert!(bodies >= 7, "{bodies}");
}

/// `null` is "not given" (serde's `Option`), and one field must be given.
#[test]
fn update_merchant_needs_one_field_given() {
    let doc: Value = serde_json::from_str(super::document()).unwrap();
    let body = &doc["components"]["schemas"]["UpdateMerchant"];
    let (fields, one_of_them) = (&body["allOf"][0], &body["allOf"][1]["anyOf"]);
    assert_eq!(fields["additionalProperties"], false);
    assert_eq!(fields["required"], Value::Null);
    assert_eq!(fields["maxProperties"], Value::Null);
    for (i, field) in ["element_origins", "name"].into_iter().enumerate() {
        let types = fields["properties"][field]["type"].as_array().unwrap();
        assert!(types.contains(&Value::from("null")), "{field}");
        assert_eq!(one_of_them[i]["required"][0], field);
        assert_eq!(one_of_them[i]["properties"][field]["type"][0], types[0]);
    }
}

#[test]
fn every_authenticated_post_takes_an_idempotency_key_but_those_that_opt_out() {
    let doc: Value = serde_json::from_str(super::document()).unwrap();
    let (mut posts, mut opted_out) = (0, 0);
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let parameters = op["parameters"].as_array().cloned().unwrap_or_default();
            let header = parameters.iter().find(|p| p["name"] == "Idempotency-Key");
            if method != "post" || op.get("security").is_none() {
                assert!(header.is_none(), "{method} {path}");
                continue;
            }
            if super::idempotency::not_idempotent(path).is_some() {
                opted_out += 1;
                assert!(header.is_none(), "{method} {path} refuses Idempotency-Key");
                let refusal = op["responses"]["400"]["description"].as_str().unwrap_or_default();
                assert!(
                    refusal.contains("idempotency_not_supported"),
                    "{method} {path}: {refusal}"
                );
                let description = op["description"].as_str().unwrap_or_default();
                assert!(
                    description.contains("Idempotency-Key"),
                    "{method} {path}: {description}"
                );
                for status in ["409", "422"] {
                    assert!(
                        op["responses"].get(status).is_none(),
                        "{method} {path} answers no {status}"
                    );
                }
                assert!(op["responses"]["200"]["headers"].get("Idempotent-Replayed").is_none());
                continue;
            }
            posts += 1;
            let header = header.unwrap_or_else(|| panic!("{method} {path} lacks Idempotency-Key"));
            assert_eq!(
                (header["in"].as_str(), header["required"].as_bool()),
                (Some("header"), Some(false))
            );
            assert_eq!(header["schema"]["maxLength"], 255);
            for status in ["400", "409", "422"] {
                assert!(op["responses"].get(status).is_some(), "{method} {path} lacks {status}");
            }
            let ok = op["responses"]
                .get("200")
                .unwrap_or_else(|| panic!("{method} {path} lacks 200"));
            assert!(ok["headers"].get("Idempotent-Replayed").is_some(), "{method} {path}");
        }
    }
    assert!(posts >= 3, "{posts}");
    assert_eq!(
        opted_out,
        super::idempotency::NOT_IDEMPOTENT.len(),
        "every opted-out route is an authenticated POST of the document"
    );
    let responses = &doc["components"]["responses"];
    assert!(responses["IdempotencyKeyReused"]["description"]
        .as_str()
        .unwrap()
        .contains("idempotency_key_reused"));
    assert!(responses["IdempotencyKeyInUse"]["description"]
        .as_str()
        .unwrap()
        .contains("idempotency_key_in_use"));
}

#[test]
fn list_items_refer_to_their_component() {
    let doc: Value = serde_json::from_str(super::document()).unwrap();
    let list = &doc["components"]["schemas"]["ListResponse_ApiKeyView"];
    assert_eq!(
        list["properties"]["data"]["items"]["$ref"],
        "#/components/schemas/ApiKeyView"
    );
    assert_eq!(list["properties"]["object"]["enum"][0], "list");
}

/// The access table and the document name the same `/v1` operations: no
/// route is left without a rule (it would be refused with 500), and no rule
/// names a route that does not exist.
#[test]
fn every_v1_operation_has_exactly_one_access_rule() {
    let doc: Value = serde_json::from_str(super::document()).unwrap();
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            let method = axum::http::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            assert!(
                crate::api::access::rule(&method, path).is_some(),
                "{method} {path} has no access rule"
            );
            documented.push((method, path.clone()));
        }
    }
    for (method, route, _) in crate::api::access::RULES {
        let n = crate::api::access::RULES
            .iter()
            .filter(|(m, r, _)| m == method && r == route)
            .count();
        assert_eq!(n, 1, "{method} {route} has {n} rules");
        assert!(
            documented.iter().any(|(m, p)| m == method && p == route),
            "{method} {route} is not an operation of the document"
        );
    }
    assert_eq!(documented.len(), crate::api::access::RULES.len());
}
