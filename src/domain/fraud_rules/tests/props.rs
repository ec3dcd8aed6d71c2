//! Properties over generated input: generated rule sets print and parse back
//! equal; no bytes and no token soup make the parser panic; evaluation of
//! generated sets over generated facts agrees with a reference evaluator
//! written here as plainly as possible, including the decision precedence.

use std::collections::BTreeMap;
use std::net::IpAddr;

use proptest::prelude::*;
use proptest::sample::{select, Index};

use super::super::ast::{Rule, RuleName, RuleSet};
use super::*;

/// Values a string attribute takes: a few fixed ones (so that rules and
/// facts often meet) and, for open forms, generated ones.
fn exact_value(attribute: Attribute) -> BoxedStrategy<String> {
    let pool = |values: &[&'static str]| select(values.to_vec()).prop_map(str::to_owned).boxed();
    let open = |fixed: &[&'static str], pattern: &'static str| {
        prop_oneof![pool(fixed), proptest::string::string_regex(pattern).unwrap()].boxed()
    };
    match attribute {
        Attribute::Currency => pool(&["usd", "eur", "jpy", "kwd"]),
        Attribute::CaptureMethod => pool(&["automatic", "manual"]),
        Attribute::CardBrand => pool(&[
            "visa",
            "mastercard",
            "amex",
            "discover",
            "jcb",
            "diners",
            "unionpay",
            "maestro",
        ]),
        Attribute::CardFunding => pool(&FUNDING_TYPES),
        Attribute::CardBin => open(&["424242", "400000", "555555"], "[0-9]{6}"),
        Attribute::CardLast4 => open(&["4242", "0004"], "[0-9]{4}"),
        Attribute::CustomerIpCountry | Attribute::CardCountry => open(&["us", "ca", "fr"], "[a-z]{2}"),
        Attribute::CustomerEmail => open(
            &["jenny@example.com", "ops+fraud@mail.example.com"],
            "[a-z0-9._%+-]{1,8}@[a-z0-9-]{1,8}(\\.[a-z0-9-]{1,8}){0,2}",
        ),
        Attribute::CustomerEmailDomain => open(
            &["example.com", "mail.example.com"],
            "[a-z0-9-]{1,8}(\\.[a-z0-9-]{1,8}){0,2}",
        ),
        Attribute::CustomerIp => prop_oneof![
            pool(&["192.0.2.1", "192.0.2.10", "2001:db8::1"]),
            any::<IpAddr>().prop_map(|ip| ip.to_string())
        ]
        .boxed(),
        _ => Just(String::new()).boxed(),
    }
}

/// Mostly a handful of small integers, so that facts and literals meet
/// (equal, just below, just above), sometimes any.
fn small_or_any_integer() -> impl Strategy<Value = i64> {
    prop_oneof![4 => -2i64..=2, 1 => any::<i64>()]
}

fn literal(attribute: Attribute) -> BoxedStrategy<Literal> {
    match attribute.value_type() {
        ValueType::Integer => small_or_any_integer().prop_map(Literal::Integer).boxed(),
        ValueType::String => exact_value(attribute).prop_map(Literal::String).boxed(),
        ValueType::Boolean => any::<bool>().prop_map(Literal::Boolean).boxed(),
    }
}

fn list(attribute: Attribute) -> impl Strategy<Value = Vec<Literal>> {
    proptest::collection::vec(literal(attribute), 1..4)
}

fn predicate(attribute: Attribute) -> BoxedStrategy<Predicate> {
    let all_ops = select(vec![CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge]);
    let equality = select(vec![CmpOp::Eq, CmpOp::Ne]);
    match attribute.value_type() {
        ValueType::Integer => prop_oneof![
            (all_ops, literal(attribute)).prop_map(|(op, l)| Predicate::Compare(op, l)),
            list(attribute).prop_map(Predicate::In),
            list(attribute).prop_map(Predicate::NotIn),
        ]
        .boxed(),
        ValueType::String => prop_oneof![
            (equality, literal(attribute)).prop_map(|(op, l)| Predicate::Compare(op, l)),
            list(attribute).prop_map(Predicate::In),
            list(attribute).prop_map(Predicate::NotIn),
            // A prefix: a valid value cut after 1 to all of its characters.
            (exact_value(attribute), any::<Index>()).prop_map(|(value, cut)| {
                let len = 1 + cut.index(value.len());
                Predicate::StartsWith(value[..len].to_owned())
            }),
        ]
        .boxed(),
        ValueType::Boolean => (equality, literal(attribute))
            .prop_map(|(op, l)| Predicate::Compare(op, l))
            .boxed(),
    }
}

fn test_condition() -> impl Strategy<Value = Condition> {
    select(Attribute::ALL.to_vec())
        .prop_flat_map(|attribute| predicate(attribute).prop_map(move |p| test(attribute, p)))
}

/// Conditions of at most 4 levels of `and`/`or`/`not`: printed, at most 8
/// levels of nesting, well within the limit.
fn condition_tree() -> impl Strategy<Value = Condition> {
    test_condition().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Condition::All),
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Condition::Any),
            inner.prop_map(|c| Condition::Not(Box::new(c))),
        ]
    })
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Block),
        Just(Action::Challenge),
        Just(Action::Review),
        Just(Action::Allow),
        (MIN_SCORE..=MAX_SCORE).prop_map(Action::Score),
        (-60..=60).prop_map(Action::Score),
    ]
}

/// Rule sets of up to 8 rules, names made unique by their index.
fn rule_set() -> impl Strategy<Value = RuleSet> {
    let rule = ("[a-z][a-z0-9_]{0,20}", action(), condition_tree());
    proptest::collection::vec(rule, 0..8).prop_map(|rules| RuleSet {
        rules: rules
            .into_iter()
            .enumerate()
            .map(|(i, (name, action, condition))| Rule {
                name: RuleName::parse(&format!("{name}_{i}")).unwrap(),
                action,
                condition,
            })
            .collect(),
    })
}

/// A fact as a test context holds it, possibly of the wrong type.
#[derive(Debug, Clone, PartialEq)]
enum Fact {
    Integer(i64),
    String(String),
    Boolean(bool),
}

#[derive(Debug, Clone)]
struct Facts(BTreeMap<Attribute, Fact>);

impl RiskContext for Facts {
    fn value(&self, attribute: Attribute) -> Option<Value<'_>> {
        self.0.get(&attribute).map(|fact| match fact {
            Fact::Integer(n) => Value::Integer(*n),
            Fact::String(s) => Value::String(s),
            Fact::Boolean(b) => Value::Boolean(*b),
        })
    }
}

/// Mostly the right type, sometimes absent, rarely the wrong type.
fn facts() -> impl Strategy<Value = Facts> {
    let per_attribute: Vec<_> = Attribute::ALL
        .iter()
        .map(|&attribute| {
            let right = match attribute.value_type() {
                ValueType::Integer => small_or_any_integer().prop_map(Fact::Integer).boxed(),
                ValueType::String => exact_value(attribute).prop_map(Fact::String).boxed(),
                ValueType::Boolean => any::<bool>().prop_map(Fact::Boolean).boxed(),
            };
            let wrong = prop_oneof![
                any::<i64>().prop_map(Fact::Integer),
                any::<bool>().prop_map(Fact::Boolean)
            ];
            let fact = prop_oneof![8 => right.prop_map(Some), 3 => Just(None), 1 => wrong.prop_map(Some)];
            fact.prop_map(move |f| f.map(|f| (attribute, f)))
        })
        .collect();
    per_attribute.prop_map(|pairs| Facts(pairs.into_iter().flatten().collect()))
}

fn thresholds() -> impl Strategy<Value = Thresholds> {
    (1u8..=100)
        .prop_flat_map(|review| (Just(review), review..=100))
        .prop_map(|(r, b)| Thresholds::new(r, b).unwrap())
}

/// The reference: the language's semantics spelled out case by case.
fn reference_holds(condition: &Condition, facts: &Facts) -> bool {
    match condition {
        // Every operand evaluated, none short-circuited, unlike `eval`.
        Condition::All(items) => !items
            .iter()
            .map(|c| reference_holds(c, facts))
            .collect::<Vec<_>>()
            .contains(&false),
        Condition::Any(items) => items
            .iter()
            .map(|c| reference_holds(c, facts))
            .collect::<Vec<_>>()
            .contains(&true),
        Condition::Not(inner) => !reference_holds(inner, facts),
        Condition::Test(test) => {
            let as_literal = |fact: &Fact| match fact {
                Fact::Integer(n) => Literal::Integer(*n),
                Fact::String(s) => Literal::String(s.clone()),
                Fact::Boolean(b) => Literal::Boolean(*b),
            };
            let Some(fact) = facts.0.get(&test.attribute) else {
                return false;
            };
            let value = as_literal(fact);
            if value.value_type() != test.attribute.value_type() {
                return false;
            }
            match (&test.predicate, &value) {
                (Predicate::In(list), _) => list.contains(&value),
                (Predicate::NotIn(list), _) => !list.contains(&value),
                (Predicate::StartsWith(prefix), Literal::String(s)) => s.starts_with(prefix.as_str()),
                (Predicate::Compare(CmpOp::Eq, l), _) => value == *l,
                (Predicate::Compare(CmpOp::Ne, l), _) => value != *l,
                (Predicate::Compare(op, Literal::Integer(l)), Literal::Integer(v)) => match op {
                    CmpOp::Lt => v < l,
                    CmpOp::Le => v <= l,
                    CmpOp::Gt => v > l,
                    CmpOp::Ge => v >= l,
                    CmpOp::Eq | CmpOp::Ne => unreachable!(),
                },
                other => panic!("the parser never builds {other:?}"),
            }
        }
    }
}

/// Punctuation, keywords, attributes and near-misses, for token soup.
const PIECES: &[&str] = &[
    "rule",
    "r",
    "s",
    ":",
    "block",
    "challenge",
    "allow",
    "score",
    "5",
    "-1001",
    "when",
    "amount",
    "currency",
    "card.bin",
    "is_livemode",
    "==",
    "<",
    ">=",
    "!=",
    "=",
    "in",
    "not",
    "starts_with",
    "and",
    "or",
    "(",
    ")",
    "[",
    "]",
    ",",
    "\"usd\"",
    "\"4242\"",
    "\"USD\"",
    "true",
    "100_000",
    "1.5",
    "\n",
    "#c\n",
    "\"",
    "\\",
    "é",
    "\u{202e}",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn printed_sets_parse_back_equal(set in rule_set()) {
        let printed = set.to_string();
        let parsed = RuleSet::parse(&printed);
        prop_assert_eq!(parsed.as_ref(), Ok(&set), "{}", printed);
        prop_assert_eq!(parsed.unwrap().to_string(), printed);
    }

    #[test]
    fn any_bytes_parse_or_fail_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(set) = RuleSet::parse(&text) {
            prop_assert_eq!(RuleSet::parse(&set.to_string()), Ok(set));
        }
    }

    #[test]
    fn token_soup_parses_or_fails_without_panic(picks in proptest::collection::vec(select(PIECES), 0..60)) {
        let text = picks.join(" ");
        match RuleSet::parse(&text) {
            Ok(set) => {
                prop_assert_eq!(RuleSet::parse(&set.to_string()), Ok(set.clone()));
                set.evaluate(&full_facts(), Thresholds::new(50, 80).unwrap());
            }
            Err(e) => prop_assert!(e.line() >= 1 && e.column() >= 1 && !e.message().is_empty()),
        }
    }

    #[test]
    fn evaluation_agrees_with_the_reference(set in rule_set(), facts in facts(), thresholds in thresholds()) {
        let assessment = set.evaluate(&facts, thresholds);
        let matched: Vec<&Rule> = set.rules.iter().filter(|r| reference_holds(&r.condition, &facts)).collect();
        let expected: Vec<(&RuleName, Action)> = matched.iter().map(|r| (&r.name, r.action)).collect();
        let got: Vec<(&RuleName, Action)> = assessment.matched.iter().map(|m| (m.rule, m.action)).collect();
        prop_assert_eq!(got, expected);

        let points: i64 = matched.iter().map(|r| match r.action { Action::Score(n) => i64::from(n), _ => 0 }).sum();
        let score = points.clamp(0, 100);
        prop_assert_eq!((assessment.points, i64::from(assessment.score)), (points, score));

        let precedence = [
            (Action::Block, Decision::Block),
            (Action::Challenge, Decision::Challenge),
            (Action::Review, Decision::Review),
            (Action::Allow, Decision::Allow),
        ];
        let verdict = precedence.iter().find_map(|(action, decision)| {
            matched.iter().find(|r| r.action == *action).map(|r| (*decision, DecidedBy::Rule(&r.name)))
        });
        let by_score = if score >= i64::from(thresholds.block_at()) {
            Decision::Block
        } else if score >= i64::from(thresholds.review_at()) {
            Decision::Review
        } else {
            Decision::Allow
        };
        // An `allow` verdict overrides the score; any other verdict applies
        // only when it is at least as strong as the score's decision.
        let expected = match verdict {
            Some((Decision::Allow, by)) => (Decision::Allow, by),
            Some((decision, by)) if decision >= by_score => (decision, by),
            _ => (by_score, DecidedBy::Score),
        };
        prop_assert_eq!((assessment.decision, assessment.decided_by), expected);
    }
}
