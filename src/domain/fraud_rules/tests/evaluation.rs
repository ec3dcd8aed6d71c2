//! Evaluation: each test against present and absent facts, `not`, the score,
//! the thresholds and the precedence of verdicts.

use super::*;

fn thresholds() -> Thresholds {
    Thresholds::new(50, 80).unwrap()
}

fn names<'r>(assessment: &Assessment<'r>) -> Vec<(&'r str, Action)> {
    assessment.matched.iter().map(|m| (m.rule.as_str(), m.action)).collect()
}

#[test]
fn integer_comparisons() {
    let facts = full_facts(); // amount 12_500
    for (condition, expected) in [
        ("amount == 12_500", true),
        ("amount == 12_501", false),
        ("amount != 12_501", true),
        ("amount != 12_500", false),
        ("amount < 12_501", true),
        ("amount < 12_500", false),
        ("amount <= 12_500", true),
        ("amount <= 12_499", false),
        ("amount > 12_499", true),
        ("amount > 12_500", false),
        ("amount >= 12_500", true),
        ("amount >= 12_501", false),
        ("amount in [1, 12_500]", true),
        ("amount in [1, 2]", false),
        ("amount not in [1, 2]", true),
        ("amount not in [12_500]", false),
        ("velocity.card_declines_24h == 0", true),
    ] {
        assert_eq!(matches(condition, &facts), expected, "{condition}");
    }
}

#[test]
fn string_and_boolean_tests() {
    let facts = full_facts();
    for (condition, expected) in [
        ("currency == \"usd\"", true),
        ("currency == \"eur\"", false),
        ("currency != \"eur\"", true),
        ("card.brand in [\"amex\", \"visa\"]", true),
        ("card.brand not in [\"amex\", \"visa\"]", false),
        ("card.bin starts_with \"4242\"", true),
        ("card.bin starts_with \"424242\"", true),
        ("card.bin starts_with \"5\"", false),
        ("customer.ip starts_with \"192.0.2.\"", true),
        ("customer.email_domain starts_with \"example.\"", true),
        ("is_livemode == true", true),
        ("is_livemode != true", false),
        ("is_livemode == false", false),
    ] {
        assert_eq!(matches(condition, &facts), expected, "{condition}");
    }
}

#[test]
fn and_or_not() {
    let facts = full_facts();
    for (condition, expected) in [
        ("amount > 1 and currency == \"usd\"", true),
        ("amount > 1 and currency == \"eur\"", false),
        ("amount < 1 or currency == \"usd\"", true),
        ("amount < 1 or currency == \"eur\"", false),
        ("not amount < 1", true),
        ("not not amount < 1", false),
        ("not (amount < 1 or currency == \"eur\") and is_livemode == true", true),
    ] {
        assert_eq!(matches(condition, &facts), expected, "{condition}");
    }
}

/// With every fact absent, every test is false, `!=` and `not in` included,
/// and `not` of a test is true.
#[test]
fn every_test_of_an_absent_fact_is_false_and_not_of_it_true() {
    let absent = RiskFacts::default();
    for condition in [
        "amount == 1",
        "amount != 1",
        "amount < 1",
        "amount <= 1",
        "amount > 1",
        "amount >= 1",
        "amount in [1]",
        "amount not in [1]",
        "currency == \"usd\"",
        "currency != \"usd\"",
        "currency in [\"usd\"]",
        "currency not in [\"usd\"]",
        "card.bin starts_with \"4\"",
        "is_livemode == true",
        "is_livemode != true",
        "velocity.ip_payments_1h >= 0",
    ] {
        assert!(!matches(condition, &absent), "{condition}");
        assert!(matches(&format!("not {condition}"), &absent), "not {condition}");
        assert!(matches(&format!("not ({condition})"), &absent), "not ({condition})");
    }
    // The merchant chooses whether absence matches: `!=` no, `not ==` yes.
    let no_country = RiskFacts {
        customer_ip_country: None,
        ..full_facts()
    };
    assert!(!matches("customer.ip_country not in [\"us\", \"ca\"]", &no_country));
    assert!(matches("not (customer.ip_country in [\"us\", \"ca\"])", &no_country));
}

/// A context that answers with the wrong type for every attribute.
struct Confused;

impl RiskContext for Confused {
    fn value(&self, attribute: Attribute) -> Option<Value<'_>> {
        Some(match attribute.value_type() {
            ValueType::Integer => Value::String("1"),
            ValueType::String => Value::Boolean(true),
            ValueType::Boolean => Value::Integer(1),
        })
    }
}

#[test]
fn a_value_of_the_wrong_type_counts_as_absent() {
    let set = parse(
        "rule a : block when amount != 2\nrule b : block when currency not in [\"usd\"]\n\
         rule c : block when is_livemode != false\nrule d : score 10 when not (amount == 1)",
    );
    let assessment = set.evaluate(&Confused, thresholds());
    assert_eq!(names(&assessment), [("d", Action::Score(10))]);
}

#[test]
fn verdicts_take_precedence_block_challenge_review_allow() {
    let rules = [
        "rule a1 : allow when amount > 1",
        "rule r1 : review when amount > 1",
        "rule c1 : challenge when amount > 1",
        "rule b1 : block when amount > 1",
        "rule b2 : block when amount > 1",
        "rule s1 : score 100 when amount > 1",
    ];
    let facts = full_facts();
    // Each prefix of the strongest-last list is decided by its strongest rule.
    for (count, decision, by) in [
        (1, Decision::Allow, "a1"),
        (2, Decision::Review, "r1"),
        (3, Decision::Challenge, "c1"),
        (4, Decision::Block, "b1"),
        (5, Decision::Block, "b1"),
    ] {
        let set = parse(&rules[..count].join("\n"));
        let assessment = set.evaluate(&facts, thresholds());
        assert_eq!(assessment.decision, decision);
        assert_eq!(assessment.decided_by, DecidedBy::Rule(&RuleName::parse(by).unwrap()));
    }
    // The order of the rules does not matter, and a score of 100 does not
    // override an explicit verdict, even allow.
    let mut reversed = rules.to_vec();
    reversed.reverse();
    let set = parse(&reversed.join("\n"));
    let assessment = set.evaluate(&facts, thresholds());
    assert_eq!((assessment.decision, assessment.score), (Decision::Block, 100));
    assert_eq!(assessment.decided_by, DecidedBy::Rule(&RuleName::parse("b2").unwrap()));
    let set = parse("rule s : score 100 when amount > 1\nrule trusted : allow when currency == \"usd\"");
    let assessment = set.evaluate(&facts, thresholds());
    assert_eq!((assessment.decision, assessment.score), (Decision::Allow, 100));
    // A weaker verdict than the score's never lets it through: review and
    // challenge do not unblock a blocking score (only allow, an allowlist, does).
    for weaker in ["review", "challenge"] {
        let set = parse(&format!(
            "rule s : score 100 when amount > 1\nrule person : {weaker} when currency == \"usd\""
        ));
        let assessment = set.evaluate(&facts, thresholds());
        assert_eq!(
            (assessment.decision, assessment.decided_by),
            (Decision::Block, DecidedBy::Score),
            "{weaker}"
        );
    }
    // A verdict at least as strong as the score's decides, and is named.
    let set = parse("rule s : score 60 when amount > 1\nrule person : challenge when currency == \"usd\"");
    let assessment = set.evaluate(&facts, thresholds());
    assert_eq!(
        assessment.decided_by,
        DecidedBy::Rule(&RuleName::parse("person").unwrap())
    );
}

#[test]
fn without_a_verdict_the_score_decides_with_the_thresholds() {
    let set = parse(
        "rule small : score 30 when amount > 1\nrule usd : score 20 when currency == \"usd\"\n\
         rule live : score 30 when is_livemode == true\nrule never : block when amount < 0",
    );
    let facts = full_facts();
    let assessment = set.evaluate(&facts, thresholds());
    assert_eq!((assessment.score, assessment.points), (80, 80));
    assert_eq!(
        (assessment.decision, assessment.decided_by),
        (Decision::Block, DecidedBy::Score)
    );
    assert_eq!(
        names(&assessment),
        [
            ("small", Action::Score(30)),
            ("usd", Action::Score(20)),
            ("live", Action::Score(30))
        ]
    );
    for (review_at, block_at, decision) in [
        (50, 81, Decision::Review),
        (80, 80, Decision::Block),
        (81, 90, Decision::Allow),
        (1, 100, Decision::Review),
    ] {
        let assessment = set.evaluate(&facts, Thresholds::new(review_at, block_at).unwrap());
        assert_eq!(assessment.decision, decision, "{review_at} {block_at}");
    }
    let test_mode = RiskFacts {
        is_livemode: Some(false),
        ..full_facts()
    };
    let assessment = set.evaluate(&test_mode, thresholds());
    assert_eq!((assessment.score, assessment.decision), (50, Decision::Review));
}

#[test]
fn the_score_is_clamped_and_the_points_kept() {
    let facts = full_facts();
    let set = parse("rule a : score 1000 when amount > 1\nrule b : score -50 when amount > 1");
    let assessment = set.evaluate(&facts, thresholds());
    assert_eq!((assessment.points, assessment.score), (950, 100));
    let set = parse("rule a : score -1000 when amount > 1\nrule b : score 50 when amount > 1");
    let assessment = set.evaluate(&facts, thresholds());
    assert_eq!(
        (assessment.points, assessment.score, assessment.decision),
        (-950, 0, Decision::Allow)
    );
    let many: String = (0..MAX_RULES)
        .map(|i| format!("rule r{i} : score 1000 when amount > 1\n"))
        .collect();
    let set = parse(&many);
    let assessment = set.evaluate(&facts, thresholds());
    assert_eq!(
        (assessment.points, assessment.score, assessment.matched.len()),
        (200_000, 100, 200)
    );
}

#[test]
fn an_empty_set_allows_with_no_reasons() {
    let set = parse("");
    let assessment = set.evaluate(&full_facts(), thresholds());
    assert_eq!(
        assessment,
        Assessment {
            decision: Decision::Allow,
            decided_by: DecidedBy::Score,
            score: 0,
            points: 0,
            matched: vec![],
        }
    );
}

#[test]
fn thresholds_must_be_ordered_within_1_to_100() {
    assert!(Thresholds::new(1, 1).is_ok());
    assert!(Thresholds::new(100, 100).is_ok());
    assert_eq!(Thresholds::new(0, 50), Err(InvalidThresholds));
    assert_eq!(Thresholds::new(60, 50), Err(InvalidThresholds));
    assert_eq!(Thresholds::new(50, 101), Err(InvalidThresholds));
    let t = Thresholds::new(40, 70).unwrap();
    assert_eq!((t.review_at(), t.block_at()), (40, 70));
    assert_eq!(
        [0, 39, 40, 69, 70, 100].map(|s| t.decide(s)),
        [
            Decision::Allow,
            Decision::Allow,
            Decision::Review,
            Decision::Review,
            Decision::Block,
            Decision::Block
        ]
    );
}

#[test]
fn facts_answer_for_their_own_attribute_only() {
    let facts = full_facts();
    for attribute in Attribute::ALL {
        let value = facts.value(attribute).unwrap();
        assert_eq!(value.value_type(), attribute.value_type(), "{attribute}");
        assert_eq!(RiskFacts::default().value(attribute), None);
    }
    assert_eq!(facts.value(Attribute::CardLast4), Some(Value::String("4242")));
    assert_eq!(facts.value(Attribute::VelocityIpPayments1h), Some(Value::Integer(3)));
}
