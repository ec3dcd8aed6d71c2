//! Fraud rules language: any bytes, as text, parse or are refused without a
//! panic; a set that parses prints to text that parses back to the same set
//! and prints the same again; evaluating it against full and empty facts
//! never panics and explains itself (a score in 0..=100, matched rules taken
//! from the set, a decision traced to a matched rule or to the score).
#![no_main]

use libfuzzer_sys::fuzz_target;
use paywarden::domain::fraud_rules::{
    DecidedBy, IpVelocity, RiskFacts, RuleSet, Thresholds, Velocity, Window,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(set) = RuleSet::parse(&text) else {
        return;
    };
    let printed = set.to_string();
    let again = RuleSet::parse(&printed);
    assert_eq!(again.as_ref(), Ok(&set), "{printed}");
    assert_eq!(again.map(|s| s.to_string()), Ok(printed));

    let Ok(thresholds) = Thresholds::new(50, 80) else {
        return;
    };
    let full = RiskFacts {
        amount: Some(12_500),
        currency: Some("usd"),
        capture_method: Some("manual"),
        card_brand: Some("visa"),
        card_bin: Some("424242"),
        card_last4: Some("4242"),
        card_funding: Some("prepaid"),
        card_country: Some("us"),
        card_first_use: Some(true),
        customer_ip_country: Some("fr"),
        customer_email_domain: Some("example.com"),
        customer_email: Some("jenny@example.com"),
        customer_ip: Some("192.0.2.1"),
        is_livemode: Some(true),
        amount_vs_usual_pct: Some(340),
        velocity: Some(Velocity {
            card_payments: Window { last_1h: 3, last_24h: 9 },
            card_declines: Window { last_1h: 0, last_24h: 1 },
            ip: Some(IpVelocity {
                payments: Window { last_1h: 7, last_24h: 20 },
                declines: Window { last_1h: 2, last_24h: 4 },
                distinct_cards: Window { last_1h: 5, last_24h: 11 },
            }),
            email_payments: Some(Window { last_1h: 1, last_24h: 2 }),
        }),
    };
    for facts in [full, RiskFacts::default()] {
        let assessment = set.evaluate(&facts, thresholds);
        assert!(assessment.score <= 100);
        assert!(assessment.matched.len() <= set.rules().len());
        for matched in &assessment.matched {
            assert!(set
                .rules()
                .iter()
                .any(|r| r.name() == matched.rule && r.action() == matched.action));
        }
        if let DecidedBy::Rule(name) = assessment.decided_by {
            assert!(assessment.matched.iter().any(|m| m.rule == name));
        }
    }
});
