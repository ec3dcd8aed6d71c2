//! What the fake PayPal does with a call: the OAuth 2.0 token, Orders v2
//! (create, get, authorize, capture with `payment_source.card`) and Payments
//! v2 (capture and void an authorization, refund a capture), with PayPal's
//! JSON shapes (checked against the spec subsets by `paypal_spec`), its
//! error body (`name`, `message`, `details[].issue`), its processor response
//! codes, and its idempotency: a POST whose `PayPal-Request-Id` was seen gets
//! the first answer again.
//!
//! It is stricter than PayPal where that catches a connector bug: a POST
//! without `PayPal-Request-Id`, a call without a valid bearer token, or an
//! amount with more decimals than its currency has is refused.

use std::collections::HashMap;

use base64::Engine;
use serde_json::{json, Value};

use super::super::fake_stripe::wire::{Answer, Call};

pub const CLIENT_ID: &str = "AfakePaypalClientId0123456789";
pub const CLIENT_SECRET: &str = "EfakePaypalClientSecret0123456789";

/// How many times each operation changed the fake's state (replays and
/// refusals do not count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub tokens: usize,
    pub orders: usize,
    pub authorizations: usize,
    pub captures: usize,
    pub voids: usize,
    pub refunds: usize,
    pub cert_fetches: usize,
}

#[derive(Default)]
pub struct Ledger {
    next: u64,
    orders: HashMap<String, Value>,
    /// Authorization or capture id → its order.
    owners: HashMap<String, String>,
    tokens: Vec<String>,
    idempotency: HashMap<String, Answer>,
    pub applied: Applied,
    pub token_lifetime: u64,
    /// Answer card payments as an account not enabled for them does.
    pub cards_disabled: bool,
}

pub fn answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        body: if body.is_null() {
            String::new()
        } else {
            body.to_string()
        },
        replayed: false,
    }
}

/// PayPal's error body.
pub fn paypal_error(status: u16, name: &str, issue: &str) -> Answer {
    answer(
        status,
        json!({"name": name, "message": "The requested action could not be performed.", "debug_id": "f00dfake",
               "details": [{"issue": issue, "description": "A description PayPal writes for people."}]}),
    )
}

fn unprocessable(issue: &str) -> Answer {
    paypal_error(422, "UNPROCESSABLE_ENTITY", issue)
}

fn not_found() -> Answer {
    paypal_error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
}

/// A test card's refusal: an error issue, or a denied authorization's
/// processor response code.
enum Refusal {
    Issue(&'static str),
    Denied(&'static str),
}

fn refusal_of(number: &str) -> Option<Refusal> {
    Some(match number {
        "4000000000000002" => Refusal::Issue("INSTRUMENT_DECLINED"),
        "4000000000000069" => Refusal::Issue("CARD_EXPIRED"),
        "4000000000009995" => Refusal::Denied("5120"),
        "4000000000000127" => Refusal::Denied("5110"),
        "4000000000000119" => Refusal::Denied("9100"),
        "4000000000009987" => Refusal::Denied("9520"),
        _ => return None,
    })
}

/// Minor units of a PayPal amount, refusing more decimals than the currency has.
fn minor(amount: &Value) -> Option<(String, i64)> {
    let currency = amount["currency_code"].as_str()?.to_owned();
    let exponent = if ["JPY", "KRW", "HUF", "TWD"].contains(&currency.as_str()) {
        0
    } else {
        2
    };
    let value = amount["value"].as_str()?;
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() != exponent {
        return None;
    }
    Some((currency, format!("{whole}{fraction}").parse().ok()?))
}

fn money(currency: &str, minor: i64) -> Value {
    let value = if ["JPY", "KRW", "HUF", "TWD"].contains(&currency) {
        minor.to_string()
    } else {
        format!("{}.{:02}", minor / 100, minor % 100)
    };
    json!({"currency_code": currency, "value": value})
}

impl Ledger {
    fn id(&mut self) -> String {
        self.next += 1;
        format!("7FAKE{:012}", self.next)
    }

    /// Answers `call`, replaying a known request id.
    pub fn answer(&mut self, call: &Call) -> Answer {
        if call.path == "/v1/oauth2/token" {
            return self.token(call);
        }
        let bearer = call.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer "));
        if !bearer.is_some_and(|t| self.tokens.iter().any(|known| known == t)) {
            return answer(
                401,
                json!({"error": "invalid_token", "error_description": "Token signature verification failed"}),
            );
        }
        if call.method != "POST" {
            let id = call.path.strip_prefix("/v2/checkout/orders/").unwrap_or_default();
            return self.orders.get(id).map_or_else(not_found, |o| answer(200, o.clone()));
        }
        let Some(key) = header(call, "paypal-request-id") else {
            return paypal_error(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER");
        };
        if let Some(seen) = self.idempotency.get(&key) {
            return Answer {
                replayed: true,
                ..seen.clone()
            };
        }
        let Ok(body) = serde_json::from_slice::<Value>(&call.body) else {
            return paypal_error(400, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON");
        };
        let path: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
        let done = match path.as_slice() {
            ["v2", "checkout", "orders"] => self.create_order(&body),
            ["v2", "checkout", "orders", id, step @ ("authorize" | "capture")] => self.pay_order(id, step, &body),
            ["v2", "payments", "authorizations", id, "capture"] => self.capture_authorization(id, &body),
            ["v2", "payments", "authorizations", id, "void"] => self.void(id),
            ["v2", "payments", "captures", id, "refund"] => self.refund(id, &body),
            _ => not_found(),
        };
        // PayPal stores the answer of a request id whatever it was.
        self.idempotency.insert(key, done.clone());
        done
    }

    /// Revokes every token issued (as an expiry PayPal noticed first).
    pub fn revoke_tokens(&mut self) {
        self.tokens.clear();
    }

    fn token(&mut self, call: &Call) -> Answer {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
        );
        if call.authorization.as_deref() != Some(expected.as_str()) {
            return answer(
                401,
                json!({"error": "invalid_client", "error_description": "Client Authentication failed"}),
            );
        }
        if call.param("grant_type") != Some("client_credentials") {
            return answer(400, json!({"error": "unsupported_grant_type"}));
        }
        self.applied.tokens += 1;
        let token = format!("A21AAfakeToken{:04}", self.applied.tokens);
        self.tokens.push(token.clone());
        answer(
            200,
            json!({"scope": "https://uri.paypal.com/services/payments/payment", "access_token": token,
                   "token_type": "Bearer", "app_id": "APP-80W284485P519543T", "expires_in": self.token_lifetime,
                   "nonce": "2026-12-07T20:00:00Z-fake"}),
        )
    }

    fn create_order(&mut self, body: &Value) -> Answer {
        let intent = body["intent"].as_str().unwrap_or_default();
        let unit = &body["purchase_units"][0];
        if !["AUTHORIZE", "CAPTURE"].contains(&intent) || minor(&unit["amount"]).is_none() {
            return paypal_error(400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE");
        }
        self.applied.orders += 1;
        let id = self.id();
        let order = json!({
            "id": id, "intent": intent, "status": "CREATED", "create_time": "2026-12-07T20:00:00Z",
            "purchase_units": [{"reference_id": unit["reference_id"], "custom_id": unit["custom_id"],
                                "amount": unit["amount"], "payments": {}}],
            "links": [{"href": format!("https://api-m.sandbox.paypal.com/v2/checkout/orders/{id}"), "rel": "self", "method": "GET"}],
        });
        self.orders.insert(id, order.clone());
        answer(201, order)
    }

    fn pay_order(&mut self, id: &str, step: &str, body: &Value) -> Answer {
        let cards_disabled = self.cards_disabled;
        let next = self.id();
        let Some(order) = self.orders.get_mut(id) else {
            return not_found();
        };
        if order["status"] != "CREATED" {
            return unprocessable(if step == "capture" {
                "ORDER_ALREADY_CAPTURED"
            } else {
                "ORDER_ALREADY_AUTHORIZED"
            });
        }
        if (order["intent"] == "CAPTURE") != (step == "capture") {
            return unprocessable("ACTION_DOES_NOT_MATCH_INTENT");
        }
        let card = &body["payment_source"]["card"];
        let (Some(number), Some(expiry)) = (card["number"].as_str(), card["expiry"].as_str()) else {
            return unprocessable("CARD_NUMBER_REQUIRED");
        };
        if expiry.len() != 7 || expiry.as_bytes()[4] != b'-' {
            return paypal_error(400, "INVALID_REQUEST", "INVALID_PARAMETER_SYNTAX");
        }
        if cards_disabled {
            return unprocessable("PAYEE_NOT_ENABLED_FOR_CARD_PROCESSING");
        }
        let code = match refusal_of(number) {
            Some(Refusal::Issue(issue)) => return unprocessable(issue),
            Some(Refusal::Denied(code)) => code,
            None => "0000",
        };
        let (status, list) = match (code, step) {
            ("0000", "capture") => ("COMPLETED", "captures"),
            (_, "capture") => ("DECLINED", "captures"),
            ("0000", _) => ("CREATED", "authorizations"),
            _ => ("DENIED", "authorizations"),
        };
        if list == "captures" && status == "COMPLETED" {
            self.applied.captures += 1;
        } else if status == "CREATED" {
            self.applied.authorizations += 1;
        }
        let unit = &mut order["purchase_units"][0];
        let transaction = json!({"id": next, "status": status, "amount": unit["amount"], "custom_id": unit["custom_id"],
            "processor_response": {"avs_code": "Y", "cvv_code": "M", "response_code": code},
            "create_time": "2026-12-07T20:00:01Z"});
        unit["payments"][list] = json!([transaction]);
        order["status"] = json!("COMPLETED");
        order["payment_source"] =
            json!({"card": {"last_digits": &number[number.len() - 4..], "brand": "VISA", "type": "CREDIT"}});
        let order = order.clone();
        self.owners.insert(next, id.to_owned());
        answer(201, order)
    }

    /// The order owning transaction `id` and that transaction's place in it.
    fn transaction(&mut self, id: &str, list: &str) -> Option<&mut Value> {
        let order = self.owners.get(id)?;
        let payments = &mut self.orders.get_mut(order)?["purchase_units"][0]["payments"];
        payments[list].as_array_mut()?.iter_mut().find(|t| t["id"] == id)
    }

    fn capture_authorization(&mut self, id: &str, body: &Value) -> Answer {
        let next = self.id();
        let Some(authorization) = self.transaction(id, "authorizations") else {
            return not_found();
        };
        match authorization["status"].as_str() {
            Some("CREATED") => {}
            Some("VOIDED") => return unprocessable("AUTHORIZATION_VOIDED"),
            _ => return unprocessable("AUTHORIZATION_ALREADY_CAPTURED"),
        }
        let (currency, authorized) = minor(&authorization["amount"]).unwrap_or_default();
        let wanted = if body["amount"].is_null() {
            Some((currency.clone(), authorized))
        } else {
            minor(&body["amount"])
        };
        let Some((wanted_currency, amount)) = wanted else {
            return unprocessable("DECIMAL_PRECISION");
        };
        if wanted_currency != currency || amount > authorized || amount <= 0 {
            return unprocessable("AUTHORIZATION_AMOUNT_EXCEEDED");
        }
        let final_capture = body["final_capture"].as_bool().unwrap_or(false);
        authorization["status"] = json!(if final_capture {
            "CAPTURED"
        } else {
            "PARTIALLY_CAPTURED"
        });
        let capture = json!({"id": next, "status": "COMPLETED", "amount": money(&currency, amount),
            "final_capture": final_capture, "custom_id": authorization["custom_id"], "create_time": "2026-12-07T20:00:02Z"});
        let order = self.owners.get(id).cloned().unwrap_or_default();
        if let Some(order) = self.orders.get_mut(&order) {
            let payments = &mut order["purchase_units"][0]["payments"];
            if payments["captures"].is_null() {
                payments["captures"] = json!([]);
            }
            payments["captures"].as_array_mut().unwrap().push(capture.clone());
        }
        self.owners.insert(next, order);
        self.applied.captures += 1;
        answer(201, capture)
    }

    fn void(&mut self, id: &str) -> Answer {
        let Some(authorization) = self.transaction(id, "authorizations") else {
            return not_found();
        };
        match authorization["status"].as_str() {
            Some("CREATED") => {}
            Some("VOIDED") => return unprocessable("PREVIOUSLY_VOIDED"),
            _ => return unprocessable("PREVIOUSLY_CAPTURED"),
        }
        authorization["status"] = json!("VOIDED");
        let voided = authorization.clone();
        self.applied.voids += 1;
        answer(200, voided)
    }

    fn refund(&mut self, id: &str, body: &Value) -> Answer {
        let next = self.id();
        let order = self.owners.get(id).cloned().unwrap_or_default();
        let refunded: i64 = self.orders.get(&order).map_or(0, |o| {
            o["purchase_units"][0]["payments"]["refunds"].as_array().map_or(0, |r| {
                r.iter().filter_map(|r| minor(&r["amount"])).map(|(_, m)| m).sum()
            })
        });
        let Some(capture) = self.transaction(id, "captures") else {
            return not_found();
        };
        let (currency, captured) = minor(&capture["amount"]).unwrap_or_default();
        let Some((_, amount)) = minor(&body["amount"]) else {
            return unprocessable("DECIMAL_PRECISION");
        };
        if capture["status"] == "REFUNDED" {
            return unprocessable("CAPTURE_FULLY_REFUNDED");
        }
        if refunded + amount > captured {
            return unprocessable("REFUND_AMOUNT_EXCEEDED");
        }
        capture["status"] = json!(if refunded + amount == captured {
            "REFUNDED"
        } else {
            "PARTIALLY_REFUNDED"
        });
        let refund = json!({"id": next, "status": "COMPLETED", "amount": money(&currency, amount),
            "custom_id": body["custom_id"], "create_time": "2026-12-07T20:00:03Z"});
        if let Some(order) = self.orders.get_mut(&order) {
            let payments = &mut order["purchase_units"][0]["payments"];
            if payments["refunds"].is_null() {
                payments["refunds"] = json!([]);
            }
            payments["refunds"].as_array_mut().unwrap().push(refund.clone());
        }
        self.applied.refunds += 1;
        answer(201, refund)
    }

    /// The state of transaction or order `id`.
    pub fn status(&self, id: &str) -> Option<String> {
        if let Some(order) = self.orders.get(id) {
            return order["status"].as_str().map(str::to_owned);
        }
        let order = self.orders.get(self.owners.get(id)?)?;
        let payments = &order["purchase_units"][0]["payments"];
        ["authorizations", "captures"]
            .iter()
            .filter_map(|list| payments[*list].as_array())
            .flatten()
            .find(|t| t["id"] == id)
            .and_then(|t| t["status"].as_str().map(str::to_owned))
    }
}

pub fn header(call: &Call, name: &str) -> Option<String> {
    call.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}
