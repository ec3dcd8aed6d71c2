//! The gateway's own fraud signals through the API, on both backends:
//! velocity per card, customer IP and e-mail address (1 h and 24 h,
//! declines, distinct cards per IP), first use of a card, the BIN table's
//! country and funding, the IP's country, each as the payment's
//! `risk.signals` shows it; counts kept per merchant and mode; IPs and
//! e-mail addresses never stored in clear; and the card-testing simulation:
//! hundreds of small attempts with distinct cards from one IP are blocked by
//! the documented rule set within the first dozen, while other customers'
//! payments keep succeeding.

use paywarden::domain::api_key::Mode;
use serde_json::{json, Value};

use super::secret_key;
use crate::both_backends;
use crate::support::TestApp;

/// A Luhn-valid 16-digit card number starting with `prefix` (up to 15
/// digits), the rest `n` padded with zeros.
fn card(prefix: &str, n: u64) -> String {
    let body = format!("{prefix}{n:0width$}", width = 15 - prefix.len());
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// Pays `amount` (confirm at once, sandbox) with card `number` as the
/// customer at `ip` (if any) with `email`; returns the payment.
async fn pay(app: &TestApp, sk: &str, number: &str, amount: i64, ip: Option<&str>, email: &str) -> Value {
    let r = app
        .post(
            "/v1/tokens",
            sk,
            &json!({"card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}),
        )
        .await;
    let status = r.status();
    let token: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{token}");
    let mut body = json!({"amount": amount, "currency": "usd", "payment_method": token["id"], "confirm": true,
                          "customer_email": email});
    if let Some(ip) = ip {
        body["customer_ip"] = json!(ip);
    }
    let r = app.post("/v1/payments", sk, &body).await;
    let status = r.status();
    let p: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{p}");
    p
}

async fn rules(app: &TestApp, sk: &str, rules: &str) {
    let r = app.post("/v1/fraud/rules", sk, &json!({ "rules": rules })).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// A rule set that reads every velocity fact and decides nothing.
const READ_VELOCITY: &str =
    "rule read : score 0 when velocity.card_payments_1h >= 0 or velocity.card_payments_24h >= 0 \
    or velocity.card_declines_1h >= 0 or velocity.card_declines_24h >= 0 or velocity.ip_payments_1h >= 0 \
    or velocity.ip_payments_24h >= 0 or velocity.ip_declines_1h >= 0 or velocity.ip_declines_24h >= 0 \
    or velocity.ip_distinct_cards_1h >= 0 or velocity.ip_distinct_cards_24h >= 0 \
    or velocity.email_payments_1h >= 0 or velocity.email_payments_24h >= 0 or card.first_use == true";

/// The signals `p` was screened with.
fn signals(p: &Value) -> &Value {
    &p["risk"]["signals"]
}

/// `(card 1h, card declines 1h, ip 1h, ip declines 1h, ip distinct cards 1h, email 1h, first use)`.
fn velocity(p: &Value) -> (Value, Value, Value, Value, Value, Value, Value) {
    let s = signals(p);
    (
        s["velocity.card_payments_1h"].clone(),
        s["velocity.card_declines_1h"].clone(),
        s["velocity.ip_payments_1h"].clone(),
        s["velocity.ip_declines_1h"].clone(),
        s["velocity.ip_distinct_cards_1h"].clone(),
        s["velocity.email_payments_1h"].clone(),
        s["card.first_use"].clone(),
    )
}

both_backends! {
    async fn velocity_counts_cards_ips_and_emails_per_merchant_and_mode(app) {
        let (merchant, sk) = app.merchant_with_secret("Velocity").await;
        // Live payments go to the sandbox, which fails them after screening.
        sqlx::query("UPDATE merchants SET live_connector = 'sandbox' WHERE id = $1")
            .bind(merchant.as_str())
            .execute(app.store.reader())
            .await
            .unwrap();
        rules(app, &sk, READ_VELOCITY).await;
        let ip = Some("203.0.113.7");
        let first = pay(app, &sk, "4242424242424242", 1_000, ip, "jenny@example.com").await;
        assert_eq!(first["status"], "succeeded", "{first}");
        assert_eq!(velocity(&first), (json!(0), json!(0), json!(0), json!(0), json!(0), json!(0), json!(true)));
        let again = pay(app, &sk, "4242424242424242", 1_000, ip, "jenny@example.com").await;
        assert_eq!(velocity(&again), (json!(1), json!(0), json!(1), json!(0), json!(1), json!(1), json!(false)));
        assert_eq!(signals(&again)["velocity.card_payments_24h"], 1);
        // A declined card from the same address, another e-mail address.
        let declined = pay(app, &sk, "4000000000000002", 1_000, ip, "mallory@example.com").await;
        assert_eq!(declined["status"], "failed", "{declined}");
        assert_eq!(velocity(&declined), (json!(0), json!(0), json!(2), json!(0), json!(1), json!(0), json!(true)));
        let retried = pay(app, &sk, "4000000000000002", 1_000, ip, "mallory@example.com").await;
        assert_eq!(velocity(&retried), (json!(1), json!(1), json!(3), json!(1), json!(2), json!(1), json!(false)));
        assert_eq!(signals(&retried)["velocity.card_declines_24h"], 1);
        assert_eq!(signals(&retried)["velocity.ip_declines_24h"], 1);
        assert_eq!(signals(&retried)["velocity.ip_distinct_cards_24h"], 2);
        // Without a customer IP the IP's facts are absent, the others counted.
        let no_ip = pay(app, &sk, "4242424242424242", 1_000, None, "jenny@example.com").await;
        assert_eq!(velocity(&no_ip), (json!(2), json!(0), Value::Null, Value::Null, Value::Null, json!(2), json!(false)));
        // An IPv6 address counts by its /64: a neighbour address is the same customer.
        pay(app, &sk, "4242424242424242", 1_000, Some("2001:db8:1:2::1"), "a@example.com").await;
        let neighbour = pay(app, &sk, "5555555555554444", 1_000, Some("2001:db8:1:2::ff"), "b@example.com").await;
        assert_eq!(signals(&neighbour)["velocity.ip_payments_1h"], 1, "{neighbour}");
        assert_eq!(signals(&neighbour)["velocity.ip_distinct_cards_1h"], 1);

        // The same card, address and e-mail at another merchant, and in the
        // other mode of this one, start from nothing.
        let (_, other_sk) = app.merchant_with_secret("Elsewhere").await;
        rules(app, &other_sk, READ_VELOCITY).await;
        let elsewhere = pay(app, &other_sk, "4242424242424242", 1_000, ip, "jenny@example.com").await;
        assert_eq!(velocity(&elsewhere), (json!(0), json!(0), json!(0), json!(0), json!(0), json!(0), json!(true)));
        let live_sk = secret_key(app, &merchant, Mode::Live).await;
        rules(app, &live_sk, READ_VELOCITY).await;
        let live = pay(app, &live_sk, "4242424242424242", 1_000, ip, "jenny@example.com").await;
        assert_eq!(velocity(&live), (json!(0), json!(0), json!(0), json!(0), json!(0), json!(0), json!(true)));

        // Stored as keyed hashes: no address or e-mail address in clear, and
        // the same address hashes differently for another merchant.
        let rows: Vec<(String, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT merchant_id, ip_key, email_key FROM fraud_observations")
                .fetch_all(app.store.reader())
                .await
                .unwrap();
        assert_eq!(rows.len(), 9, "one observation per screened confirm");
        for (_, ip_key, email_key) in &rows {
            for key in [ip_key, email_key].into_iter().flatten() {
                assert!(!key.contains("203.0.113") && !key.contains('@') && !key.contains("2001"), "{key}");
                assert_eq!(key.len(), 32, "{key}");
            }
        }
        let ip_keys = |m: &str| -> Vec<String> {
            rows.iter().filter(|r| r.0 == m).filter_map(|r| r.1.clone()).collect()
        };
        let here = ip_keys(merchant.as_str());
        assert!(here.len() >= 2 && here.first() == here.get(1), "the same address, the same key");
        let other = rows.iter().find(|r| r.0 != merchant.as_str()).and_then(|r| r.1.clone()).unwrap();
        assert!(!here.contains(&other), "another merchant's key for the same address differs");
    }

    async fn bin_table_and_ip_country_are_facts_rules_can_block_on(app) {
        let (_, sk) = app.merchant_with_secret("Countries").await;
        rules(app, &sk, "rule prepaid : block when card.funding == \"prepaid\"\n\
                         rule abroad : review when not (card.country == \"us\") or customer.ip_country != \"us\"").await;
        let us = pay(app, &sk, "4242424242424242", 1_000, Some("8.8.8.8"), "a@example.com").await;
        assert_eq!(us["status"], "succeeded", "{us}");
        assert_eq!(signals(&us)["card.funding"], "credit");
        assert_eq!(signals(&us)["card.country"], "us");
        assert_eq!(signals(&us)["customer.ip_country"], "us");
        assert_eq!(us["risk"]["decision"], "allow");
        // Deutsche Telekom's 2003::/19 is allocated to Germany.
        let german_ip = pay(app, &sk, "4000056655665556", 1_000, Some("2003::1"), "a@example.com").await;
        assert_eq!(signals(&german_ip)["card.funding"], "debit");
        assert_eq!(signals(&german_ip)["customer.ip_country"], "de");
        assert_eq!(german_ip["risk"]["decision"], "review", "{german_ip}");
        let jcb = pay(app, &sk, "3566002020360505", 1_000, Some("8.8.8.8"), "a@example.com").await;
        assert_eq!(signals(&jcb)["card.country"], "jp");
        assert_eq!(jcb["risk"]["decision"], "review");
        let prepaid = pay(app, &sk, "5105105105105100", 1_000, Some("8.8.8.8"), "a@example.com").await;
        assert_eq!(prepaid["status"], "failed", "{prepaid}");
        assert_eq!(prepaid["decline_code"], "fraudulent");
        // A BIN not in the table: funding unknown, country absent (so
        // `not (card.country == "us")` holds); a private address has no country.
        let unknown = pay(app, &sk, "4000000000000077", 1_000, Some("10.1.2.3"), "a@example.com").await;
        assert_eq!(signals(&unknown)["card.funding"], "unknown");
        assert_eq!(signals(&unknown)["card.country"], Value::Null);
        assert_eq!(signals(&unknown)["customer.ip_country"], Value::Null);
        assert_eq!(unknown["risk"]["decision"], "review");
    }

    async fn card_testing_from_one_ip_is_blocked_early_while_other_customers_pay(app) {
        let (_, sk) = app.merchant_with_secret("Card testing").await;
        // The recommended rule set of docs/api.md.
        rules(app, &sk, "rule card_testing : block when velocity.ip_distinct_cards_1h >= 10\n\
                         rule ip_declines : block when velocity.ip_declines_1h >= 5\n\
                         rule card_retries : review when velocity.card_declines_24h >= 3").await;
        let attacker = Some("198.51.100.23");
        let mut first_blocked = None;
        let mut succeeded_after_block = 0;
        for n in 0..250u64 {
            let p = pay(app, &sk, &card("42424242", n), 100, attacker, "tester@example.com").await;
            let blocked = p["status"] == "failed" && p["decline_code"] == "fraudulent";
            if blocked && first_blocked.is_none() {
                first_blocked = Some(n);
                assert_eq!(p["risk"]["rules"], json!(["card_testing"]), "{p}");
            }
            if first_blocked.is_some() && !blocked {
                succeeded_after_block += 1;
            }
            // Every tenth attempt, an ordinary customer elsewhere pays.
            if n % 10 == 0 {
                let other = format!("192.0.2.{}", n / 10 + 1);
                let ok = pay(app, &sk, &card("55555555", n), 2_500, Some(&other), "jenny@example.com").await;
                assert_eq!(ok["status"], "succeeded", "attempt {n}: {ok}");
            }
        }
        assert_eq!(first_blocked, Some(10), "the 11th distinct card from the address is blocked");
        assert_eq!(succeeded_after_block, 0, "and every attempt after it");
    }
}
