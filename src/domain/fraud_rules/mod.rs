//! The fraud rules language: rules a merchant writes as text, parsed once
//! into a typed [`RuleSet`] and evaluated against the facts of a payment
//! before authorization, giving an explainable [`Assessment`].
//!
//! Invariants: a `RuleSet` exists only if its text parsed, so every rule in
//! it is uniquely named, type-correct and within every limit below. Parsing
//! any text never panics and never recurses more than [`MAX_DEPTH`] levels;
//! printing a set (`Display`) and parsing the print gives back an equal set.
//! A [`RuleError`] names the line and column at fault and quotes at most a
//! short word of the input, never a string or number the merchant wrote.
//!
//! # The language
//!
//! ```text
//! # a comment runs to the end of the line
//! rule big_prepaid : block when amount > 100_000 and card.funding == "prepaid"
//! rule far_away    : score 40 when not (customer.ip_country in ["us", "ca"])
//! rule test_bins   : allow when card.bin starts_with "424242" and is_livemode == false
//! rule regulars    : allow when customer.email in @trusted_customers
//! ```
//!
//! - A rule is `rule <name> : <action> when <condition>`, ended by a newline
//!   (newlines inside `( )` and `[ ]` are spaces, so a long rule may span
//!   lines). Names are `[a-z][a-z0-9_]{0,63}`, unique within the set.
//! - Actions: `block`, `challenge` (ask for 3-D Secure), `review`, `allow`,
//!   `score <n>` with `n` in `-1000..=1000`.
//! - Conditions: `and`, `or`, `not` and parentheses. `and` and `or` never mix
//!   without parentheses (`a or b and c` is an error), since misread
//!   precedence in a fraud rule is a silent hole. `not` binds tightest.
//! - Tests: `<attribute> <op> <literal>` with `==` `!=` (every type) and `<`
//!   `<=` `>` `>=` (integers); `<attribute> in [..]` and `not in [..]`
//!   (integers and strings, 1 to [`MAX_LIST_LEN`] literals, a trailing comma
//!   allowed); `<attribute> starts_with "<prefix>"` (strings).
//! - Lists: `<attribute> in @<list>` and `not in @<list>` test a string
//!   attribute against a list the merchant manages (`@trusted_customers`;
//!   names like rule names). The values come at evaluation from a [`Lists`]
//!   provider; a list it does not know makes the test false (see `lists`).
//! - Literals: integers (`i64`, `_` between digits, no decimals), strings in
//!   double quotes (escapes `\"` and `\\` only, no control character), `true`
//!   and `false`. A literal must have the attribute's type and the form its
//!   values take ([`Attribute`]): `currency == "USD"` is an error, because the
//!   context supplies `"usd"` and the rule would silently never match.
//!
//! # Missing facts
//!
//! Any fact may be absent ([`RiskContext::value`] returns `None`). A test of
//! an absent fact is false, whatever its operator: `!=` and `not in`
//! included. `not` is plain negation, so `not (currency == "usd")` is true
//! when the currency is absent while `currency != "usd"` is false: a merchant
//! chooses whether absence matches by which one they write.
//!
//! # Layout
//! - `attribute`: [`Attribute`], the fixed typed facts, and the form of value
//!   each takes.
//! - `ast`: the syntax tree: [`RuleSet`], [`Rule`], [`Condition`], [`Test`].
//! - `lexer`: text to positioned tokens; rejects invisible characters.
//! - `parser`: tokens to a `RuleSet`: grammar, type checks, limits.
//! - `print`: the canonical text of a set (`Display`).
//! - `eval`: [`RiskContext`], [`Thresholds`] and the [`Assessment`].
//! - `lists`: [`Lists`], the merchant's lists, and what an unknown one does.
//! - `explain`: [`Explanation`]: the assessment with the signal values read.

mod ast;
mod attribute;
mod eval;
mod explain;
mod lexer;
mod lists;
mod parser;
mod print;
#[cfg(test)]
mod tests;

pub use ast::{Action, CmpOp, Condition, ListName, Literal, Predicate, Rule, RuleName, RuleSet, Test};
pub use attribute::{Attribute, ValueType, FUNDING_TYPES};
pub use eval::{
    Assessment, DecidedBy, Decision, InvalidThresholds, IpVelocity, Matched, RiskContext, RiskFacts, Thresholds, Value,
    Velocity, Window,
};
pub use explain::{Explanation, Signal};
pub use lists::{Lists, NoLists};

/// The longest rule-set text, in bytes.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// The most rules in one set.
pub const MAX_RULES: usize = 200;
/// How deep `(` and `not` may nest in one condition; each is one level.
pub const MAX_DEPTH: usize = 32;
/// The most literals in one `in [..]` list.
pub const MAX_LIST_LEN: usize = 100;
/// The longest string literal, in bytes once its escapes are read.
pub const MAX_STRING_BYTES: usize = 256;
/// The longest rule name, in characters (all ASCII).
pub const MAX_NAME_CHARS: usize = 64;
/// The bounds of `score <n>`.
pub const MIN_SCORE: i32 = -1000;
pub const MAX_SCORE: i32 = 1000;
/// How much of a word of the input an error message may quote.
const MAX_QUOTE_CHARS: usize = 24;

/// Why a rule-set text was refused: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct RuleError {
    line: usize,
    column: usize,
    message: String,
}

impl RuleError {
    fn new(line: usize, column: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            column,
            message: message.into(),
        }
    }

    /// The 1-based line of the fault.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The 1-based column of the fault, in characters.
    pub fn column(&self) -> usize {
        self.column
    }

    /// What was wrong, without the position.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A word of the input as an error may show it: at most
/// [`MAX_QUOTE_CHARS`] characters, anything but ASCII graphics escaped.
fn quote(word: &str) -> String {
    let mut shown: String = word
        .chars()
        .take(MAX_QUOTE_CHARS)
        .flat_map(char::escape_default)
        .collect();
    if word.chars().nth(MAX_QUOTE_CHARS).is_some() {
        shown.push('…');
    }
    shown
}

impl RuleSet {
    /// Parses a rule-set text; see the module documentation for the grammar.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        parser::parse(text)
    }
}
