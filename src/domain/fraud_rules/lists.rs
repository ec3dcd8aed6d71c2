//! Merchant-managed lists that rules refer to as `@name`
//! (`customer.email in @trusted_customers`), supplied at evaluation by a
//! [`Lists`] provider: a map, or the store behind a trait object.
//!
//! # An unknown list
//! A test against a list the provider does not know is **false**, for `in`
//! and `not in` alike, exactly as a test of an absent fact is (see the
//! module documentation of `fraud_rules`), and the explanation names the
//! list ([`super::Explanation::unknown_lists`]). Why: treating it as an
//! empty list would turn `block when customer.email not in @trusted` into
//! "block everyone" the moment a list is deleted or misnamed, and treating
//! it as full would turn `allow when … in @trusted` into "allow everyone";
//! false both ways means a missing list adds no verdict, which is the
//! behaviour a merchant already knows for missing facts. The service layer
//! should refuse to activate a set whose [`super::RuleSet::list_names`] do
//! not all exist, so an unknown list at evaluation is a race, not a habit.
//!
//! Values are compared exactly with the attribute's value as the context
//! supplies it (lower-case e-mail, canonical IP, …); whoever saves a list
//! writes its values in that form.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::BuildHasher;

use super::ast::ListName;

/// The merchant's lists, as evaluation sees them.
pub trait Lists {
    /// Whether list `list` holds `value`; `None` if there is no such list.
    fn contains(&self, list: &ListName, value: &str) -> Option<bool>;
}

/// No lists at all: every `@name` is unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoLists;

impl Lists for NoLists {
    fn contains(&self, _list: &ListName, _value: &str) -> Option<bool> {
        None
    }
}

impl Lists for BTreeMap<String, BTreeSet<String>> {
    fn contains(&self, list: &ListName, value: &str) -> Option<bool> {
        self.get(list.as_str()).map(|values| values.contains(value))
    }
}

impl<S: BuildHasher, T: BuildHasher> Lists for HashMap<String, HashSet<String, T>, S> {
    fn contains(&self, list: &ListName, value: &str) -> Option<bool> {
        self.get(list.as_str()).map(|values| values.contains(value))
    }
}
