//! The parser: tokens to a [`RuleSet`], with every type check and limit of
//! the language (recursive descent, one token of lookahead).
//!
//! Invariants: recursion is bounded: each `(` and each `not` is one level,
//! checked against [`MAX_DEPTH`] before descending, so no input, however
//! deep, can exhaust the stack. Every refusal is a [`RuleError`] at the token
//! at fault, quoting at most a short word ([`super::quote`]); numbers and
//! strings the merchant wrote are never echoed.
//!
//! ```text
//! rule_set  := (rule? NEWLINE)* rule? EOF
//! rule      := "rule" NAME ":" action "when" condition
//! action    := "block" | "challenge" | "review" | "allow" | "score" INT
//! condition := unary ("and" unary)* | unary ("or" unary)*
//! unary     := "not" unary | "(" condition ")" | test
//! test      := ATTR ("==" | "!=" | "<" | "<=" | ">" | ">=") literal
//!            | ATTR "not"? "in" "[" literal ("," literal)* ","? "]"
//!            | ATTR "not"? "in" "@" LIST_NAME        (string attributes)
//!            | ATTR "starts_with" STRING
//! ```

use std::collections::HashSet;

use super::ast::{Action, CmpOp, Condition, ListName, Literal, Predicate, Rule, RuleName, RuleSet, Test};
use super::attribute::{Attribute, ValueType};
use super::lexer::{Lexer, Tok, Token};
use super::{quote, RuleError, MAX_DEPTH, MAX_LIST_LEN, MAX_RULES, MAX_SCORE, MAX_TEXT_BYTES, MIN_SCORE};

pub(super) fn parse(text: &str) -> Result<RuleSet, RuleError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(RuleError::new(
            1,
            1,
            format!("a rule set is at most {MAX_TEXT_BYTES} bytes"),
        ));
    }
    let mut parser = Parser {
        lexer: Lexer::new(text),
        peeked: None,
    };
    let mut rules = Vec::new();
    let mut names = HashSet::new();
    loop {
        let token = parser.next()?;
        match token.tok {
            Tok::Newline => {}
            Tok::Eof => return Ok(RuleSet { rules }),
            Tok::Word("rule") if rules.len() < MAX_RULES => rules.push(parser.rule(&mut names)?),
            Tok::Word("rule") => return Err(error(&token, format!("a rule set holds at most {MAX_RULES} rules"))),
            _ => {
                return Err(error(
                    &token,
                    format!("expected `rule`, found {}", describe(&token.tok)),
                ))
            }
        }
    }
}

fn error(token: &Token, message: impl Into<String>) -> RuleError {
    RuleError::new(token.line, token.column, message)
}

/// A token as a message names it, quoting at most a short word.
fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Word(word) => format!("`{}`", quote(word)),
        Tok::Int(_) => "a number".to_owned(),
        Tok::Str(_) => "a string".to_owned(),
        Tok::ListRef(name) => format!("`@{}`", quote(name)),
        Tok::LParen => "`(`".to_owned(),
        Tok::RParen => "`)`".to_owned(),
        Tok::LBracket => "`[`".to_owned(),
        Tok::RBracket => "`]`".to_owned(),
        Tok::Comma => "`,`".to_owned(),
        Tok::Colon => "`:`".to_owned(),
        Tok::Cmp(op) => format!("`{}`", op.symbol()),
        Tok::Newline => "the end of the line".to_owned(),
        Tok::Eof => "the end of the text".to_owned(),
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token<'a>>,
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Result<Token<'a>, RuleError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.next_token(),
        }
    }

    fn peek(&mut self) -> Result<&Tok<'a>, RuleError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_token()?,
        };
        Ok(&self.peeked.insert(token).tok)
    }

    /// Takes the next token if it is `expected`, else says what was wanted.
    fn expect(&mut self, expected: &Tok, wanted: &str) -> Result<(), RuleError> {
        let token = self.next()?;
        if token.tok == *expected {
            Ok(())
        } else {
            Err(error(
                &token,
                format!("expected {wanted}, found {}", describe(&token.tok)),
            ))
        }
    }

    /// A rule after its `rule` keyword, up to and including its line end.
    fn rule(&mut self, names: &mut HashSet<&'a str>) -> Result<Rule, RuleError> {
        let token = self.next()?;
        let Tok::Word(word) = token.tok else {
            return Err(error(
                &token,
                format!("expected a rule name, found {}", describe(&token.tok)),
            ));
        };
        let name = RuleName::parse(word).map_err(|message| error(&token, message))?;
        if !names.insert(word) {
            return Err(error(&token, format!("duplicate rule name `{}`", quote(word))));
        }
        self.expect(&Tok::Colon, "`:` after the rule name")?;
        let action = self.action()?;
        self.expect(&Tok::Word("when"), "`when` after the action")?;
        let condition = self.condition(0)?;
        let end = self.next()?;
        if !matches!(end.tok, Tok::Newline | Tok::Eof) {
            return Err(error(
                &end,
                format!("expected the end of the rule, found {}", describe(&end.tok)),
            ));
        }
        Ok(Rule {
            name,
            action,
            condition,
        })
    }

    fn action(&mut self) -> Result<Action, RuleError> {
        let token = self.next()?;
        match token.tok {
            Tok::Word("block") => Ok(Action::Block),
            Tok::Word("challenge") => Ok(Action::Challenge),
            Tok::Word("review") => Ok(Action::Review),
            Tok::Word("allow") => Ok(Action::Allow),
            Tok::Word("score") => {
                let points = self.next()?;
                let out_of_range = || error(&points, format!("a score is from {MIN_SCORE} to {MAX_SCORE}"));
                match points.tok {
                    Tok::Int(n) => match i32::try_from(n) {
                        Ok(n) if (MIN_SCORE..=MAX_SCORE).contains(&n) => Ok(Action::Score(n)),
                        _ => Err(out_of_range()),
                    },
                    _ => Err(error(
                        &points,
                        format!("expected points after `score`, found {}", describe(&points.tok)),
                    )),
                }
            }
            _ => Err(error(
                &token,
                format!(
                    "expected an action (block, challenge, review, allow or score <n>), found {}",
                    describe(&token.tok)
                ),
            )),
        }
    }

    /// `unary (and unary)*` or `unary (or unary)*`, at `depth` levels of nesting.
    fn condition(&mut self, depth: usize) -> Result<Condition, RuleError> {
        let first = self.unary(depth)?;
        let joiner = match self.peek()? {
            Tok::Word(word @ ("and" | "or")) => *word,
            _ => return Ok(first),
        };
        let mut items = vec![first];
        loop {
            match self.peek()? {
                Tok::Word(word) if *word == joiner => {
                    self.next()?;
                    items.push(self.unary(depth)?);
                }
                Tok::Word("and" | "or") => {
                    let token = self.next()?;
                    return Err(error(
                        &token,
                        "`and` and `or` cannot be mixed without parentheses: write (a and b) or c",
                    ));
                }
                _ => break,
            }
        }
        Ok(if joiner == "and" {
            Condition::All(items)
        } else {
            Condition::Any(items)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Condition, RuleError> {
        let token = self.next()?;
        match token.tok {
            Tok::Word("not") => {
                let inner = self.unary(deeper(&token, depth)?)?;
                Ok(Condition::Not(Box::new(inner)))
            }
            Tok::LParen => {
                let inner = self.condition(deeper(&token, depth)?)?;
                self.expect(&Tok::RParen, "`)`")?;
                Ok(inner)
            }
            Tok::Word(word) => Ok(Condition::Test(self.test(&token, word)?)),
            _ => Err(error(
                &token,
                format!(
                    "expected a condition (an attribute, `not` or `(`), found {}",
                    describe(&token.tok)
                ),
            )),
        }
    }

    /// A test after its attribute word.
    fn test(&mut self, at: &Token, word: &str) -> Result<Test, RuleError> {
        let attribute =
            Attribute::from_name(word).ok_or_else(|| error(at, format!("unknown attribute `{}`", quote(word))))?;
        let name = attribute.name();
        let kind = attribute.value_type();
        let op = self.next()?;
        let misfit = |what: &str| {
            let allowed = match kind {
                ValueType::Integer => "==, !=, <, <=, >, >=, in or not in",
                ValueType::String => "==, !=, in, not in or starts_with",
                ValueType::Boolean => "== or !=",
            };
            error(
                &op,
                format!("`{name}` is {}: {what} does not apply (use {allowed})", kind.describe()),
            )
        };
        let predicate = match op.tok {
            Tok::Cmp(cmp) => {
                if kind != ValueType::Integer && !matches!(cmp, CmpOp::Eq | CmpOp::Ne) {
                    return Err(misfit(cmp.symbol()));
                }
                Predicate::Compare(cmp, self.literal(attribute)?)
            }
            Tok::Word("in") if kind != ValueType::Boolean => match self.list_ref(attribute)? {
                Some(list) => Predicate::InList(list),
                None => Predicate::In(self.list(attribute)?),
            },
            Tok::Word("not") if kind != ValueType::Boolean => {
                self.expect(&Tok::Word("in"), "`in` after `not`")?;
                match self.list_ref(attribute)? {
                    Some(list) => Predicate::NotInList(list),
                    None => Predicate::NotIn(self.list(attribute)?),
                }
            }
            Tok::Word("starts_with") if kind == ValueType::String => {
                let token = self.next()?;
                let Tok::Str(ref prefix) = token.tok else {
                    return Err(error(
                        &token,
                        format!("expected a string after starts_with, found {}", describe(&token.tok)),
                    ));
                };
                attribute
                    .check_prefix(prefix)
                    .map_err(|wanted| error(&token, format!("a `{name}` prefix is {wanted}")))?;
                Predicate::StartsWith(prefix.clone())
            }
            Tok::Word("not") => return Err(misfit("not in")),
            Tok::Word(op_word @ ("in" | "starts_with")) => return Err(misfit(op_word)),
            _ => {
                let found = describe(&op.tok);
                let wanted = "==, !=, <, <=, >, >=, in, not in, starts_with";
                return Err(error(
                    &op,
                    format!("expected a comparison after `{name}` ({wanted}), found {found}"),
                ));
            }
        };
        Ok(Test { attribute, predicate })
    }

    /// A literal of `attribute`'s type and form.
    fn literal(&mut self, attribute: Attribute) -> Result<Literal, RuleError> {
        let token = self.next()?;
        let literal = match token.tok {
            Tok::Int(n) => Literal::Integer(n),
            Tok::Str(ref s) => Literal::String(s.clone()),
            Tok::Word("true") => Literal::Boolean(true),
            Tok::Word("false") => Literal::Boolean(false),
            _ => {
                return Err(error(
                    &token,
                    format!(
                        "expected a value (a number, a string, true or false), found {}",
                        describe(&token.tok)
                    ),
                ))
            }
        };
        let name = attribute.name();
        let kind = attribute.value_type();
        if literal.value_type() != kind {
            let message = format!(
                "`{name}` is {}, not {}",
                kind.describe(),
                literal.value_type().describe()
            );
            return Err(error(&token, message));
        }
        if let Literal::String(s) = &literal {
            attribute
                .check_value(s)
                .map_err(|wanted| error(&token, format!("`{name}` takes {wanted}")))?;
        }
        Ok(literal)
    }

    /// `@name` after `in`, if that is what comes: a valid list name, tested
    /// by a string attribute (lists hold strings).
    fn list_ref(&mut self, attribute: Attribute) -> Result<Option<ListName>, RuleError> {
        if !matches!(self.peek()?, Tok::ListRef(_)) {
            return Ok(None);
        }
        let token = self.next()?;
        let Tok::ListRef(word) = token.tok else {
            return Ok(None);
        };
        let list = ListName::parse(word).map_err(|message| error(&token, message))?;
        if attribute.value_type() != ValueType::String {
            let name = attribute.name();
            let kind = attribute.value_type().describe();
            return Err(error(
                &token,
                format!("`{name}` is {kind}: a merchant list holds strings (write the values in [..])"),
            ));
        }
        Ok(Some(list))
    }

    /// `[literal, …]` with 1 to [`MAX_LIST_LEN`] literals, a trailing comma allowed.
    fn list(&mut self, attribute: Attribute) -> Result<Vec<Literal>, RuleError> {
        self.expect(&Tok::LBracket, "`[` to start a list")?;
        let mut items = Vec::new();
        loop {
            if *self.peek()? == Tok::RBracket {
                let token = self.next()?;
                if items.is_empty() {
                    return Err(error(&token, "a list needs at least one value"));
                }
                return Ok(items);
            }
            if items.len() == MAX_LIST_LEN {
                let token = self.next()?;
                return Err(error(&token, format!("a list holds at most {MAX_LIST_LEN} values")));
            }
            items.push(self.literal(attribute)?);
            let token = self.next()?;
            match token.tok {
                Tok::Comma => {}
                Tok::RBracket => return Ok(items),
                _ => {
                    return Err(error(
                        &token,
                        format!("expected `,` or `]` in the list, found {}", describe(&token.tok)),
                    ))
                }
            }
        }
    }
}

/// One level deeper than `depth`, if that is within [`MAX_DEPTH`].
fn deeper(at: &Token, depth: usize) -> Result<usize, RuleError> {
    if depth < MAX_DEPTH {
        Ok(depth + 1)
    } else {
        Err(error(
            at,
            format!("conditions nest at most {MAX_DEPTH} levels deep (each `(` and each `not` is a level)"),
        ))
    }
}
