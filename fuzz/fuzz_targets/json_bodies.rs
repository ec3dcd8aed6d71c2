//! Request bodies: arbitrary bytes through the API's JSON parser into the
//! request type of every endpoint that takes a body (tokens, merchant,
//! payment create/confirm/capture/cancel, refunds, webhook endpoint
//! create/update/rotate), and a body that parses on through the domain
//! parsers its handler applies. Never panics, and no error, from the JSON
//! parser or a field's parser, echoes a card-number-like run of digits from
//! the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paywarden::api::extract::parse_json;
use paywarden::api::routes::merchant::UpdateMerchant;
use paywarden::api::routes::payments::{CancelPayment, CapturePayment, ConfirmPayment, CreatePayment};
use paywarden::api::routes::refunds::CreateRefund;
use paywarden::api::routes::tokens::CreateToken;
use paywarden::api::routes::webhook_endpoints::{CreateWebhookEndpoint, RotateSecret, UpdateWebhookEndpoint};
use paywarden::domain::api_key::Mode;
use paywarden::domain::ids::{PaymentId, TokenId};
use paywarden::domain::money::{Currency, MinorUnits};
use paywarden::domain::payment_fields::{self, CustomerEmail, Description, Metadata, ReturnUrl};
use paywarden::webhooks::endpoint::parse_events;
use paywarden::webhooks::ssrf;
use serde::de::DeserializeOwned;

fn long_digit_runs(input: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(input)
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() >= 12)
        .map(str::to_owned)
        .collect()
}

fn assert_no_echo(error: &str, runs: &[String]) {
    for run in runs {
        assert!(!error.contains(run.as_str()), "error echoes input digits: {error}");
    }
}

/// The body as `T`, or `None` after checking the error echoes nothing.
fn parse<T: DeserializeOwned>(data: &[u8], runs: &[String]) -> Option<T> {
    match parse_json::<T>(data) {
        Ok(body) => Some(body),
        Err(e) => {
            assert_no_echo(&format!("{e:?}"), runs);
            None
        }
    }
}

/// A field parser's result: its error (if any) echoes nothing.
fn field<T, E: std::fmt::Debug + std::fmt::Display>(result: Result<T, E>, runs: &[String]) {
    if let Err(e) = result {
        assert_no_echo(&format!("{e} {e:?}"), runs);
    }
}

fn return_url(raw: Option<&str>, runs: &[String]) {
    if let Some(url) = raw {
        field(ReturnUrl::parse(url), runs);
    }
}

fuzz_target!(|data: &[u8]| {
    let runs = long_digit_runs(data);
    let runs = runs.as_slice();
    let _ = parse::<CreateToken>(data, runs);
    let _ = parse::<UpdateMerchant>(data, runs);
    if let Some(body) = parse::<CreatePayment>(data, runs) {
        field(Currency::parse(&body.currency), runs);
        if let Ok(amount) = MinorUnits::parse(body.amount.get(), i64::MAX) {
            assert!(amount.get() > 0);
        }
        if let Some(token) = &body.payment_method {
            field(TokenId::parse(token), runs);
        }
        if let Some(description) = &body.description {
            field(Description::parse(description), runs);
        }
        field(Metadata::parse(body.metadata.clone().unwrap_or_default()), runs);
        if let Some(ip) = &body.customer_ip {
            field(payment_fields::parse_customer_ip(ip), runs);
        }
        if let Some(email) = &body.customer_email {
            field(CustomerEmail::parse(email), runs);
        }
        return_url(body.return_url.as_deref(), runs);
    }
    if let Some(body) = parse::<ConfirmPayment>(data, runs) {
        if let Some(token) = &body.payment_method {
            field(TokenId::parse(token), runs);
        }
        return_url(body.return_url.as_deref(), runs);
    }
    if let Some(body) = parse::<CapturePayment>(data, runs) {
        if let Some(amount) = body.amount_to_capture {
            let _ = MinorUnits::parse(amount.get(), i64::MAX);
        }
    }
    let _ = parse::<CancelPayment>(data, runs);
    if let Some(body) = parse::<CreateRefund>(data, runs) {
        field(PaymentId::parse(&body.payment), runs);
    }
    if let Some(body) = parse::<CreateWebhookEndpoint>(data, runs) {
        field(ssrf::check_url(&body.url, Mode::Live, false), runs);
        field(parse_events(&body.events), runs);
    }
    if let Some(body) = parse::<UpdateWebhookEndpoint>(data, runs) {
        if let Some(url) = &body.url {
            field(ssrf::check_url(url, Mode::Test, true), runs);
        }
        if let Some(events) = &body.events {
            field(parse_events(events), runs);
        }
    }
    let _ = parse::<RotateSecret>(data, runs);
});
