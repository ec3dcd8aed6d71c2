//! Tests of the fraud rules language, by concern: `grammar` (what parses and
//! how it prints), `errors` (every refusal's position and message), `limits`
//! (each limit at and past it), `evaluation` (missing facts, precedence,
//! score and thresholds), `props` (generated rule sets: print/parse round
//! trips, no panics on any input, agreement with a reference evaluator).

mod errors;
mod evaluation;
mod grammar;
mod limits;
mod lists;
mod props;

use super::*;

/// Parses text that must parse.
fn parse(text: &str) -> RuleSet {
    RuleSet::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

/// The position and message of text that must not parse.
fn refuse(text: &str) -> (usize, usize, String) {
    match RuleSet::parse(text) {
        Ok(set) => panic!("{text:?} should not parse, but gave {set:?}"),
        Err(e) => (e.line(), e.column(), e.message().to_owned()),
    }
}

/// The condition of a one-rule set whose condition is `condition`.
fn condition(condition: &str) -> Condition {
    let set = parse(&format!("rule r : block when {condition}"));
    set.rules()[0].condition().clone()
}

/// The canonical text of `text`, checked to parse back to the same set.
fn canonical(text: &str) -> String {
    let set = parse(text);
    let printed = set.to_string();
    assert_eq!(parse(&printed), set, "{printed}");
    printed
}

/// The canonical text of one condition.
fn canonical_condition(text: &str) -> String {
    let printed = canonical(&format!("rule r : block when {text}"));
    printed
        .strip_prefix("rule r : block when ")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap()
        .to_owned()
}

fn test(attribute: Attribute, predicate: Predicate) -> Condition {
    Condition::Test(Test { attribute, predicate })
}

fn int(n: i64) -> Literal {
    Literal::Integer(n)
}

fn string(s: &str) -> Literal {
    Literal::String(s.to_owned())
}

/// Whether `condition` holds for `facts`, through a one-rule set.
fn matches(condition: &str, facts: &RiskFacts) -> bool {
    let set = parse(&format!("rule r : block when {condition}"));
    let thresholds = Thresholds::new(50, 80).unwrap();
    !set.evaluate(facts, thresholds).matched.is_empty()
}

/// Facts of an ordinary card payment, every attribute present.
fn full_facts() -> RiskFacts<'static> {
    RiskFacts {
        amount: Some(12_500),
        currency: Some("usd"),
        capture_method: Some("automatic"),
        card_brand: Some("visa"),
        card_bin: Some("424242"),
        card_last4: Some("4242"),
        card_funding: Some("credit"),
        card_country: Some("us"),
        card_first_use: Some(false),
        customer_ip_country: Some("us"),
        customer_email_domain: Some("example.com"),
        customer_email: Some("jenny@example.com"),
        customer_ip: Some("192.0.2.1"),
        is_livemode: Some(true),
        amount_vs_usual_pct: Some(110),
        velocity: Some(Velocity {
            card_payments: Window {
                last_1h: 2,
                last_24h: 4,
            },
            card_declines: Window {
                last_1h: 0,
                last_24h: 0,
            },
            ip: Some(IpVelocity {
                payments: Window {
                    last_1h: 3,
                    last_24h: 9,
                },
                declines: Window {
                    last_1h: 1,
                    last_24h: 2,
                },
                distinct_cards: Window {
                    last_1h: 1,
                    last_24h: 3,
                },
            }),
            email_payments: Some(Window {
                last_1h: 1,
                last_24h: 2,
            }),
        }),
    }
}

/// `rule r : block when ` is 20 characters: a condition starts at column 21.
const PREFIX: &str = "rule r : block when ";

fn refuse_condition(condition: &str) -> (usize, usize, String) {
    refuse(&format!("{PREFIX}{condition}"))
}

fn check(got: (usize, usize, String), line: usize, column: usize, message: &str) {
    assert_eq!((got.0, got.1), (line, column), "{}", got.2);
    assert_eq!(got.2, message);
}
