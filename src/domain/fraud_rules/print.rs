//! The canonical text of a rule set, as `Display`: one rule per line,
//! `rule <name> : <action> when <condition>`, single spaces, parentheses only
//! where the structure needs them, integers of five digits or more grouped
//! with `_`, strings escaped with `\"` and `\\`.
//!
//! Invariant: parsing the printed text gives back an equal set. That needs
//! the parentheses to mirror the tree exactly (an `and` or `or` inside
//! another, or under `not`, is parenthesised; nothing else is), and it keeps
//! the printed nesting no deeper than the text that was parsed, so a set at
//! the depth limit still prints to text within it.

use std::fmt;

use super::ast::{Action, Condition, Literal, Predicate, Rule, RuleName, RuleSet, Test};
use super::attribute::Attribute;

impl fmt::Display for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for rule in &self.rules {
            writeln!(f, "{rule}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {} : {} when {}", self.name, self.action, self.condition)
    }
}

impl fmt::Display for RuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Block => f.write_str("block"),
            Action::Challenge => f.write_str("challenge"),
            Action::Review => f.write_str("review"),
            Action::Allow => f.write_str("allow"),
            Action::Score(points) => {
                f.write_str("score ")?;
                write_integer(f, i64::from(*points))
            }
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::All(items) => write_joined(f, items, " and "),
            Condition::Any(items) => write_joined(f, items, " or "),
            Condition::Not(inner) => {
                f.write_str("not ")?;
                write_operand(f, inner)
            }
            Condition::Test(test) => write!(f, "{test}"),
        }
    }
}

fn write_joined(f: &mut fmt::Formatter<'_>, items: &[Condition], joiner: &str) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(joiner)?;
        }
        write_operand(f, item)?;
    }
    Ok(())
}

/// An operand of `and`, `or` or `not`: parenthesised if it is itself an
/// `and` or `or`, which is exactly when the parser needed parentheses.
fn write_operand(f: &mut fmt::Formatter<'_>, condition: &Condition) -> fmt::Result {
    match condition {
        Condition::All(_) | Condition::Any(_) => write!(f, "({condition})"),
        Condition::Not(_) | Condition::Test(_) => write!(f, "{condition}"),
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.attribute)?;
        match &self.predicate {
            Predicate::Compare(op, literal) => write!(f, "{} {literal}", op.symbol()),
            Predicate::In(list) => write_list(f, "in", list),
            Predicate::NotIn(list) => write_list(f, "not in", list),
            Predicate::StartsWith(prefix) => {
                f.write_str("starts_with ")?;
                write_string(f, prefix)
            }
            Predicate::InList(list) => write!(f, "in @{}", list.as_str()),
            Predicate::NotInList(list) => write!(f, "not in @{}", list.as_str()),
        }
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, keyword: &str, list: &[Literal]) -> fmt::Result {
    write!(f, "{keyword} [")?;
    for (i, literal) in list.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{literal}")?;
    }
    f.write_str("]")
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Integer(n) => write_integer(f, *n),
            Literal::String(s) => write_string(f, s),
            Literal::Boolean(b) => write!(f, "{b}"),
        }
    }
}

/// `-1234`, `12_345`, `-9_223_372_036_854_775_808`.
fn write_integer(f: &mut fmt::Formatter<'_>, n: i64) -> fmt::Result {
    if n < 0 {
        f.write_str("-")?;
    }
    let digits = n.unsigned_abs().to_string();
    if digits.len() < 5 {
        return f.write_str(&digits);
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            f.write_str("_")?;
        }
        write!(f, "{digit}")?;
    }
    Ok(())
}

fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}
