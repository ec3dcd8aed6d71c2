//! Every limit, at and past it, and hostile nesting.

use super::*;

#[test]
fn text_size_limit() {
    let rule = "rule r : block when amount > 1\n";
    let padded = format!("{rule}#{}", "x".repeat(MAX_TEXT_BYTES - rule.len() - 1));
    assert_eq!(padded.len(), MAX_TEXT_BYTES);
    assert_eq!(parse(&padded).rules().len(), 1);
    check(refuse(&format!("{padded}x")), 1, 1, "a rule set is at most 65536 bytes");
}

#[test]
fn name_and_string_limits() {
    let name = format!("n{}", "x".repeat(MAX_NAME_CHARS - 1));
    assert_eq!(
        parse(&format!("rule {name} : block when amount > 1")).rules()[0]
            .name()
            .as_str(),
        name
    );
    let (line, column, message) = refuse(&format!("rule {name}x : block when amount > 1"));
    assert_eq!((line, column), (1, 6));
    assert!(message.starts_with("a rule name is 1 to 64 characters"), "{message}");

    let domain = "d".repeat(MAX_STRING_BYTES);
    parse(&format!("{PREFIX}customer.email_domain == \"{domain}\""));
    let refused = refuse_condition(&format!("customer.email_domain == \"{domain}d\""));
    check(refused, 1, 46, "a string is at most 256 bytes");
    // Bytes, not characters: 129 two-byte characters are 258 bytes.
    let wide = "é".repeat(129);
    check(
        refuse_condition(&format!("customer.email_domain == \"{wide}\"")),
        1,
        46,
        "a string is at most 256 bytes",
    );
}

#[test]
fn rule_count_limit() {
    let rules: String = (0..MAX_RULES)
        .map(|i| format!("rule r{i} : score 1 when amount > {i}\n"))
        .collect();
    assert_eq!(parse(&rules).rules().len(), MAX_RULES);
    check(
        refuse(&format!("{rules}rule one_more : block when amount > 1")),
        201,
        1,
        "a rule set holds at most 200 rules",
    );
}

#[test]
fn list_length_limit() {
    let values = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    let (line, column, message) = refuse_condition(&format!("amount in [{}]", values(MAX_LIST_LEN + 1)));
    assert_eq!((line, message.as_str()), (1, "a list holds at most 100 values"));
    let hundredth = format!("{PREFIX}amount in [{}, ", values(MAX_LIST_LEN)).chars().count() + 1;
    assert_eq!(column, hundredth, "at the 101st value");
    assert!(RuleSet::parse(&format!("{PREFIX}amount in [{}]", values(MAX_LIST_LEN))).is_ok());
}

#[test]
fn depth_limit_one_past_it() {
    let message = "conditions nest at most 32 levels deep (each `(` and each `not` is a level)";
    let nots = format!("{}amount > 1", "not ".repeat(MAX_DEPTH + 1));
    check(refuse_condition(&nots), 1, 21 + 4 * MAX_DEPTH, message);
    let parens = format!("{}amount > 1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
    check(refuse_condition(&parens), 1, 21 + MAX_DEPTH, message);
}

/// Hostile depth: as much nesting as fits in the text limit is refused at
/// level 33 without exhausting the stack, and 100,000 levels are refused by
/// the size limit before any parsing.
#[test]
fn hostile_nesting_is_refused_without_deep_recursion() {
    let message = "conditions nest at most 32 levels deep (each `(` and each `not` is a level)";
    let fits = MAX_TEXT_BYTES - PREFIX.len();
    check(refuse_condition(&"(".repeat(fits)), 1, 21 + MAX_DEPTH, message);
    check(
        refuse_condition(&"not ".repeat(fits / 4)),
        1,
        21 + 4 * MAX_DEPTH,
        message,
    );
    check(
        refuse_condition(&"not(".repeat(fits / 4)),
        1,
        21 + 4 * (MAX_DEPTH / 2),
        message,
    );
    check(
        refuse_condition(&"[".repeat(fits)),
        1,
        21,
        "expected a condition (an attribute, `not` or `(`), found `[`",
    );
    for hostile in ["(".repeat(100_000), "not ".repeat(100_000), "not(".repeat(100_000)] {
        check(refuse_condition(&hostile), 1, 1, "a rule set is at most 65536 bytes");
    }
}
