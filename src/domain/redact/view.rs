//! The normalised view of free text that the redaction detectors read: every
//! character of the view remembers the bytes of the original it stands for,
//! so a match in the view is replaced in the original.
//!
//! Invariant: no `%XX` escape is left in the view (decoding is repeated until
//! none is), and the spans are in order, non-empty and on character
//! boundaries of the original.

use std::ops::Range;

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// One character of the normalised view and the bytes of the original text
/// it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Normalised {
    pub(super) c: char,
    pub(super) span: Range<usize>,
}

/// How `%XX` escapes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Escapes {
    /// Decoded, again and again (`%2541` is `A`).
    Decoded,
    /// Read as the characters they are (`%22` is `%`, `2`, `2`).
    Literal,
}

/// The view of `input` (see the documentation of [`super`]).
pub(super) fn normalise(input: &str, escapes: Escapes) -> Vec<Normalised> {
    let bytes = match escapes {
        Escapes::Decoded => percent_decoded(input),
        Escapes::Literal => input.bytes().enumerate().map(|(i, b)| (b, i..i + 1)).collect(),
    };
    let raw: Vec<u8> = bytes.iter().map(|(b, _)| *b).collect();
    let mut view = Vec::with_capacity(raw.len());
    let mut at = 0;
    for chunk in raw.utf8_chunks() {
        for (i, c) in chunk.valid().char_indices() {
            let first = bytes.get(at + i).map(|(_, s)| s.start);
            let last = bytes.get(at + i + c.len_utf8() - 1).map(|(_, s)| s.end);
            if let (Some(start), Some(end)) = (first, last) {
                push_folded(&mut view, c, start..end);
            }
        }
        at += chunk.valid().len();
        for _ in chunk.invalid() {
            if let Some((_, span)) = bytes.get(at) {
                view.push(Normalised {
                    c: char::REPLACEMENT_CHARACTER,
                    span: span.clone(),
                });
            }
            at += 1;
        }
    }
    view
}

/// The bytes of `input` with every `%XX` escape decoded, each with the range
/// of `input` it came from. An escape completed by decoding another one
/// (`%2541` → `%41` → `A`) is decoded too: after each byte the tail is reduced
/// for as long as it ends in an escape, so no escape is left at the end.
fn percent_decoded(input: &str) -> Vec<(u8, Range<usize>)> {
    let mut out: Vec<(u8, Range<usize>)> = Vec::with_capacity(input.len());
    for (i, b) in input.bytes().enumerate() {
        out.push((b, i..i + 1));
        while let Some(start) = out.len().checked_sub(3) {
            let Some([(b'%', first), (hi, _), (lo, last)]) = out.get(start..) else {
                break;
            };
            let (Some(hi), Some(lo)) = (hex_value(*hi), hex_value(*lo)) else {
                break;
            };
            let span = first.start..last.end;
            out.truncate(start);
            out.push(((hi << 4) | lo, span));
        }
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Appends `c`, folded, to the view: compatibility decomposition, lower case,
/// spaces and dashes unified, invisible characters and combining marks dropped.
fn push_folded(view: &mut Vec<Normalised>, c: char, span: Range<usize>) {
    decompose_compatible(c, |d| {
        if is_invisible(d) || is_combining_mark(d) {
            return;
        }
        let d = if d.is_whitespace() {
            ' '
        } else if is_dash(d) {
            '-'
        } else {
            d
        };
        for l in d.to_lowercase().filter(|l| !is_combining_mark(*l)) {
            view.push(Normalised {
                c: l,
                span: span.clone(),
            });
        }
    });
}

/// Characters that render as nothing: a reader never sees them split a number.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}')
}

/// Dash punctuation that NFKC leaves alone (hyphens, en and em dashes, minus).
fn is_dash(c: char) -> bool {
    matches!(
        c,
        '\u{2010}'..='\u{2015}' | '\u{2043}' | '\u{2212}' | '\u{2E3A}' | '\u{2E3B}' | '\u{30FC}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(s: &str) -> Vec<(char, Range<usize>)> {
        normalise(s, Escapes::Decoded)
            .into_iter()
            .map(|n| (n.c, n.span))
            .collect()
    }

    #[test]
    fn each_character_keeps_the_bytes_it_came_from() {
        // `%2541` is `%41` once decoded, then `A`; `Ｂ` is three bytes.
        assert_eq!(view("a%2541\u{FF22}"), vec![('a', 0..1), ('a', 1..6), ('b', 6..9)]);
        // A percent-encoded UTF-8 sequence is one character.
        assert_eq!(view("%EF%BC%94-"), vec![('4', 0..9), ('-', 9..10)]);
        // Invisible characters and combining marks vanish; spaces and dashes unify.
        assert_eq!(
            view("1\u{200B}\u{00A0}\u{2013}e\u{0301}"),
            vec![('1', 0..1), (' ', 4..6), ('-', 6..9), ('e', 9..10)]
        );
        // Not an escape: kept as it is; invalid UTF-8 after decoding is U+FFFD.
        assert_eq!(view("%zz%"), vec![('%', 0..1), ('z', 1..2), ('z', 2..3), ('%', 3..4)]);
        assert_eq!(view("%FFx"), vec![(char::REPLACEMENT_CHARACTER, 0..3), ('x', 3..4)]);
        // Read literally, an escape is its three characters.
        let literal: Vec<char> = normalise("%22", Escapes::Literal).into_iter().map(|n| n.c).collect();
        assert_eq!(literal, ['%', '2', '2']);
    }
}
