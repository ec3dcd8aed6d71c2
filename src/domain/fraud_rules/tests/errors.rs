//! Every refusal: its line, column and message.

use super::*;

#[test]
fn lexical_errors() {
    let cases: &[(&str, usize, &str)] = &[
        ("amount @ 1", 28, "unexpected '@'"),
        ("amount == 1 é", 33, "unexpected character U+00E9"),
        ("amount = 1", 28, "unexpected '=': compare with =="),
        ("amount ! 1", 28, "unexpected '!': negate with not, or compare with !="),
        (
            "amount == - 1",
            31,
            "unexpected '-': a minus sign goes right before digits",
        ),
        (
            "amount == 1.5",
            31,
            "invalid number: numbers are whole, without a decimal point",
        ),
        ("amount == 12ab", 31, "invalid number: digits run into letters"),
        ("amount == 1__0", 31, "invalid number: _ goes only between digits"),
        ("amount == 1_", 31, "invalid number: _ goes only between digits"),
        (
            "amount == 9223372036854775808",
            31,
            "integer out of range (a 64-bit signed integer)",
        ),
        (
            "amount == -9223372036854775809",
            31,
            "integer out of range (a 64-bit signed integer)",
        ),
        ("currency == \"usd", 33, "unterminated string"),
        ("currency == \"usd\nrule", 33, "unterminated string"),
        (
            "currency == \"u\\sd\"",
            35,
            r#"unknown escape: strings allow only \" and \\"#,
        ),
        (
            "currency == \"u\tsd\"",
            35,
            "character U+0009 is not allowed in a string",
        ),
        (
            "currency == \"u\u{202e}sd\"",
            35,
            "character U+202E is not allowed in a string",
        ),
        ("amount == 1\r", 32, "unexpected character U+000D"),
        ("amount == 1\u{0}", 32, "unexpected character U+0000"),
    ];
    for &(condition, column, message) in cases {
        check(refuse_condition(condition), 1, column, message);
    }
    let long = format!("currency == \"{}\"", "a".repeat(MAX_STRING_BYTES + 1));
    check(refuse_condition(&long), 1, 33, "a string is at most 256 bytes");
}

#[test]
fn invisible_characters_are_refused_even_in_comments() {
    check(
        refuse("# fine\n# hidden \u{202e} text\n"),
        2,
        10,
        "character U+202E is not allowed, even in a comment",
    );
    check(
        refuse("#\u{7}"),
        1,
        2,
        "character U+0007 is not allowed, even in a comment",
    );
    parse("# tabs\tare fine, so is é\r\n");
}

#[test]
fn rule_structure_errors() {
    let cases: &[(&str, usize, usize, &str)] = &[
        ("amount > 1", 1, 1, "expected `rule`, found `amount`"),
        (
            "\n\n  Rule r : block when amount > 1",
            3,
            3,
            "expected `rule`, found `Rule`",
        ),
        ("rule : block when amount > 1", 1, 6, "expected a rule name, found `:`"),
        (
            "rule r block when amount > 1",
            1,
            8,
            "expected `:` after the rule name, found `block`",
        ),
        (
            "rule r : deny when amount > 1",
            1,
            10,
            "expected an action (block, challenge, review, allow or score <n>), found `deny`",
        ),
        (
            "rule r : score when amount > 1",
            1,
            16,
            "expected points after `score`, found `when`",
        ),
        (
            "rule r : score 1001 when amount > 1",
            1,
            16,
            "a score is from -1000 to 1000",
        ),
        (
            "rule r : score -1001 when amount > 1",
            1,
            16,
            "a score is from -1000 to 1000",
        ),
        (
            "rule r : score 99999999999 when amount > 1",
            1,
            16,
            "a score is from -1000 to 1000",
        ),
        (
            "rule r : block if amount > 1",
            1,
            16,
            "expected `when` after the action, found `if`",
        ),
        (
            "rule r : block when",
            1,
            20,
            "expected a condition (an attribute, `not` or `(`), found the end of the text",
        ),
        (
            "rule r : block when\nrule",
            1,
            20,
            "expected a condition (an attribute, `not` or `(`), found the end of the line",
        ),
        (
            "rule r : block when amount > 1 rule s",
            1,
            32,
            "expected the end of the rule, found `rule`",
        ),
        (
            "rule r : block when amount > 1)",
            1,
            31,
            "expected the end of the rule, found `)`",
        ),
        (
            "rule r : block when (amount > 1",
            1,
            32,
            "expected `)`, found the end of the text",
        ),
        (
            "rule r : block when amount > 1\nrule r : allow when amount > 2",
            2,
            6,
            "duplicate rule name `r`",
        ),
    ];
    for &(text, line, column, message) in cases {
        check(refuse(text), line, column, message);
    }
}

#[test]
fn bad_rule_names() {
    let message = "a rule name is 1 to 64 characters: a lower-case letter, then lower-case letters, digits or _";
    for name in ["Big", "_x", "a.b", "aB", &format!("a{}", "b".repeat(64))] {
        check(refuse(&format!("rule {name} : block when amount > 1")), 1, 6, message);
    }
    check(
        refuse("rule 9lives : block when amount > 1"),
        1,
        6,
        "invalid number: digits run into letters",
    );
    check(
        refuse("rule x-y : block when amount > 1"),
        1,
        7,
        "unexpected '-': a minus sign goes right before digits",
    );
    check(
        refuse("rule 9 : block when amount > 1"),
        1,
        6,
        "expected a rule name, found a number",
    );
}

#[test]
fn condition_errors() {
    let cases: &[(&str, usize, &str)] = &[
        ("amout > 1", 21, "unknown attribute `amout`"),
        ("card.cvc == \"123\"", 21, "unknown attribute `card.cvc`"),
        ("and > 1", 21, "unknown attribute `and`"),
        ("amount", 27, "expected a comparison after `amount` (==, !=, <, <=, >, >=, in, not in, starts_with), found the end of the text"),
        ("amount is 1", 28, "expected a comparison after `amount` (==, !=, <, <=, >, >=, in, not in, starts_with), found `is`"),
        ("amount == \"100\"", 31, "`amount` is an integer, not a string"),
        ("amount == true", 31, "`amount` is an integer, not a boolean"),
        ("currency == 840", 33, "`currency` is a string, not an integer"),
        ("is_livemode == 1", 36, "`is_livemode` is a boolean, not an integer"),
        ("amount == ", 31, "expected a value (a number, a string, true or false), found the end of the text"),
        ("amount == amount", 31, "expected a value (a number, a string, true or false), found `amount`"),
        ("currency < \"usd\"", 30, "`currency` is a string: < does not apply (use ==, !=, in, not in or starts_with)"),
        ("is_livemode >= true", 33, "`is_livemode` is a boolean: >= does not apply (use == or !=)"),
        ("is_livemode in [true]", 33, "`is_livemode` is a boolean: in does not apply (use == or !=)"),
        ("is_livemode not in [true]", 33, "`is_livemode` is a boolean: not in does not apply (use == or !=)"),
        ("amount starts_with \"1\"", 28, "`amount` is an integer: starts_with does not apply (use ==, !=, <, <=, >, >=, in or not in)"),
        ("card.bin starts_with 4", 42, "expected a string after starts_with, found a number"),
        ("amount not 5", 32, "expected `in` after `not`, found a number"),
        ("amount in 5", 31, "expected `[` to start a list, found a number"),
        ("amount in []", 32, "a list needs at least one value"),
        ("amount in [,]", 32, "expected a value (a number, a string, true or false), found `,`"),
        ("amount in [1 2]", 34, "expected `,` or `]` in the list, found a number"),
        ("amount in [1, \"2\"]", 35, "`amount` is an integer, not a string"),
        ("amount in [1", 33, "expected `,` or `]` in the list, found the end of the text"),
        ("amount > 1 and amount < 2 or amount == 5", 47, "`and` and `or` cannot be mixed without parentheses: write (a and b) or c"),
        ("amount > 1 or amount < 2 and amount == 5", 46, "`and` and `or` cannot be mixed without parentheses: write (a and b) or c"),
        ("not", 24, "expected a condition (an attribute, `not` or `(`), found the end of the text"),
        ("()", 22, "expected a condition (an attribute, `not` or `(`), found `)`"),
    ];
    for &(condition, column, message) in cases {
        check(refuse_condition(condition), 1, column, message);
    }
}

#[test]
fn string_values_must_take_the_form_of_their_facts() {
    let cases: &[(&str, &str)] = &[
        (
            "currency == \"USD\"",
            "`currency` takes a lower-case ISO 4217 code such as \"usd\"",
        ),
        (
            "currency == \"xyz\"",
            "`currency` takes a lower-case ISO 4217 code such as \"usd\"",
        ),
        (
            "capture_method == \"later\"",
            "`capture_method` takes automatic or manual",
        ),
        (
            "card.brand in [\"visa\", \"Visa\"]",
            "`card.brand` takes visa, mastercard, amex, discover, jcb, diners, unionpay or maestro",
        ),
        ("card.bin == \"42424\"", "`card.bin` takes 6 digits"),
        ("card.bin != \"42424a\"", "`card.bin` takes 6 digits"),
        ("card.last4 == \"424\"", "`card.last4` takes 4 digits"),
        (
            "card.funding == \"charge\"",
            "`card.funding` takes credit, debit, prepaid or unknown",
        ),
        (
            "customer.ip_country == \"usa\"",
            "`customer.ip_country` takes a lower-case ISO 3166 country code such as \"us\"",
        ),
        (
            "customer.ip_country == \"US\"",
            "`customer.ip_country` takes a lower-case ISO 3166 country code such as \"us\"",
        ),
        (
            "customer.email_domain == \"Example.com\"",
            "`customer.email_domain` takes a lower-case domain such as \"example.com\"",
        ),
        (
            "customer.email_domain == \"a..b\"",
            "`customer.email_domain` takes a lower-case domain such as \"example.com\"",
        ),
        (
            "customer.email_domain == \"\"",
            "`customer.email_domain` takes a lower-case domain such as \"example.com\"",
        ),
        (
            "customer.ip == \"010.0.0.1\"",
            "`customer.ip` takes an IP address in canonical form such as \"192.0.2.1\" or \"2001:db8::1\"",
        ),
        (
            "customer.ip == \"2001:DB8::1\"",
            "`customer.ip` takes an IP address in canonical form such as \"192.0.2.1\" or \"2001:db8::1\"",
        ),
    ];
    for &(condition, message) in cases {
        let (line, _, got) = refuse_condition(condition);
        assert_eq!((line, got.as_str()), (1, message), "{condition}");
    }
    let prefixes: &[(&str, &str)] = &[
        ("card.bin starts_with \"\"", "a `card.bin` prefix is 1 to 6 digits"),
        (
            "card.bin starts_with \"4242424\"",
            "a `card.bin` prefix is 1 to 6 digits",
        ),
        ("card.last4 starts_with \"x\"", "a `card.last4` prefix is 1 to 4 digits"),
        (
            "currency starts_with \"US\"",
            "a `currency` prefix is 1 to 3 lower-case letters",
        ),
        (
            "card.brand starts_with \"Vi\"",
            "a `card.brand` prefix is lower-case letters",
        ),
        (
            "customer.ip_country starts_with \"usa\"",
            "a `customer.ip_country` prefix is 1 or 2 lower-case letters",
        ),
        (
            "customer.email_domain starts_with \"A\"",
            "a `customer.email_domain` prefix is lower-case letters, digits, '-' and '.'",
        ),
        (
            "customer.ip starts_with \"10.0.0.x\"",
            "a `customer.ip` prefix is digits, a to f, '.' and ':'",
        ),
    ];
    for &(condition, message) in prefixes {
        check(
            refuse_condition(condition),
            1,
            21 + condition.find('"').unwrap(),
            message,
        );
    }
}

#[test]
fn errors_quote_at_most_a_short_word_and_never_a_literal() {
    let long = format!("x{}", "y".repeat(5000));
    let (_, _, message) = refuse_condition(&format!("{long} > 1"));
    assert_eq!(message, format!("unknown attribute `x{}…`", "y".repeat(23)));
    let (_, _, message) = refuse(&format!(
        "rule r : block when amount > 1\nrule {long} : block when amount > 1"
    ));
    assert!(message.len() < 120 && !message.contains("yyy"), "{message}");
    let (_, _, message) = refuse_condition("currency == \"secret-token-value\"");
    assert!(!message.contains("secret"), "{message}");
    let (_, _, message) = refuse_condition("amount == 42424242424242424242");
    assert!(!message.contains("4242"), "{message}");
}
