//! The lexer: rule-set text to tokens, each with the line and column (in
//! characters, 1-based) where it starts.
//!
//! Invariants: it never panics and reads each character once. Outside string
//! literals it accepts only ASCII; nowhere, comments included, does it accept
//! a control character other than tab and the newline (CR only right before
//! LF) or an invisible direction character, so the text a reviewer sees is
//! the text that runs. Newlines inside `( )` and `[ ]` are spaces, so a long
//! condition can span lines; the parser sees a `Newline` only between rules.

use super::ast::CmpOp;
use super::{RuleError, MAX_STRING_BYTES};
use crate::domain::merchant::is_bidi_control;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok<'a> {
    /// A keyword, attribute or name: `[A-Za-z_][A-Za-z0-9_.]*`.
    Word(&'a str),
    Int(i64),
    /// A string literal with its escapes read.
    Str(String),
    /// `@name`: a list reference, the name as written (checked by the parser).
    ListRef(&'a str),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Colon,
    Cmp(CmpOp),
    Newline,
    /// The end of the text; returned again on every later call.
    Eof,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token<'a> {
    pub(super) tok: Tok<'a>,
    pub(super) line: usize,
    pub(super) column: usize,
}

pub(super) struct Lexer<'a> {
    src: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    line: usize,
    column: usize,
    /// `(` and `[` not yet closed; newlines inside them are spaces. Unbalanced
    /// brackets are the parser's to report, so this only saturates.
    open: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Self {
            src,
            pos: 0,
            line: 1,
            column: 1,
            open: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.src.get(self.pos..)?.chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.src.get(self.pos..)?.chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn error(&self, line: usize, column: usize, message: impl Into<String>) -> RuleError {
        RuleError::new(line, column, message)
    }

    /// The next token, skipping spaces, comments and bracketed newlines.
    pub(super) fn next_token(&mut self) -> Result<Token<'a>, RuleError> {
        loop {
            let (line, column) = (self.line, self.column);
            let token = |tok| Ok(Token { tok, line, column });
            let Some(c) = self.peek() else {
                return token(Tok::Eof);
            };
            match c {
                ' ' | '\t' => {
                    self.bump();
                }
                '\r' if self.peek_second() == Some('\n') => {
                    self.bump();
                }
                '\n' => {
                    self.bump();
                    if self.open == 0 {
                        return token(Tok::Newline);
                    }
                }
                '#' => self.comment()?,
                _ => {
                    let tok = self.token(c, line, column)?;
                    return token(tok);
                }
            }
        }
    }

    /// Skips a comment up to (not including) its newline.
    fn comment(&mut self) -> Result<(), RuleError> {
        while let Some(c) = self.peek() {
            if c == '\n' || (c == '\r' && self.peek_second() == Some('\n')) {
                break;
            }
            if invisible(c) {
                return Err(self.error(
                    self.line,
                    self.column,
                    format!("{} is not allowed, even in a comment", name(c)),
                ));
            }
            self.bump();
        }
        Ok(())
    }

    fn token(&mut self, c: char, line: usize, column: usize) -> Result<Tok<'a>, RuleError> {
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            ',' => Some(Tok::Comma),
            ':' => Some(Tok::Colon),
            _ => None,
        };
        if let Some(tok) = single {
            self.bump();
            match tok {
                Tok::LParen | Tok::LBracket => self.open = self.open.saturating_add(1),
                Tok::RParen | Tok::RBracket => self.open = self.open.saturating_sub(1),
                _ => {}
            }
            return Ok(tok);
        }
        match c {
            '=' | '!' | '<' | '>' => self.operator(c, line, column),
            '"' => self.string(line, column),
            '-' | '0'..='9' => self.number(line, column),
            'a'..='z' | 'A'..='Z' | '_' => Ok(self.word()),
            '@' => self.list_ref(line, column),
            _ => Err(self.error(line, column, format!("unexpected {}", name(c)))),
        }
    }

    fn operator(&mut self, c: char, line: usize, column: usize) -> Result<Tok<'a>, RuleError> {
        self.bump();
        let equals = self.peek() == Some('=');
        if equals {
            self.bump();
        }
        let op = match (c, equals) {
            ('=', true) => CmpOp::Eq,
            ('!', true) => CmpOp::Ne,
            ('<', false) => CmpOp::Lt,
            ('<', true) => CmpOp::Le,
            ('>', false) => CmpOp::Gt,
            ('>', true) => CmpOp::Ge,
            ('=', false) => return Err(self.error(line, column, "unexpected '=': compare with ==")),
            _ => return Err(self.error(line, column, "unexpected '!': negate with not, or compare with !=")),
        };
        Ok(Tok::Cmp(op))
    }

    fn word(&mut self) -> Tok<'a> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            self.bump();
        }
        Tok::Word(self.src.get(start..self.pos).unwrap_or_default())
    }

    /// `@` and the word after it; a bare `@` is an error at the `@`.
    fn list_ref(&mut self, line: usize, column: usize) -> Result<Tok<'a>, RuleError> {
        self.bump();
        match self.word() {
            Tok::Word(name) if !name.is_empty() => Ok(Tok::ListRef(name)),
            // A bare `@` reads as any stray character does.
            _ => Err(self.error(line, column, "unexpected '@'")),
        }
    }

    /// An `i64`, optionally negative, with `_` allowed between digits.
    fn number(&mut self, line: usize, column: usize) -> Result<Tok<'a>, RuleError> {
        let negative = self.peek() == Some('-');
        if negative {
            self.bump();
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.error(line, column, "unexpected '-': a minus sign goes right before digits"));
            }
        }
        let mut value: i64 = 0;
        while let Some(c) = self.peek() {
            if let Some(digit) = c.to_digit(10) {
                let digit = i64::from(digit);
                let shifted = value.checked_mul(10);
                let next = if negative {
                    shifted.and_then(|v| v.checked_sub(digit))
                } else {
                    shifted.and_then(|v| v.checked_add(digit))
                };
                value = match next {
                    Some(v) => v,
                    None => return Err(self.error(line, column, "integer out of range (a 64-bit signed integer)")),
                };
                self.bump();
            } else if c == '_' {
                self.bump();
                if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return Err(self.error(line, column, "invalid number: _ goes only between digits"));
                }
            } else {
                break;
            }
        }
        match self.peek() {
            Some('.') => Err(self.error(
                line,
                column,
                "invalid number: numbers are whole, without a decimal point",
            )),
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                Err(self.error(line, column, "invalid number: digits run into letters"))
            }
            _ => Ok(Tok::Int(value)),
        }
    }

    /// A double-quoted string; `\"` and `\\` are its only escapes.
    fn string(&mut self, line: usize, column: usize) -> Result<Tok<'a>, RuleError> {
        self.bump();
        let mut text = String::new();
        loop {
            let (at_line, at_column) = (self.line, self.column);
            match self.bump() {
                None | Some('\n') => return Err(self.error(line, column, "unterminated string")),
                Some('"') => return Ok(Tok::Str(text)),
                Some('\\') => match self.bump() {
                    Some(c @ ('"' | '\\')) => text.push(c),
                    _ => {
                        return Err(self.error(at_line, at_column, r#"unknown escape: strings allow only \" and \\"#));
                    }
                },
                Some(c) if c.is_control() || is_bidi_control(c) => {
                    return Err(self.error(at_line, at_column, format!("{} is not allowed in a string", name(c))));
                }
                Some(c) => text.push(c),
            }
            if text.len() > MAX_STRING_BYTES {
                return Err(self.error(line, column, format!("a string is at most {MAX_STRING_BYTES} bytes")));
            }
        }
    }
}

/// Characters that could hide or reorder what a reader sees; a string
/// literal refuses tab too.
fn invisible(c: char) -> bool {
    (c.is_control() && c != '\t') || is_bidi_control(c)
}

/// A character as an error shows it: `'x'` if printable ASCII, else `U+XXXX`.
fn name(c: char) -> String {
    if c.is_ascii_graphic() {
        format!("'{c}'")
    } else {
        format!("character U+{:04X}", u32::from(c))
    }
}
