//! Evaluation: a [`RuleSet`] against the facts of one payment, supplied by a
//! [`RiskContext`], giving an [`Assessment`]: the explainable risk score.
//!
//! How an assessment is made:
//! - Every rule whose condition holds is listed in `matched`, in rule order.
//! - `points` is the saturating sum of the matching `score` rules; `score` is
//!   `points` clamped to `0..=100`, so negative rules offset positive ones
//!   but no sum leaves the range.
//! - The score gives a decision with the caller's [`Thresholds`]: `block`
//!   from `block_at`, `review` from `review_at`, `allow` below. The strongest
//!   verdict of a matching rule (by precedence: `block`, `challenge`,
//!   `review`, `allow`; the first rule with it) replaces that decision only
//!   if it is at least as strong: a matching `review` never lets a blocking
//!   score through. `allow` is the one exception, an allow-list: it overrides
//!   the score (never a stronger verdict, which would have won instead).
//!
//! Invariants: a test of an absent fact, or of a value of the wrong type
//! (a context bug), is false whatever its operator; so is a test against a
//! list the [`super::Lists`] does not know; `not` is plain negation.
//! Evaluation never panics, recurses no deeper than the parser allowed
//! ([`super::MAX_DEPTH`]), and allocates only the `matched` list; names in
//! the assessment borrow from the rule set.

use std::cmp::Ordering;

use super::ast::{Action, Condition, Literal, Predicate, RuleName, RuleSet, Test};
use super::attribute::{Attribute, ValueType};
use super::lists::{Lists, NoLists};

/// A fact's value as a context supplies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Integer(i64),
    String(&'a str),
    Boolean(bool),
}

impl Value<'_> {
    pub fn value_type(self) -> ValueType {
        match self {
            Value::Integer(_) => ValueType::Integer,
            Value::String(_) => ValueType::String,
            Value::Boolean(_) => ValueType::Boolean,
        }
    }
}

/// The facts of a payment that rules test.
pub trait RiskContext {
    /// The value of `attribute`, in the form [`Attribute`] documents, or
    /// `None` if it is not known. A value whose type is not
    /// `attribute.value_type()` counts as absent.
    fn value(&self, attribute: Attribute) -> Option<Value<'_>>;
}

/// Counts over the last hour and over the last 24 hours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub last_1h: i64,
    pub last_24h: i64,
}

/// What the gateway counted about the payment's IP address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpVelocity {
    pub payments: Window,
    pub declines: Window,
    pub distinct_cards: Window,
}

/// The velocity facts: the payments the merchant (in this mode) saw earlier
/// with the same card, IP address and e-mail address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Velocity {
    pub card_payments: Window,
    pub card_declines: Window,
    /// `None` when the payment names no customer IP.
    pub ip: Option<IpVelocity>,
    /// `None` when the payment names no customer e-mail address.
    pub email_payments: Option<Window>,
}

/// A plain [`RiskContext`]: one optional field per attribute (the velocity
/// counts together: the gateway knows all of them or none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RiskFacts<'a> {
    pub amount: Option<i64>,
    pub currency: Option<&'a str>,
    pub capture_method: Option<&'a str>,
    pub card_brand: Option<&'a str>,
    pub card_bin: Option<&'a str>,
    pub card_last4: Option<&'a str>,
    pub card_funding: Option<&'a str>,
    pub card_country: Option<&'a str>,
    pub card_first_use: Option<bool>,
    pub customer_ip_country: Option<&'a str>,
    pub customer_email_domain: Option<&'a str>,
    pub customer_email: Option<&'a str>,
    pub customer_ip: Option<&'a str>,
    pub is_livemode: Option<bool>,
    pub amount_vs_usual_pct: Option<i64>,
    pub velocity: Option<Velocity>,
}

impl RiskFacts<'_> {
    fn velocity(&self, attribute: Attribute) -> Option<i64> {
        let v = self.velocity.as_ref()?;
        let ip = v.ip.as_ref();
        Some(match attribute {
            Attribute::VelocityCardPayments1h => v.card_payments.last_1h,
            Attribute::VelocityCardPayments24h => v.card_payments.last_24h,
            Attribute::VelocityCardDeclines1h => v.card_declines.last_1h,
            Attribute::VelocityCardDeclines24h => v.card_declines.last_24h,
            Attribute::VelocityIpPayments1h => ip?.payments.last_1h,
            Attribute::VelocityIpPayments24h => ip?.payments.last_24h,
            Attribute::VelocityIpDeclines1h => ip?.declines.last_1h,
            Attribute::VelocityIpDeclines24h => ip?.declines.last_24h,
            Attribute::VelocityIpDistinctCards1h => ip?.distinct_cards.last_1h,
            Attribute::VelocityIpDistinctCards24h => ip?.distinct_cards.last_24h,
            Attribute::VelocityEmailPayments1h => v.email_payments?.last_1h,
            Attribute::VelocityEmailPayments24h => v.email_payments?.last_24h,
            _ => return None,
        })
    }
}

impl RiskContext for RiskFacts<'_> {
    fn value(&self, attribute: Attribute) -> Option<Value<'_>> {
        match attribute {
            Attribute::Amount => self.amount.map(Value::Integer),
            Attribute::Currency => self.currency.map(Value::String),
            Attribute::CaptureMethod => self.capture_method.map(Value::String),
            Attribute::CardBrand => self.card_brand.map(Value::String),
            Attribute::CardBin => self.card_bin.map(Value::String),
            Attribute::CardLast4 => self.card_last4.map(Value::String),
            Attribute::CardFunding => self.card_funding.map(Value::String),
            Attribute::CardCountry => self.card_country.map(Value::String),
            Attribute::CardFirstUse => self.card_first_use.map(Value::Boolean),
            Attribute::CustomerIpCountry => self.customer_ip_country.map(Value::String),
            Attribute::CustomerEmailDomain => self.customer_email_domain.map(Value::String),
            Attribute::CustomerEmail => self.customer_email.map(Value::String),
            Attribute::CustomerIp => self.customer_ip.map(Value::String),
            Attribute::IsLivemode => self.is_livemode.map(Value::Boolean),
            Attribute::AmountVsUsualPct => self.amount_vs_usual_pct.map(Value::Integer),
            Attribute::VelocityCardPayments1h
            | Attribute::VelocityCardPayments24h
            | Attribute::VelocityCardDeclines1h
            | Attribute::VelocityCardDeclines24h
            | Attribute::VelocityIpPayments1h
            | Attribute::VelocityIpPayments24h
            | Attribute::VelocityIpDeclines1h
            | Attribute::VelocityIpDeclines24h
            | Attribute::VelocityIpDistinctCards1h
            | Attribute::VelocityIpDistinctCards24h
            | Attribute::VelocityEmailPayments1h
            | Attribute::VelocityEmailPayments24h => self.velocity(attribute).map(Value::Integer),
        }
    }
}

/// What to do with a payment, weakest first (the derived order is strength).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decision {
    Allow,
    Review,
    /// Ask for 3-D Secure.
    Challenge,
    Block,
}

impl Action {
    /// The decision this action demands, if it is a verdict (not `score`).
    pub fn verdict(self) -> Option<Decision> {
        match self {
            Action::Block => Some(Decision::Block),
            Action::Challenge => Some(Decision::Challenge),
            Action::Review => Some(Decision::Review),
            Action::Allow => Some(Decision::Allow),
            Action::Score(_) => None,
        }
    }
}

/// The scores at which the score alone reviews or blocks a payment:
/// `1 <= review_at <= block_at <= 100`, so a score of 0 always allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    review_at: u8,
    block_at: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("thresholds must satisfy 1 <= review_at <= block_at <= 100")]
pub struct InvalidThresholds;

impl Thresholds {
    pub fn new(review_at: u8, block_at: u8) -> Result<Self, InvalidThresholds> {
        if 1 <= review_at && review_at <= block_at && block_at <= 100 {
            Ok(Self { review_at, block_at })
        } else {
            Err(InvalidThresholds)
        }
    }

    pub fn review_at(self) -> u8 {
        self.review_at
    }

    pub fn block_at(self) -> u8 {
        self.block_at
    }

    /// The decision a score alone leads to.
    pub fn decide(self, score: u8) -> Decision {
        if score >= self.block_at {
            Decision::Block
        } else if score >= self.review_at {
            Decision::Review
        } else {
            Decision::Allow
        }
    }
}

/// A rule whose condition held, and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched<'r> {
    pub rule: &'r RuleName,
    pub action: Action,
}

/// Where a decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy<'r> {
    /// The first matching rule with the strongest verdict.
    Rule(&'r RuleName),
    /// The score and the thresholds: no verdict rule matched, or only a
    /// weaker one than the score's decision (other than `allow`).
    Score,
}

/// The outcome of a rule set for one payment, with its reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment<'r> {
    pub decision: Decision,
    pub decided_by: DecidedBy<'r>,
    /// `points` clamped to `0..=100`.
    pub score: u8,
    /// The saturating sum of the points of the matching `score` rules.
    pub points: i64,
    /// Every rule whose condition held, in rule order.
    pub matched: Vec<Matched<'r>>,
}

impl RuleSet {
    /// Assesses one payment with no merchant lists (every `@list` is
    /// unknown: see [`super::Lists`]); see the module documentation of `eval`.
    pub fn evaluate<C: RiskContext + ?Sized>(&self, ctx: &C, thresholds: Thresholds) -> Assessment<'_> {
        self.assess(ctx, &NoLists, thresholds)
    }

    /// Assesses one payment, `@list` references answered by `lists`.
    pub fn evaluate_with_lists<C: RiskContext + ?Sized, L: Lists + ?Sized>(
        &self,
        ctx: &C,
        lists: &L,
        thresholds: Thresholds,
    ) -> Assessment<'_> {
        self.assess(ctx, lists, thresholds)
    }

    fn assess<C: RiskContext + ?Sized, L: Lists + ?Sized>(
        &self,
        ctx: &C,
        lists: &L,
        thresholds: Thresholds,
    ) -> Assessment<'_> {
        let mut matched = Vec::new();
        let mut points: i64 = 0;
        let mut strongest: Option<(Decision, &RuleName)> = None;
        for rule in &self.rules {
            if !holds(&rule.condition, ctx, lists) {
                continue;
            }
            matched.push(Matched {
                rule: &rule.name,
                action: rule.action,
            });
            match rule.action.verdict() {
                Some(verdict) => {
                    if strongest.is_none_or(|(best, _)| verdict > best) {
                        strongest = Some((verdict, &rule.name));
                    }
                }
                None => {
                    if let Action::Score(n) = rule.action {
                        points = points.saturating_add(i64::from(n));
                    }
                }
            }
        }
        let score = u8::try_from(points.clamp(0, 100)).unwrap_or(100);
        let by_score = thresholds.decide(score);
        let (decision, decided_by) = match strongest {
            // An `allow` rule is an allowlist: it overrides the score (never a
            // stronger verdict, which would be `strongest` instead).
            Some((Decision::Allow, name)) => (Decision::Allow, DecidedBy::Rule(name)),
            // `review`, `challenge` and `block` only ever strengthen the
            // decision: a matching `review` does not let a blocking score through.
            Some((verdict, name)) if verdict >= by_score => (verdict, DecidedBy::Rule(name)),
            Some(_) | None => (by_score, DecidedBy::Score),
        };
        Assessment {
            decision,
            decided_by,
            score,
            points,
            matched,
        }
    }
}

/// Whether `condition` holds; recursion depth is the tree's, bounded by the parser.
fn holds<C: RiskContext + ?Sized, L: Lists + ?Sized>(condition: &Condition, ctx: &C, lists: &L) -> bool {
    match condition {
        Condition::All(items) => items.iter().all(|item| holds(item, ctx, lists)),
        Condition::Any(items) => items.iter().any(|item| holds(item, ctx, lists)),
        Condition::Not(inner) => !holds(inner, ctx, lists),
        Condition::Test(test) => test_holds(test, ctx, lists),
    }
}

fn test_holds<C: RiskContext + ?Sized, L: Lists + ?Sized>(test: &Test, ctx: &C, lists: &L) -> bool {
    let Some(value) = ctx.value(test.attribute) else {
        return false;
    };
    if value.value_type() != test.attribute.value_type() {
        return false;
    }
    let equal = |literal: &Literal| compare(value, literal) == Some(Ordering::Equal);
    match &test.predicate {
        Predicate::Compare(op, literal) => compare(value, literal).is_some_and(|order| op.holds(order)),
        Predicate::In(list) => list.iter().any(equal),
        Predicate::NotIn(list) => !list.iter().any(equal),
        Predicate::StartsWith(prefix) => matches!(value, Value::String(s) if s.starts_with(prefix.as_str())),
        // An unknown list makes the test false either way, like an absent fact.
        Predicate::InList(list) => matches!(value, Value::String(s) if lists.contains(list, s) == Some(true)),
        Predicate::NotInList(list) => matches!(value, Value::String(s) if lists.contains(list, s) == Some(false)),
    }
}

/// How `value` orders against `literal`; `None` if their types differ.
fn compare(value: Value<'_>, literal: &Literal) -> Option<Ordering> {
    match (value, literal) {
        (Value::Integer(v), Literal::Integer(l)) => Some(v.cmp(l)),
        (Value::String(v), Literal::String(l)) => Some(v.cmp(l.as_str())),
        (Value::Boolean(v), Literal::Boolean(l)) => Some(v.cmp(l)),
        _ => None,
    }
}
