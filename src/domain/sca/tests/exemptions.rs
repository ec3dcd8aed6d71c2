use super::*;

fn with_counters(consecutive: u32, cumulative_cents: u64) -> LowValueCounters {
    LowValueCounters::new(consecutive, EurCents::new(cumulative_cents))
}

#[test]
fn low_value_is_at_most_eur_30() {
    let rates = rates();
    assert_eq!(outcome(&input(eur(3000), &rates)), LOW_VALUE);
    assert_eq!(outcome(&input(eur(1), &rates)), LOW_VALUE);
    assert_eq!(outcome(&input(eur(3001), &rates)), ScaOutcome::Frictionless);
}

#[test]
fn low_value_boundary_holds_in_usd_gbp_and_jpy() {
    let rates = rates();
    for (minor, currency, expected) in [
        (3260, "usd", LOW_VALUE),
        (3261, "usd", ScaOutcome::Frictionless),
        (2564, "gbp", LOW_VALUE),                // 29.9988 → 30.00
        (2565, "gbp", ScaOutcome::Frictionless), // 30.0105 → 30.02
        (4838, "jpy", LOW_VALUE),
        (4839, "jpy", ScaOutcome::Frictionless),
    ] {
        assert_eq!(
            outcome(&input(money(minor, currency), &rates)),
            expected,
            "{minor} {currency}"
        );
    }
}

#[test]
fn the_fifth_consecutive_low_value_payment_is_exempt_and_the_sixth_is_not() {
    let rates = rates();
    let mut counters = LowValueCounters::default();
    for n in 1..=5 {
        let decision = decide(&ScaInput {
            counters,
            ..input(eur(100), &rates)
        });
        assert_eq!(decision.outcome, LOW_VALUE, "payment {n}");
        counters = decision.counters_after(counters);
        assert_eq!(counters.consecutive(), n);
    }
    assert_eq!(counters.cumulative(), EurCents::euros(5));
    let sixth = decide(&ScaInput {
        counters,
        ..input(eur(100), &rates)
    });
    assert_eq!(sixth.outcome, ScaOutcome::Frictionless);
    assert!(sixth.reason.contains("low-value counters"), "{}", sixth.reason);
    assert_eq!(sixth.counters_after(counters), counters);
}

#[test]
fn the_cumulative_counter_allows_exactly_eur_100() {
    let rates = rates();
    let at = |cumulative, amount| {
        outcome(&ScaInput {
            counters: with_counters(3, cumulative),
            ..input(eur(amount), &rates)
        })
    };
    // 75.00 + 25.00 = 100.00: exempt; 75.01 + 25.00 = 100.01: not.
    assert_eq!(at(7500, 2500), LOW_VALUE);
    assert_eq!(at(7501, 2500), ScaOutcome::Frictionless);
    assert_eq!(at(9999, 1), LOW_VALUE);
    assert_eq!(at(10_000, 1), ScaOutcome::Frictionless);
}

#[test]
fn counters_count_exemptions_and_reset_on_sca() {
    let counters = LowValueCounters::default()
        .apply(EurCents::new(2500))
        .apply(EurCents::new(1000));
    assert_eq!(
        (counters.consecutive(), counters.cumulative()),
        (2, EurCents::new(3500))
    );
    assert_eq!(counters.reset_on_sca(), LowValueCounters::default());
    let full = with_counters(5, 500);
    assert!(!full.admits(EurCents::new(1)));
    assert!(full.reset_on_sca().admits(EurCents::euros(30)));
    let saturated = LowValueCounters::new(u32::MAX, EurCents::new(u64::MAX)).apply(EurCents::new(1));
    assert_eq!(saturated, LowValueCounters::new(u32::MAX, EurCents::new(u64::MAX)));
}

#[test]
fn a_tra_exemption_also_counts_on_the_card() {
    let rates = rates();
    let decision = decide(&ScaInput {
        fraud_rate: Some(FraudRate::from_ppm(1300).unwrap()),
        ..input(eur(5000), &rates)
    });
    assert_eq!(decision.outcome, tra(100));
    assert_eq!(
        decision.counters_after(LowValueCounters::default()),
        LowValueCounters::new(1, EurCents::euros(50))
    );
}

#[test]
fn tra_thresholds_follow_the_fraud_rate_bands() {
    let rates = rates();
    let at = |ppm, amount| {
        outcome(&ScaInput {
            fraud_rate: Some(FraudRate::from_ppm(ppm).unwrap()),
            ..input(eur(amount), &rates)
        })
    };
    // ≤ 0.13 % (1,300 ppm): up to EUR 100.
    assert_eq!(at(1300, 10_000), tra(100));
    assert_eq!(at(1300, 10_001), ScaOutcome::Frictionless);
    assert_eq!(at(1301, 5000), ScaOutcome::Frictionless);
    // ≤ 0.06 % (600 ppm): up to EUR 250.
    assert_eq!(at(601, 10_001), ScaOutcome::Frictionless);
    assert_eq!(at(600, 25_000), tra(250));
    assert_eq!(at(600, 25_001), ScaOutcome::Frictionless);
    // ≤ 0.01 % (100 ppm): up to EUR 500.
    assert_eq!(at(101, 25_001), ScaOutcome::Frictionless);
    assert_eq!(at(100, 50_000), tra(500));
    assert_eq!(at(100, 50_001), ScaOutcome::Frictionless);
    assert_eq!(at(0, 50_000), tra(500));
}

#[test]
fn tra_boundaries_hold_in_other_currencies() {
    let rates = rates();
    let at = |minor, currency| {
        outcome(&ScaInput {
            fraud_rate: Some(FraudRate::from_ppm(100).unwrap()),
            ..input(money(minor, currency), &rates)
        })
    };
    // USD 543.47 × 0.92 = 499.9924 → 500.00; 543.48 → 500.0016 → 500.01.
    assert_eq!(at(54_347, "usd"), tra(500));
    assert_eq!(at(54_348, "usd"), ScaOutcome::Frictionless);
    // JPY 80,645 × 0.0062 = 499.999 → 500.00; 80,646 → 500.0052.
    assert_eq!(at(80_645, "jpy"), tra(500));
    assert_eq!(at(80_646, "jpy"), ScaOutcome::Frictionless);
    // GBP 427.35 × 1.17 = 499.9995 → 500.00; 427.36 → 500.0112.
    assert_eq!(at(42_735, "gbp"), tra(500));
    assert_eq!(at(42_736, "gbp"), ScaOutcome::Frictionless);
}

#[test]
fn fraud_rate_bands_and_bounds() {
    let threshold = |ppm| FraudRate::from_ppm(ppm).unwrap().tra_threshold();
    assert_eq!(threshold(0), Some(EurCents::euros(500)));
    assert_eq!(threshold(100), Some(EurCents::euros(500)));
    assert_eq!(threshold(101), Some(EurCents::euros(250)));
    assert_eq!(threshold(600), Some(EurCents::euros(250)));
    assert_eq!(threshold(601), Some(EurCents::euros(100)));
    assert_eq!(threshold(1300), Some(EurCents::euros(100)));
    assert_eq!(threshold(1301), None);
    assert_eq!(FraudRate::from_ppm(1_000_001), Err(InvalidFraudRate));
}

#[test]
fn no_tra_without_a_rate_or_when_the_risk_analysis_flags_the_payment() {
    let rates = rates();
    let none = decide(&input(eur(5000), &rates));
    assert_eq!(none.outcome, ScaOutcome::Frictionless);
    assert!(none.reason.contains("no fraud rate"), "{}", none.reason);
    let flagged = decide(&ScaInput {
        fraud_rate: Some(FraudRate::from_ppm(100).unwrap()),
        risk_abnormal: true,
        ..input(eur(5000), &rates)
    });
    assert_eq!(flagged.outcome, ScaOutcome::Frictionless);
    assert!(flagged.reason.contains("abnormal"), "{}", flagged.reason);
}

#[test]
fn when_low_value_is_used_up_tra_may_still_exempt() {
    let rates = rates();
    let decision = decide(&ScaInput {
        counters: with_counters(5, 5000),
        fraud_rate: Some(FraudRate::from_ppm(1300).unwrap()),
        ..input(eur(1000), &rates)
    });
    assert_eq!(decision.outcome, tra(100));
}

#[test]
fn low_value_is_preferred_when_both_apply_and_reasons_say_why() {
    let rates = rates();
    let decision = decide(&ScaInput {
        fraud_rate: Some(FraudRate::from_ppm(100).unwrap()),
        ..input(eur(2000), &rates)
    });
    assert_eq!(decision.outcome, LOW_VALUE);
    assert_eq!(decision.amount_eur, Some(EurCents::euros(20)));
    assert_eq!(
        decision.reason,
        "low value: EUR 20.00 is at most EUR 30, and payment 1 since the card's last SCA, EUR 20.00 in total"
    );
    assert_eq!(
        (decision.outcome.code(), Exemption::LowValue.code()),
        ("exempt", "low_value")
    );
}

#[test]
fn a_currency_without_a_rate_gets_no_exemption() {
    let rates = rates();
    let decision = decide(&input(money(100, "chf"), &rates));
    assert_eq!(decision.outcome, ScaOutcome::Frictionless);
    assert_eq!(decision.amount_eur, None);
    assert!(decision.reason.contains("no EUR rate"), "{}", decision.reason);
}
