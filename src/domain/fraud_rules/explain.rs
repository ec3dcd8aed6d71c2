//! [`Explanation`]: an [`Assessment`] together with the signal values the
//! rule set read and the lists it could not find, so every decision can be
//! stored on the payment and in the audit trail with what it was based on.
//!
//! Invariants: `signals` holds every attribute any rule of the set tests
//! (matched or not), each once, in [`Attribute::ALL`] order, with the value
//! the context supplied (or `None`), so replaying the set over the signals
//! gives the same decision. A value of the wrong type (a context bug) is
//! recorded as absent, as evaluation treats it.

use std::collections::BTreeSet;

use super::ast::{ListName, Literal, RuleSet};
use super::attribute::Attribute;
use super::eval::{Assessment, RiskContext, Thresholds, Value};
use super::lists::Lists;

/// One fact a rule set read, and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub attribute: Attribute,
    /// `None` when the fact was absent.
    pub value: Option<Literal>,
}

/// An assessment and what it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation<'r> {
    pub assessment: Assessment<'r>,
    pub signals: Vec<Signal>,
    /// Lists the rules refer to that the provider did not know; their tests
    /// were false (see [`super::Lists`]).
    pub unknown_lists: Vec<&'r ListName>,
}

impl RuleSet {
    /// Assesses one payment like [`RuleSet::evaluate_with_lists`] and
    /// explains it.
    pub fn explain<C: RiskContext + ?Sized, L: Lists + ?Sized>(
        &self,
        ctx: &C,
        lists: &L,
        thresholds: Thresholds,
    ) -> Explanation<'_> {
        let assessment = self.evaluate_with_lists(ctx, lists, thresholds);
        let mut attributes = BTreeSet::new();
        for rule in self.rules() {
            rule.condition().visit_tests(&mut |test| {
                attributes.insert(test.attribute());
            });
        }
        let signals = Attribute::ALL
            .into_iter()
            .filter(|a| attributes.contains(a))
            .map(|attribute| Signal {
                attribute,
                value: ctx
                    .value(attribute)
                    .filter(|v| v.value_type() == attribute.value_type())
                    .map(|v| match v {
                        Value::Integer(n) => Literal::Integer(n),
                        Value::String(s) => Literal::String(s.to_owned()),
                        Value::Boolean(b) => Literal::Boolean(b),
                    }),
            })
            .collect();
        let unknown_lists = self
            .list_names()
            .into_iter()
            .filter(|name| lists.contains(name, "").is_none())
            .collect();
        Explanation {
            assessment,
            signals,
            unknown_lists,
        }
    }
}
