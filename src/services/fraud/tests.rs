//! The fraud service against the in-memory double: saving, versions and
//! activation, lists, mode scoping, the audit trail, and the screening of
//! payments by each decision (with the payments service's fixture).

use crate::domain::api_key::Mode;
use crate::domain::fraud_rules::{Decision, ListName};
use crate::domain::payment::{CaptureMethod, Payment, PaymentStatus};
use crate::domain::payment_fields::CustomerEmail;
use crate::domain::tenant::Tenant;
use crate::services::payments::test_support::{Fixture, APPROVED};
use crate::services::ServiceError;
use crate::store::ports::AuditStore;

use super::{sha256_hex, thresholds, BLOCK_AT, REVIEW_AT};

fn list(name: &str) -> ListName {
    ListName::parse(name).unwrap()
}

async fn save(f: &Fixture, tenant: &Tenant, text: &str) {
    f.payments.fraud().save_rules(&f.actor, tenant, text).await.unwrap();
}

/// A payment of `amount` by `email`, created and confirmed at once.
async fn pay(f: &Fixture, tenant: &Tenant, amount: i64, capture: CaptureMethod, email: Option<&str>) -> Payment {
    let card = f.card(tenant, APPROVED).await;
    let mut new = Fixture::new_payment(amount, capture, Some(card), true);
    new.customer_email = email.map(|e| CustomerEmail::parse(e).unwrap());
    f.payments
        .create(&f.actor, f.caller(tenant), new)
        .await
        .unwrap()
        .payment
}

async fn audit_reasons(f: &Fixture, action: &str) -> Vec<String> {
    f.store
        .audit_page(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == action)
        .map(|r| r.event.reason.unwrap_or_default())
        .collect()
}

#[test]
fn the_thresholds_are_valid() {
    let t = thresholds().unwrap();
    assert_eq!((t.review_at(), t.block_at()), (REVIEW_AT, BLOCK_AT));
}

#[tokio::test]
async fn rules_that_do_not_parse_are_refused_with_line_and_column() {
    let f = Fixture::new().await;
    let text = "rule ok : block when amount > 100\nrule bad : block when amount > \"x\"";
    let err = f
        .payments
        .fraud()
        .save_rules(&f.actor, &f.tenant, text)
        .await
        .unwrap_err();
    let ServiceError::Invalid { param, code, message } = err else {
        panic!("{err:?}")
    };
    assert_eq!((param.as_str(), code), ("rules", "invalid_rules"));
    assert!(message.contains("line 2, column"), "{message}");
    let overview = f.payments.fraud().rules(&f.tenant).await.unwrap();
    assert!(
        overview.active.is_none() && overview.versions.is_empty(),
        "nothing stored"
    );
}

#[tokio::test]
async fn each_save_is_a_new_active_version_and_an_older_one_can_be_activated() {
    let f = Fixture::new().await;
    let one = "rule big : block when amount > 100_000";
    let two = "rule huge : review when amount > 500_000";
    save(&f, &f.tenant, one).await;
    save(&f, &f.tenant, two).await;
    let fraud = f.payments.fraud();
    let overview = fraud.rules(&f.tenant).await.unwrap();
    let active = overview.active.unwrap();
    assert_eq!((active.version, active.rules.as_str()), (2, two));
    assert_eq!(active.sha256, sha256_hex(two));
    assert_eq!(active.sha256.len(), 64);
    assert_eq!(overview.versions.iter().map(|v| v.version).collect::<Vec<_>>(), [2, 1]);
    let overview = fraud.activate(&f.actor, &f.tenant, 1).await.unwrap();
    assert_eq!(overview.active.unwrap().rules, one);
    let missing = fraud.activate(&f.actor, &f.tenant, 3).await.unwrap_err();
    assert!(
        matches!(missing, ServiceError::NotFound { param: "version", .. }),
        "{missing:?}"
    );
    // Every change audited with the set's hash.
    let saved = audit_reasons(&f, "fraud.rules_saved").await;
    assert_eq!(saved.len(), 2);
    assert!(
        saved[0].contains(&sha256_hex(one)) && saved[1].contains(&sha256_hex(two)),
        "{saved:?}"
    );
    let activated = audit_reasons(&f, "fraud.rules_activated").await;
    assert_eq!(
        activated,
        [format!(
            "version 1 sha256 {} activated (review at 65, block at 85)",
            sha256_hex(one)
        )]
    );
}

#[tokio::test]
async fn rules_and_lists_of_one_mode_are_invisible_to_the_other_and_to_other_merchants() {
    let f = Fixture::new().await;
    let fraud = f.payments.fraud();
    fraud
        .put_list(&f.actor, &f.tenant, &list("vips"), vec!["a@example.com".into()])
        .await
        .unwrap();
    save(&f, &f.tenant, "rule v : allow when customer.email in @vips").await;
    for other in f.other_tenants().await {
        let overview = fraud.rules(&other).await.unwrap();
        assert!(overview.active.is_none() && overview.versions.is_empty());
        assert!(matches!(
            fraud.list(&other, &list("vips")).await,
            Err(ServiceError::NotFound { .. })
        ));
        assert!(matches!(
            fraud.activate(&f.actor, &other, 1).await,
            Err(ServiceError::NotFound { .. })
        ));
        // The list is the test mode's: rules of the other tenant cannot name it.
        let err = fraud
            .save_rules(&f.actor, &other, "rule v : allow when customer.email in @vips")
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ServiceError::Invalid {
                    code: "invalid_rules",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn lists_are_normalised_bounded_and_audited_without_their_values() {
    let f = Fixture::new().await;
    let fraud = f.payments.fraud();
    let saved = fraud
        .put_list(
            &f.actor,
            &f.tenant,
            &list("trusted"),
            vec![
                " Jenny@Example.com ".into(),
                "jenny@example.com".into(),
                "bob@example.com".into(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(saved.values, ["bob@example.com", "jenny@example.com"]);
    assert_eq!(
        fraud.list(&f.tenant, &list("trusted")).await.unwrap().values,
        saved.values
    );
    let reasons = audit_reasons(&f, "fraud.list_replaced").await;
    assert_eq!(reasons, ["2 values"]);
    let trail = f.store.audit_page(0, 1000).await.unwrap();
    assert!(
        trail.iter().all(|r| !format!("{:?}", r.event).contains("jenny")),
        "no list value in the audit trail"
    );
    for bad in [vec![String::new()], vec!["x".repeat(257)], vec!["a\u{7}b".into()]] {
        let err = fraud
            .put_list(&f.actor, &f.tenant, &list("bad"), bad)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ServiceError::Invalid { param, .. } if param == "values[0]"),
            "{err:?}"
        );
    }
    let too_many = (0..1001).map(|i| format!("v{i}")).collect();
    let err = fraud
        .put_list(&f.actor, &f.tenant, &list("big"), too_many)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ServiceError::Invalid { param, .. } if param == "values"),
        "{err:?}"
    );
}

#[tokio::test]
async fn rules_naming_a_missing_list_are_refused() {
    let f = Fixture::new().await;
    let err = f
        .payments
        .fraud()
        .save_rules(&f.actor, &f.tenant, "rule v : allow when customer.email in @nobody")
        .await
        .unwrap_err();
    let ServiceError::Invalid { param, code, message } = err else {
        panic!("{err:?}")
    };
    assert_eq!((param.as_str(), code), ("rules", "invalid_rules"));
    assert!(message.contains("@nobody"), "{message}");
}

#[tokio::test]
async fn without_rules_a_payment_carries_no_risk() {
    let f = Fixture::new().await;
    let p = pay(&f, &f.tenant, 1_000, CaptureMethod::Automatic, None).await;
    assert_eq!(p.status(), PaymentStatus::Succeeded);
    assert!(p.risk.is_none());
}

#[tokio::test]
async fn a_blocking_rule_fails_the_payment_before_the_processor() {
    let f = Fixture::new().await;
    save(
        &f,
        &f.tenant,
        "rule big : block when amount >= 50_000\nrule other : score 5 when currency == \"usd\"",
    )
    .await;
    let p = pay(&f, &f.tenant, 60_000, CaptureMethod::Automatic, None).await;
    assert_eq!(p.status(), PaymentStatus::Failed);
    assert_eq!(p.decline.as_ref().unwrap().code, "fraudulent");
    let risk = p.risk.as_ref().unwrap();
    assert_eq!(risk.decision, Decision::Block);
    assert_eq!(risk.rules, ["big", "other"]);
    assert_eq!(risk.score, 5);
    assert!(
        p.history().iter().all(|h| h.action != "authorize"),
        "no authorization was attempted: {:?}",
        p.history()
    );
    let reasons = audit_reasons(&f, "payment.confirmed").await;
    assert!(
        reasons[0].contains("risk block score 5 rules v1 [big,other]"),
        "{reasons:?}"
    );
    // Below the amount, the same rules let it through.
    let ok = pay(&f, &f.tenant, 1_000, CaptureMethod::Automatic, None).await;
    assert_eq!(ok.status(), PaymentStatus::Succeeded);
    assert_eq!(ok.risk.unwrap().decision, Decision::Allow);
}

#[tokio::test]
async fn a_review_authorizes_and_holds_the_payment_uncaptured() {
    let f = Fixture::new().await;
    save(&f, &f.tenant, "rule mid : review when amount > 10_000").await;
    let p = pay(&f, &f.tenant, 20_000, CaptureMethod::Automatic, None).await;
    assert_eq!(p.status(), PaymentStatus::RequiresCapture, "{:?}", p.history());
    assert_eq!(p.state().amount_capturable, 20_000);
    assert!(p.risk.as_ref().unwrap().held_for_review());
}

#[tokio::test]
async fn a_challenge_rule_sends_the_customer_to_3ds_first() {
    let f = Fixture::new().await;
    save(&f, &f.tenant, "rule mid : challenge when amount > 10_000").await;
    let p = pay(&f, &f.tenant, 20_000, CaptureMethod::Automatic, None).await;
    assert_eq!(p.status(), PaymentStatus::RequiresAction);
    assert!(p.next_action().is_some());
    assert!(p.history().iter().all(|h| h.action != "authorize"));
}

#[tokio::test]
async fn scores_add_up_to_the_thresholds_and_an_allow_list_overrides_them() {
    let f = Fixture::new().await;
    let fraud = f.payments.fraud();
    fraud
        .put_list(&f.actor, &f.tenant, &list("trusted"), vec!["jenny@example.com".into()])
        .await
        .unwrap();
    save(
        &f,
        &f.tenant,
        "rule a : score 40 when amount > 1_000\n\
         rule b : score 30 when currency == \"usd\"\n\
         rule c : score 20 when amount > 5_000\n\
         rule regulars : allow when customer.email in @trusted",
    )
    .await;
    let low = pay(&f, &f.tenant, 500, CaptureMethod::Automatic, Some("x@example.com")).await;
    assert_eq!(low.risk.as_ref().unwrap().score, 30);
    assert_eq!(low.status(), PaymentStatus::Succeeded);
    let reviewed = pay(&f, &f.tenant, 2_000, CaptureMethod::Automatic, Some("x@example.com")).await;
    assert_eq!(reviewed.risk.as_ref().unwrap().score, 70);
    assert_eq!(reviewed.risk.as_ref().unwrap().decision, Decision::Review);
    assert_eq!(reviewed.status(), PaymentStatus::RequiresCapture);
    let blocked = pay(&f, &f.tenant, 6_000, CaptureMethod::Automatic, Some("x@example.com")).await;
    assert_eq!(blocked.risk.as_ref().unwrap().score, 90);
    assert_eq!(blocked.status(), PaymentStatus::Failed);
    let regular = pay(
        &f,
        &f.tenant,
        6_000,
        CaptureMethod::Automatic,
        Some("Jenny@Example.com"),
    )
    .await;
    let risk = regular.risk.as_ref().unwrap();
    assert_eq!((risk.decision, risk.score), (Decision::Allow, 90));
    assert_eq!(regular.status(), PaymentStatus::Succeeded);
    assert!(risk.signals.iter().any(|s| s.name == "customer.email"));
    // The list changes: the next payment sees it at once.
    fraud
        .put_list(
            &f.actor,
            &f.tenant,
            &list("trusted"),
            vec!["someone@example.com".into()],
        )
        .await
        .unwrap();
    let now_blocked = pay(
        &f,
        &f.tenant,
        6_000,
        CaptureMethod::Automatic,
        Some("jenny@example.com"),
    )
    .await;
    assert_eq!(now_blocked.status(), PaymentStatus::Failed);
}

#[tokio::test]
async fn rules_of_one_mode_never_screen_the_other() {
    let f = Fixture::new().await;
    let live = Tenant::new(f.tenant.merchant().clone(), Mode::Live);
    save(&f, &live, "rule all : block when amount > 0").await;
    let test = pay(&f, &f.tenant, 1_000, CaptureMethod::Automatic, None).await;
    assert_eq!(test.status(), PaymentStatus::Succeeded);
    assert!(test.risk.is_none());
}

#[tokio::test]
async fn a_payment_confirmed_later_is_screened_at_its_confirm() {
    let f = Fixture::new().await;
    let card = f.card(&f.tenant, APPROVED).await;
    let created = f
        .payments
        .create(
            &f.actor,
            f.caller(&f.tenant),
            Fixture::new_payment(60_000, CaptureMethod::Automatic, Some(card), false),
        )
        .await
        .unwrap()
        .payment;
    assert!(created.risk.is_none(), "not screened before its confirm");
    save(&f, &f.tenant, "rule big : block when amount >= 50_000").await;
    let confirmed = f
        .payments
        .confirm(&f.actor, f.caller(&f.tenant), &created.id, Default::default())
        .await
        .unwrap()
        .payment;
    assert_eq!(confirmed.status(), PaymentStatus::Failed);
    assert_eq!(confirmed.decline.as_ref().unwrap().code, "fraudulent");
    assert_eq!(confirmed.risk.as_ref().unwrap().rules, ["big"]);
}

#[tokio::test]
async fn a_payment_challenged_by_the_rules_is_authorized_once_the_customer_authenticates() {
    let f = Fixture::new().await;
    save(&f, &f.tenant, "rule mid : challenge when amount > 10_000").await;
    let p = pay(&f, &f.tenant, 20_000, CaptureMethod::Automatic, None).await;
    let url = p.next_action().unwrap().url.clone();
    let secret = url.split("challenge=").nth(1).unwrap().to_owned();
    let answered = f
        .payments
        .complete_challenge(
            &f.actor,
            &p.id,
            &secret,
            crate::services::payments::ChallengeAnswer::Code(crate::services::payments::sca_sandbox::one_time_code(
                &secret,
            )),
        )
        .await
        .unwrap()
        .payment;
    assert_eq!(answered.status(), PaymentStatus::Succeeded, "{:?}", answered.history());
    assert_eq!(
        answered.risk.as_ref().unwrap().decision,
        Decision::Challenge,
        "the risk stays as decided"
    );
}

#[tokio::test]
async fn a_dry_run_counts_decisions_and_names_the_changes_without_storing() {
    let f = Fixture::new().await;
    let small = pay(&f, &f.tenant, 1_000, CaptureMethod::Automatic, None).await;
    let big = pay(&f, &f.tenant, 60_000, CaptureMethod::Automatic, None).await;
    let fraud = f.payments.fraud();
    let run = fraud
        .dry_run(
            &f.tenant,
            "rule big : block when amount >= 50_000 and card.bin == \"424242\"",
        )
        .await
        .unwrap();
    assert_eq!(run.payments, 2);
    assert_eq!(run.changed, 1);
    assert_eq!(run.changes.len(), 1);
    assert_eq!((&run.changes[0].payment, run.changes[0].to), (&big.id, Decision::Block));
    assert_eq!(run.decisions[0], (Decision::Allow, 1));
    assert_eq!(run.decisions[3], (Decision::Block, 1));
    assert!(
        fraud.rules(&f.tenant).await.unwrap().versions.is_empty(),
        "nothing stored"
    );
    let again = pay(&f, &f.tenant, 60_000, CaptureMethod::Automatic, None).await;
    assert_eq!(again.status(), PaymentStatus::Succeeded, "nothing in force");
    assert_eq!(small.status(), PaymentStatus::Succeeded);
    let err = fraud.dry_run(&f.tenant, "rule x : block when").await.unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::Invalid {
                code: "invalid_rules",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn thresholds_are_scores_in_order_and_name_the_field_at_fault() {
    let field = |r: Result<crate::domain::fraud_rules::Thresholds, ServiceError>| match r {
        Err(ServiceError::Invalid { param, .. }) => param.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(field(super::parse_thresholds(0, 50)), "review_at");
    assert_eq!(field(super::parse_thresholds(50, 101)), "block_at");
    assert_eq!(field(super::parse_thresholds(-1, 50)), "review_at");
    assert_eq!(field(super::parse_thresholds(60, 60)), "review_at");
    assert_eq!(field(super::parse_thresholds(70, 60)), "review_at");
    let ok = super::parse_thresholds(1, 100).unwrap();
    assert_eq!((ok.review_at(), ok.block_at()), (1, 100));
}

#[tokio::test]
async fn a_merchants_thresholds_decide_its_scores_and_stay_with_their_version() {
    let f = Fixture::new().await;
    let fraud = f.payments.fraud();
    let text = "rule mid : score 50 when amount > 100";
    let chosen = super::parse_thresholds(40, 60).unwrap();
    fraud
        .save_rules_with(&f.actor, &f.tenant, text, Some(chosen))
        .await
        .unwrap();
    let p = pay(&f, &f.tenant, 1_000, CaptureMethod::Automatic, None).await;
    assert_eq!(p.risk.as_ref().unwrap().decision, Decision::Review, "50 is past 40");
    // Saved again without thresholds: the active ones are kept.
    let overview = fraud
        .save_rules(&f.actor, &f.tenant, "rule mid : score 60 when amount > 100")
        .await
        .unwrap();
    let active = overview.active.unwrap();
    assert_eq!((active.version, active.review_at, active.block_at), (2, 40, 60));
    let p = pay(&f, &f.tenant, 1_000, CaptureMethod::Automatic, None).await;
    assert_eq!(p.risk.as_ref().unwrap().decision, Decision::Block);
    assert_eq!(p.status(), PaymentStatus::Failed);
    // A third version with the defaults again; activating the first brings
    // back its thresholds.
    let defaults = thresholds().unwrap();
    fraud
        .save_rules_with(&f.actor, &f.tenant, text, Some(defaults))
        .await
        .unwrap();
    let p = pay(&f, &f.tenant, 1_000, CaptureMethod::Automatic, None).await;
    assert_eq!(p.risk.as_ref().unwrap().decision, Decision::Allow, "50 is below 65");
    fraud.activate(&f.actor, &f.tenant, 1).await.unwrap();
    let p = pay(&f, &f.tenant, 1_000, CaptureMethod::Automatic, None).await;
    assert_eq!(p.risk.as_ref().unwrap().decision, Decision::Review);
    // The other mode keeps the defaults.
    let live = Tenant::new(f.tenant.merchant().clone(), Mode::Live);
    let overview = fraud.save_rules(&f.actor, &live, text).await.unwrap();
    assert_eq!(overview.active.map(|a| (a.review_at, a.block_at)), Some((65, 85)));
    // Every change audited with its thresholds.
    let saved = audit_reasons(&f, "fraud.rules_saved").await;
    assert!(saved[0].contains("review at 40, block at 60"), "{saved:?}");
    assert!(saved[1].contains("review at 40, block at 60"), "{saved:?}");
    assert!(saved[2].contains("review at 65, block at 85"), "{saved:?}");
    let activated = audit_reasons(&f, "fraud.rules_activated").await;
    assert!(activated[0].contains("review at 40, block at 60"), "{activated:?}");
    // A dry run reads a candidate with candidate thresholds.
    let run = fraud
        .dry_run_with(&f.tenant, text, Some(super::parse_thresholds(10, 20).unwrap()))
        .await
        .unwrap();
    assert!(
        run.decisions
            .iter()
            .any(|(d, n)| *d == Decision::Block && *n == run.payments),
        "{run:?}"
    );
}
