//! The syntax tree of a rule set: [`RuleSet`] → [`Rule`] → [`Condition`] →
//! [`Test`].
//!
//! Invariants: only the parser builds a `RuleSet` or a `Rule` (their fields
//! are private), so every tree reachable from one holds what the parser
//! checked: `All` and `Any` have two or more children, a test's literals have
//! its attribute's type and form, ordering operators only test integers,
//! `starts_with` only strings, and nesting stays within [`super::MAX_DEPTH`],
//! which bounds every recursion over the tree (evaluation, printing, drop).
//! `PartialEq` compares structure, so `parse(print(set)) == set` is testable.

use super::attribute::{Attribute, ValueType};
use super::MAX_NAME_CHARS;

/// A parsed rule set: its rules in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    pub(super) rules: Vec<Rule>,
}

impl RuleSet {
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// `rule <name> : <action> when <condition>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub(super) name: RuleName,
    pub(super) action: Action,
    pub(super) condition: Condition,
}

impl Rule {
    pub fn name(&self) -> &RuleName {
        &self.name
    }

    pub fn action(&self) -> Action {
        self.action
    }

    pub fn condition(&self) -> &Condition {
        &self.condition
    }
}

/// A rule's name: `[a-z][a-z0-9_]{0,63}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleName(String);

impl RuleName {
    /// Accepts exactly `[a-z][a-z0-9_]{0,63}`; the error says what a name is.
    pub fn parse(name: &str) -> Result<Self, String> {
        let mut bytes = name.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
        let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if first_ok && rest_ok && name.len() <= MAX_NAME_CHARS {
            Ok(Self(name.to_owned()))
        } else {
            Err(format!(
                "a rule name is 1 to {MAX_NAME_CHARS} characters: a lower-case letter, then lower-case letters, digits or _"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a merchant-managed list, written `@name` in a rule: like a
/// rule name, `[a-z][a-z0-9_]{0,63}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListName(String);

impl ListName {
    /// Accepts exactly `[a-z][a-z0-9_]{0,63}`; the error says what a name is.
    pub fn parse(name: &str) -> Result<Self, String> {
        RuleName::parse(name).map(|n| Self(n.0)).map_err(|_| {
            format!(
                "a list name is 1 to {MAX_NAME_CHARS} characters after @: a lower-case letter, then lower-case letters, digits or _"
            )
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl RuleSet {
    /// Every list the set refers to, each once, by name: what must exist
    /// before the set is activated.
    pub fn list_names(&self) -> std::collections::BTreeSet<&ListName> {
        let mut names = std::collections::BTreeSet::new();
        for rule in &self.rules {
            rule.condition.visit_tests(&mut |test| {
                if let Predicate::InList(name) | Predicate::NotInList(name) = &test.predicate {
                    names.insert(name);
                }
            });
        }
        names
    }
}

impl Condition {
    /// Calls `f` on every test, in the order written; recursion is the
    /// tree's depth, bounded by the parser.
    pub fn visit_tests<'c>(&'c self, f: &mut impl FnMut(&'c Test)) {
        match self {
            Condition::All(items) | Condition::Any(items) => items.iter().for_each(|c| c.visit_tests(f)),
            Condition::Not(inner) => inner.visit_tests(f),
            Condition::Test(test) => f(test),
        }
    }
}

/// What a rule does when its condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Block,
    /// Ask for 3-D Secure.
    Challenge,
    Review,
    Allow,
    /// Add this many points (from [`super::MIN_SCORE`] to [`super::MAX_SCORE`]) to the risk score.
    Score(i32),
}

/// A boolean expression over tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `a and b and …`: two or more.
    All(Vec<Condition>),
    /// `a or b or …`: two or more.
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Test(Test),
}

/// One attribute tested against literals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test {
    pub(super) attribute: Attribute,
    pub(super) predicate: Predicate,
}

impl Test {
    pub fn attribute(&self) -> Attribute {
        self.attribute
    }

    pub fn predicate(&self) -> &Predicate {
        &self.predicate
    }
}

/// What a test asks of its attribute's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    Compare(CmpOp, Literal),
    /// `in [..]`: equal to one of 1 to [`super::MAX_LIST_LEN`] literals.
    In(Vec<Literal>),
    /// `not in [..]`: present and equal to none of them.
    NotIn(Vec<Literal>),
    /// `starts_with "…"`: a non-empty prefix of a string.
    StartsWith(String),
    /// `in @name`: a string in the merchant's list `name`.
    InList(ListName),
    /// `not in @name`: a string not in the merchant's list `name`.
    NotInList(ListName),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Whether `value <op> literal`, given how the two order.
    pub fn holds(self, value_vs_literal: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            CmpOp::Eq => value_vs_literal == Equal,
            CmpOp::Ne => value_vs_literal != Equal,
            CmpOp::Lt => value_vs_literal == Less,
            CmpOp::Le => value_vs_literal != Greater,
            CmpOp::Gt => value_vs_literal == Greater,
            CmpOp::Ge => value_vs_literal != Less,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    Integer(i64),
    String(String),
    Boolean(bool),
}

impl Literal {
    pub fn value_type(&self) -> ValueType {
        match self {
            Literal::Integer(_) => ValueType::Integer,
            Literal::String(_) => ValueType::String,
            Literal::Boolean(_) => ValueType::Boolean,
        }
    }
}
