//! What parses, into which tree, and how it prints.

use super::super::lexer::{Lexer, Tok};
use super::*;

fn amount(op: CmpOp, n: i64) -> Condition {
    test(Attribute::Amount, Predicate::Compare(op, int(n)))
}

#[test]
fn empty_text_blank_lines_and_comments_are_an_empty_set() {
    for text in [
        "",
        "\n\n",
        "# only a comment",
        "  # indented comment\n\n\t\n# another\n",
        "\r\n",
    ] {
        assert_eq!(parse(text).rules(), &[], "{text:?}");
    }
}

#[test]
fn a_rule_has_a_name_an_action_and_a_condition() {
    let set = parse("rule big_one : block when amount > 100");
    let rule = &set.rules()[0];
    assert_eq!(rule.name().as_str(), "big_one");
    assert_eq!(rule.action(), Action::Block);
    assert_eq!(rule.condition(), &amount(CmpOp::Gt, 100));
}

#[test]
fn every_action() {
    for (text, action) in [
        ("block", Action::Block),
        ("challenge", Action::Challenge),
        ("review", Action::Review),
        ("allow", Action::Allow),
        ("score 0", Action::Score(0)),
        ("score 25", Action::Score(25)),
        ("score -1000", Action::Score(-1000)),
        ("score 1000", Action::Score(1000)),
        ("score 1_000", Action::Score(1000)),
    ] {
        let set = parse(&format!("rule r : {text} when amount > 1"));
        assert_eq!(set.rules()[0].action(), action, "{text}");
    }
}

#[test]
fn rules_keep_their_order_and_may_be_named_like_keywords() {
    let set = parse("rule when : allow when amount < 5\n\nrule rule : review when amount < 6 # why\nrule z9_ : block when amount < 7");
    let names: Vec<&str> = set.rules().iter().map(|r| r.name().as_str()).collect();
    assert_eq!(names, ["when", "rule", "z9_"]);
}

#[test]
fn a_name_of_64_characters_is_accepted() {
    let name = format!("a{}", "b".repeat(63));
    assert_eq!(
        parse(&format!("rule {name} : block when amount > 1")).rules()[0]
            .name()
            .as_str(),
        name
    );
}

#[test]
fn every_integer_comparison() {
    for (text, op) in [
        ("==", CmpOp::Eq),
        ("!=", CmpOp::Ne),
        ("<", CmpOp::Lt),
        ("<=", CmpOp::Le),
        (">", CmpOp::Gt),
        (">=", CmpOp::Ge),
    ] {
        assert_eq!(condition(&format!("amount {text} 7")), amount(op, 7));
        assert_eq!(condition(&format!("amount{text}7")), amount(op, 7), "no spaces needed");
    }
}

#[test]
fn integer_literals() {
    for (text, n) in [
        ("0", 0),
        ("007", 7),
        ("-5", -5),
        ("100_000", 100_000),
        ("1_2_3", 123),
        ("9223372036854775807", i64::MAX),
        ("-9_223_372_036_854_775_808", i64::MIN),
    ] {
        assert_eq!(condition(&format!("amount == {text}")), amount(CmpOp::Eq, n), "{text}");
    }
}

#[test]
fn string_and_boolean_tests() {
    assert_eq!(
        condition(r#"currency == "usd""#),
        test(Attribute::Currency, Predicate::Compare(CmpOp::Eq, string("usd")))
    );
    assert_eq!(
        condition(r#"card.brand != "amex""#),
        test(Attribute::CardBrand, Predicate::Compare(CmpOp::Ne, string("amex")))
    );
    assert_eq!(
        condition("is_livemode == false"),
        test(
            Attribute::IsLivemode,
            Predicate::Compare(CmpOp::Eq, Literal::Boolean(false))
        )
    );
    assert_eq!(
        condition("is_livemode != true"),
        test(
            Attribute::IsLivemode,
            Predicate::Compare(CmpOp::Ne, Literal::Boolean(true))
        )
    );
}

#[test]
fn lists_and_prefixes() {
    assert_eq!(
        condition(r#"customer.ip_country in ["us", "ca"]"#),
        test(
            Attribute::CustomerIpCountry,
            Predicate::In(vec![string("us"), string("ca")])
        )
    );
    assert_eq!(
        condition("velocity.card_declines_24h not in [0, 1,]"),
        test(
            Attribute::VelocityCardDeclines24h,
            Predicate::NotIn(vec![int(0), int(1)])
        )
    );
    assert_eq!(
        condition("amount in [\n  5,\n  6\n]"),
        test(Attribute::Amount, Predicate::In(vec![int(5), int(6)]))
    );
    assert_eq!(
        condition(r#"card.bin starts_with "4242""#),
        test(Attribute::CardBin, Predicate::StartsWith("4242".to_owned()))
    );
    let hundred = (0..100).map(|n| n.to_string()).collect::<Vec<_>>().join(",");
    assert_eq!(
        condition(&format!("amount in [{hundred}]")),
        test(Attribute::Amount, Predicate::In((0..100).map(int).collect()))
    );
}

/// One accepted value per string attribute, in the form its facts take.
#[test]
fn every_attribute_parses_with_a_value_of_its_form() {
    for attribute in Attribute::ALL {
        let (value, prefix) = match attribute {
            Attribute::Currency => ("\"jpy\"", "\"j\""),
            Attribute::CaptureMethod => ("\"manual\"", "\"man\""),
            Attribute::CardBrand => ("\"unionpay\"", "\"union\""),
            Attribute::CardBin => ("\"411111\"", "\"411111\""),
            Attribute::CardLast4 => ("\"0004\"", "\"0\""),
            Attribute::CardFunding => ("\"prepaid\"", "\"pre\""),
            Attribute::CustomerIpCountry | Attribute::CardCountry => ("\"fr\"", "\"f\""),
            Attribute::CustomerEmailDomain => ("\"mail.example-1.co.uk\"", "\"mail.ex\""),
            Attribute::CustomerEmail => ("\"jenny+shop@mail.example.com\"", "\"jenny+\""),
            Attribute::CustomerIp => ("\"2001:db8::1\"", "\"2001:db8:\""),
            Attribute::IsLivemode | Attribute::CardFirstUse => ("true", ""),
            _ => ("-1", ""),
        };
        let name = attribute.name();
        assert_eq!(Attribute::from_name(name), Some(attribute));
        let parsed = condition(&format!("{name} == {value}"));
        assert!(
            matches!(parsed, Condition::Test(ref t) if t.attribute() == attribute),
            "{name}"
        );
        if !prefix.is_empty() {
            condition(&format!("{name} starts_with {prefix}"));
        }
    }
    for ip in ["192.0.2.1", "::1", "::ffff:192.0.2.1", "fe80::1"] {
        condition(&format!("customer.ip == \"{ip}\""));
    }
}

#[test]
fn not_binds_tighter_than_and_and_or() {
    let a = || amount(CmpOp::Gt, 1);
    let b = || amount(CmpOp::Lt, 9);
    assert_eq!(
        condition("not amount > 1 and amount < 9"),
        Condition::All(vec![Condition::Not(Box::new(a())), b()])
    );
    assert_eq!(
        condition("not (amount > 1 or amount < 9)"),
        Condition::Not(Box::new(Condition::Any(vec![a(), b()])))
    );
    assert_eq!(
        condition("not not amount > 1"),
        Condition::Not(Box::new(Condition::Not(Box::new(a()))))
    );
}

#[test]
fn parentheses_group_without_adding_nodes() {
    let a = || amount(CmpOp::Gt, 1);
    let b = || amount(CmpOp::Lt, 9);
    let c = || amount(CmpOp::Ne, 5);
    assert_eq!(condition("((amount > 1))"), a());
    assert_eq!(
        condition("amount > 1 and amount < 9 and amount != 5"),
        Condition::All(vec![a(), b(), c()])
    );
    assert_eq!(
        condition("amount > 1 and (amount < 9 and amount != 5)"),
        Condition::All(vec![a(), Condition::All(vec![b(), c()])])
    );
    assert_eq!(
        condition("(amount > 1 or amount < 9) and amount != 5"),
        Condition::All(vec![Condition::Any(vec![a(), b()]), c()])
    );
    assert_eq!(
        condition("amount > 1 or (amount < 9 and amount != 5)"),
        Condition::Any(vec![a(), Condition::All(vec![b(), c()])])
    );
}

#[test]
fn newlines_inside_brackets_are_spaces_and_crlf_ends_a_line() {
    let set = parse("rule a : block when (\n  amount > 1\n  and amount < 9\n)\r\nrule b : review when amount > 2\r\n");
    assert_eq!(set.rules().len(), 2);
    assert_eq!(
        set.rules()[0].condition(),
        &Condition::All(vec![amount(CmpOp::Gt, 1), amount(CmpOp::Lt, 9)])
    );
}

#[test]
fn nesting_up_to_the_limit_parses_and_prints_within_it() {
    let nots = format!("{}amount > 1", "not ".repeat(MAX_DEPTH));
    let parens = format!("{}amount > 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    let half = MAX_DEPTH / 2;
    let mixed = format!("{}amount > 1{}", "not (".repeat(half), ")".repeat(half));
    for text in [nots, parens, mixed] {
        canonical_condition(&text);
    }
    // Nested `and`/`or` at the limit: each level is one pair of parentheses.
    let mut deep = "amount > 1".to_owned();
    for _ in 0..MAX_DEPTH {
        deep = format!("amount < 0 or ({deep})");
    }
    canonical_condition(&deep);
}

#[test]
fn string_escapes_are_read_and_printed() {
    let mut lexer = Lexer::new(r#""a\"b\\c" "é€""#);
    assert_eq!(lexer.next_token().unwrap().tok, Tok::Str("a\"b\\c".to_owned()));
    assert_eq!(lexer.next_token().unwrap().tok, Tok::Str("é€".to_owned()));
    assert_eq!(lexer.next_token().unwrap().tok, Tok::Eof);
    assert_eq!(lexer.next_token().unwrap().tok, Tok::Eof, "the end repeats");
    let printed = string("a\"b\\c").to_string();
    assert_eq!(printed, r#""a\"b\\c""#);
    assert_eq!(
        Lexer::new(&printed).next_token().unwrap().tok,
        Tok::Str("a\"b\\c".to_owned())
    );
    let max = "x".repeat(MAX_STRING_BYTES);
    assert_eq!(
        Lexer::new(&format!("\"{max}\"")).next_token().unwrap().tok,
        Tok::Str(max)
    );
}

#[test]
fn the_lexer_reports_positions_in_characters() {
    let mut lexer = Lexer::new("é");
    assert!(lexer.next_token().is_err());
    let mut lexer = Lexer::new("# é\n  (\n\n   amount");
    let newline = lexer.next_token().unwrap();
    assert_eq!((newline.tok, newline.line, newline.column), (Tok::Newline, 1, 4));
    let paren = lexer.next_token().unwrap();
    assert_eq!((paren.tok, paren.line, paren.column), (Tok::LParen, 2, 3));
    let word = lexer.next_token().unwrap();
    assert_eq!((word.tok, word.line, word.column), (Tok::Word("amount"), 4, 4));
}

#[test]
fn the_canonical_form() {
    let text = "# header\nrule   a:block    when amount>=100000\n\
                rule b : score -15 when not(currency==\"usd\" or currency == \"eur\")and is_livemode==true\n\
                rule c : allow when card.bin starts_with \"4242\" and (customer.ip_country in [\"us\",\n\"ca\",] or amount < 1_0)\n\
                rule d : review when not not velocity.ip_payments_1h not in [1, 22_222]\n";
    assert_eq!(
        canonical(text),
        "rule a : block when amount >= 100_000\n\
         rule b : score -15 when not (currency == \"usd\" or currency == \"eur\") and is_livemode == true\n\
         rule c : allow when card.bin starts_with \"4242\" and (customer.ip_country in [\"us\", \"ca\"] or amount < 10)\n\
         rule d : review when not not velocity.ip_payments_1h not in [1, 22_222]\n"
    );
}

#[test]
fn integers_print_grouped_from_five_digits() {
    for (n, printed) in [
        (0, "0"),
        (9999, "9999"),
        (-9999, "-9999"),
        (10_000, "10_000"),
        (123_456, "123_456"),
        (-1_234_567, "-1_234_567"),
        (i64::MIN, "-9_223_372_036_854_775_808"),
        (i64::MAX, "9_223_372_036_854_775_807"),
    ] {
        assert_eq!(int(n).to_string(), printed);
        assert_eq!(condition(&format!("amount == {printed}")), amount(CmpOp::Eq, n));
    }
}
