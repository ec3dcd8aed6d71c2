//! Merchant lists: `@name` references, their errors, evaluation against a
//! provider (an unknown list included) and the explanation.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::*;

fn lists(entries: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
    entries
        .iter()
        .map(|(name, values)| (name.to_string(), values.iter().map(|v| v.to_string()).collect()))
        .collect()
}

fn list(name: &str) -> ListName {
    ListName::parse(name).unwrap()
}

#[test]
fn list_references_parse_and_print() {
    assert_eq!(
        condition("customer.email in @trusted_customers"),
        test(Attribute::CustomerEmail, Predicate::InList(list("trusted_customers")))
    );
    assert_eq!(
        condition("customer.ip not in @blocked_ips"),
        test(Attribute::CustomerIp, Predicate::NotInList(list("blocked_ips")))
    );
    assert_eq!(
        canonical_condition("customer.email in @trusted_customers and card.bin not in  @bad_bins"),
        "customer.email in @trusted_customers and card.bin not in @bad_bins"
    );
    let set = parse("rule a : allow when customer.email in @vip\nrule b : block when customer.ip in @bad or customer.email not in @vip");
    assert_eq!(
        set.list_names().into_iter().map(ListName::as_str).collect::<Vec<_>>(),
        ["bad", "vip"]
    );
    assert!(parse("rule a : block when amount > 5").list_names().is_empty());
}

#[test]
fn malformed_references_are_refused_at_their_position() {
    // The condition starts at column 21; `customer.email in ` is 18 characters.
    let bad_name =
        "a list name is 1 to 64 characters after @: a lower-case letter, then lower-case letters, digits or _";
    check(refuse_condition("customer.email in @"), 1, 39, "unexpected '@'");
    check(refuse_condition("customer.email in @ trusted"), 1, 39, "unexpected '@'");
    check(refuse_condition("customer.email in @Trusted"), 1, 39, bad_name);
    check(refuse_condition("customer.email in @1st"), 1, 39, bad_name);
    check(refuse_condition("customer.email in @a.b"), 1, 39, bad_name);
    check(
        refuse_condition(&format!("customer.email in @{}", "a".repeat(65))),
        1,
        39,
        bad_name,
    );
    assert!(RuleSet::parse(&format!("{PREFIX}customer.email in @{}", "a".repeat(64))).is_ok());
    check(
        refuse_condition("amount in @big_amounts"),
        1,
        31,
        "`amount` is an integer: a merchant list holds strings (write the values in [..])",
    );
    check(
        refuse_condition("customer.email == @vip"),
        1,
        39,
        "expected a value (a number, a string, true or false), found `@vip`",
    );
    check(
        refuse_condition("is_livemode in @modes"),
        1,
        33,
        "`is_livemode` is a boolean: in does not apply (use == or !=)",
    );
    // A later line reports its own line and column.
    let (line, column, _) =
        refuse("rule a : allow when customer.email in @vip\nrule b : block when customer.email in @");
    assert_eq!((line, column), (2, 39));
}

#[test]
fn email_values_have_their_form() {
    assert!(RuleSet::parse(&format!("{PREFIX}customer.email == \"jenny@example.com\"")).is_ok());
    for bad in [
        "Jenny@example.com",
        "jenny",
        "@example.com",
        "jenny@",
        "a@b@c.com",
        "je nny@example.com",
    ] {
        let (_, _, message) = refuse_condition(&format!("customer.email == \"{bad}\""));
        assert_eq!(
            message, "`customer.email` takes a lower-case e-mail address such as \"jenny@example.com\"",
            "{bad}"
        );
    }
}

#[test]
fn in_and_not_in_a_list_test_membership() {
    let set = parse("rule trusted : allow when customer.email in @trusted_customers\nrule outsider : score 60 when customer.email not in @trusted_customers");
    let lists = lists(&[("trusted_customers", &["jenny@example.com", "ops@example.com"])]);
    let t = Thresholds::new(50, 80).unwrap();
    let known = set.evaluate_with_lists(&full_facts(), &lists, t);
    assert_eq!(known.decision, Decision::Allow);
    assert_eq!(known.decided_by, DecidedBy::Rule(&RuleName::parse("trusted").unwrap()));
    let stranger = RiskFacts {
        customer_email: Some("mallory@example.net"),
        ..full_facts()
    };
    let assessment = set.evaluate_with_lists(&stranger, &lists, t);
    assert_eq!((assessment.decision, assessment.score), (Decision::Review, 60));
    assert_eq!(assessment.matched.len(), 1);
    // No e-mail: neither `in` nor `not in` holds.
    let absent = RiskFacts {
        customer_email: None,
        ..full_facts()
    };
    assert!(set.evaluate_with_lists(&absent, &lists, t).matched.is_empty());
}

#[test]
fn an_unknown_list_makes_every_test_of_it_false() {
    let set = parse("rule trusted : allow when customer.email in @trusted\nrule block_outsiders : block when customer.email not in @trusted");
    let t = Thresholds::new(50, 80).unwrap();
    let other = lists(&[("something_else", &["jenny@example.com"])]);
    for assessment in [
        set.evaluate(&full_facts(), t),
        set.evaluate_with_lists(&full_facts(), &NoLists, t),
        set.evaluate_with_lists(&full_facts(), &other, t),
    ] {
        assert!(assessment.matched.is_empty());
        assert_eq!(assessment.decision, Decision::Allow);
        assert_eq!(assessment.decided_by, DecidedBy::Score);
    }
    // `not` is still plain negation of a false test.
    assert!(matches("not (customer.email in @trusted)", &full_facts()));
}

#[test]
fn a_hash_map_is_a_provider_too() {
    let mut lists: HashMap<String, HashSet<String>> = HashMap::new();
    lists.insert("bad_ips".to_owned(), HashSet::from(["192.0.2.1".to_owned()]));
    let set = parse("rule r : block when customer.ip in @bad_ips");
    let assessment = set.evaluate_with_lists(&full_facts(), &lists, Thresholds::new(50, 80).unwrap());
    assert_eq!(assessment.decision, Decision::Block);
}

#[test]
fn the_explanation_carries_signals_matched_rules_and_unknown_lists() {
    let set = parse(
        "rule big : score 30 when amount > 10_000 and card.funding == \"prepaid\"\n\
         rule fast : score 40 when velocity.ip_payments_1h >= 3\n\
         rule vip : allow when customer.email in @vip and customer.ip not in @gone",
    );
    let facts = RiskFacts {
        card_funding: None,
        ..full_facts()
    };
    let lists = lists(&[("vip", &["someone@example.com"])]);
    let explanation = set.explain(&facts, &lists, Thresholds::new(30, 80).unwrap());
    assert_eq!(
        explanation.assessment,
        set.evaluate_with_lists(&facts, &lists, Thresholds::new(30, 80).unwrap())
    );
    assert_eq!(explanation.assessment.decision, Decision::Review);
    assert_eq!(explanation.assessment.matched.len(), 1);
    assert_eq!(explanation.assessment.matched[0].rule.as_str(), "fast");
    assert_eq!(
        explanation.signals,
        vec![
            Signal {
                attribute: Attribute::Amount,
                value: Some(int(12_500))
            },
            Signal {
                attribute: Attribute::CardFunding,
                value: None
            },
            Signal {
                attribute: Attribute::CustomerEmail,
                value: Some(string("jenny@example.com"))
            },
            Signal {
                attribute: Attribute::CustomerIp,
                value: Some(string("192.0.2.1"))
            },
            Signal {
                attribute: Attribute::VelocityIpPayments1h,
                value: Some(int(3))
            },
        ]
    );
    assert_eq!(explanation.unknown_lists, vec![&list("gone")]);
}

#[test]
fn a_value_of_the_wrong_type_is_explained_as_absent() {
    struct Confused;
    impl RiskContext for Confused {
        fn value(&self, _: Attribute) -> Option<Value<'_>> {
            Some(Value::Boolean(true))
        }
    }
    let set = parse("rule r : block when amount > 5");
    let explanation = set.explain(&Confused, &NoLists, Thresholds::new(50, 80).unwrap());
    assert_eq!(
        explanation.signals,
        vec![Signal {
            attribute: Attribute::Amount,
            value: None
        }]
    );
}
