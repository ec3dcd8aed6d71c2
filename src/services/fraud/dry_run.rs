//! The dry run of a candidate rule set: it is parsed and checked as a save
//! would, then replayed over the tenant's recent confirmed payments (at most
//! [`DRY_RUN_PAYMENTS`], created in the last [`DRY_RUN_WINDOW`]), with the
//! tenant's current lists and the facts each payment has now, and compared
//! with the decision each payment got. Nothing is stored; the request's own
//! audit entry records that it ran.

use std::collections::HashMap;
use std::time::Duration;

use crate::domain::fraud_rules::{Decision, RuleSet, Thresholds};
use crate::domain::ids::PaymentId;
use crate::domain::payment::{ListFilter, PaymentStatus};
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::card_tokens::TokenRow;
use crate::store::ports::{Commit, FraudStore, PaymentStore, TokenStore};

use super::facts::{CardFacts, PaymentFacts};
use super::velocity::Signals;
use super::{invalid_rules, Fraud};
use crate::services::ServiceError;

/// The most payments one dry run replays.
pub const DRY_RUN_PAYMENTS: usize = 1000;
/// How far back a dry run looks.
pub const DRY_RUN_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);
/// The most changed payments a dry run lists (all are counted).
pub const MAX_CHANGES_LISTED: usize = 100;

/// A payment whose decision the candidate would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionChange {
    pub payment: PaymentId,
    /// What it got (`allow` for a payment confirmed without rules).
    pub from: Decision,
    pub to: Decision,
}

/// What a candidate rule set would have decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRun {
    /// How many payments were replayed.
    pub payments: usize,
    /// How many would get each decision, in `Decision` order.
    pub decisions: [(Decision, usize); 4],
    /// How many would get another decision than they got.
    pub changed: usize,
    /// The first [`MAX_CHANGES_LISTED`] of them, newest first.
    pub changes: Vec<DecisionChange>,
}

impl<S: FraudStore + PaymentStore + TokenStore + Commit> Fraud<S> {
    /// Replays `text` over the tenant's recent confirmed payments; refused
    /// like [`Fraud::save_rules`] if it would be.
    pub async fn dry_run(&self, tenant: &Tenant, text: &str) -> Result<DryRun, ServiceError> {
        self.dry_run_with(tenant, text, None).await
    }

    /// Like [`Fraud::dry_run`], reading scores with the candidate
    /// `thresholds` (without, those a save would keep: the active
    /// version's, or the defaults).
    pub async fn dry_run_with(
        &self,
        tenant: &Tenant,
        text: &str,
        thresholds: Option<Thresholds>,
    ) -> Result<DryRun, ServiceError> {
        let rules = RuleSet::parse(text).map_err(|e| invalid_rules(format!("The rules do not parse: {e}")))?;
        self.check_lists(tenant, &rules).await?;
        let lists = self.load_lists(tenant, &rules).await?;
        let thresholds = match thresholds {
            Some(chosen) => chosen,
            None => self.current_thresholds(tenant).await?,
        };
        let since = Timestamp::now().saturating_sub(DRY_RUN_WINDOW);
        let mut cards: HashMap<String, Option<TokenRow>> = HashMap::new();
        let mut run = DryRun {
            payments: 0,
            decisions: [
                (Decision::Allow, 0),
                (Decision::Review, 0),
                (Decision::Challenge, 0),
                (Decision::Block, 0),
            ],
            changed: 0,
            changes: Vec::new(),
        };
        let mut before: Option<PaymentId> = None;
        'pages: loop {
            let filter = ListFilter {
                created_gte: Some(since),
                before: before.clone(),
                ..ListFilter::default()
            };
            let page = self.store.list_payments(tenant, &filter, 100).await?;
            let Some(last) = page.last() else { break };
            before = Some(last.id.clone());
            for payment in page {
                if run.payments >= DRY_RUN_PAYMENTS {
                    break 'pages;
                }
                // Never confirmed: nothing was decided for it.
                if matches!(
                    payment.status(),
                    PaymentStatus::RequiresPaymentMethod | PaymentStatus::RequiresConfirmation
                ) {
                    continue;
                }
                let card = match &payment.payment_method {
                    Some(token) => {
                        if !cards.contains_key(token.as_str()) {
                            let row = self.store.get_live_token(tenant, token).await?;
                            cards.insert(token.as_str().to_owned(), row);
                        }
                        cards.get(token.as_str()).and_then(Option::as_ref)
                    }
                    None => None,
                };
                let owned = PaymentFacts::of(&payment);
                let card = card.map(|row| CardFacts {
                    brand: &row.brand,
                    bin: &row.bin,
                    last4: &row.last4,
                });
                let to = rules
                    .evaluate_with_lists(&owned.facts(&payment, card, &Signals::default()), &lists, thresholds)
                    .decision;
                let from = payment.risk.as_ref().map_or(Decision::Allow, |r| r.decision);
                run.payments += 1;
                if let Some((_, n)) = run.decisions.iter_mut().find(|(d, _)| *d == to) {
                    *n += 1;
                }
                if from != to {
                    run.changed += 1;
                    if run.changes.len() < MAX_CHANGES_LISTED {
                        run.changes.push(DecisionChange {
                            payment: payment.id.clone(),
                            from,
                            to,
                        });
                    }
                }
            }
        }
        Ok(run)
    }
}
