//! Fraud rules language: any bytes, as text, parse or are refused without a
//! panic; a set that parses prints to text that parses back to the same set
//! and prints the same again; evaluating it against full and empty facts
//! never panics and explains itself (a score in 0..=100, matched rules taken
//! from the set, a decision traced to a matched rule or to the score).
#![no_main]

use libfuzzer_sys::fuzz_target;
use paywarden::domain::fraud_rules::{DecidedBy, RiskFacts, RuleSet, Thresholds};

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
        customer_ip_country: Some("fr"),
        customer_email_domain: Some("example.com"),
        customer_email: Some("jenny@example.com"),
        customer_ip: Some("192.0.2.1"),
        is_livemode: Some(true),
        velocity_card_payments_1h: Some(3),
        velocity_ip_payments_1h: Some(7),
        velocity_card_declines_24h: Some(1),
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
