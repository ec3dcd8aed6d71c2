use super::*;
use proptest::prelude::*;

fn currency() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(vec!["eur", "usd", "gbp", "jpy"])
}

fn any_input() -> impl Strategy<Value = (i64, &'static str, u32, u64, Option<u32>, bool)> {
    (
        prop_oneof![1i64..100_000, 1i64..i64::MAX],
        currency(),
        0u32..8,
        0u64..12_000,
        proptest::option::of(0u32..2_000),
        any::<bool>(),
    )
}

proptest! {
    /// An exemption is never granted above its threshold, whatever the
    /// currency: the exact (rational) EUR value of the amount is checked
    /// against the threshold, independently of the rounding in `to_eur`.
    #[test]
    fn no_exemption_above_its_threshold((minor, code, consecutive, cumulative, ppm, abnormal) in any_input()) {
        let rates = rates();
        let amount = money(minor, code);
        let decision = decide(&ScaInput {
            counters: LowValueCounters::new(consecutive, EurCents::new(cumulative)),
            fraud_rate: ppm.map(|p| FraudRate::from_ppm(p).unwrap()),
            risk_abnormal: abnormal,
            ..input(amount, &rates)
        });
        // exact EUR value × 10^(9 + exponent) = minor × nanos × 100 (in cents·10^(9+exp)).
        let nanos = if code == "eur" { 1_000_000_000u128 } else { u128::from(rates.rate(amount.currency).unwrap().nanos()) };
        let scale = 10u128.pow(9 + u32::from(amount.currency.exponent()));
        let exact_cents_scaled = u128::try_from(minor).unwrap() * nanos * 100;
        let within = |threshold: EurCents| exact_cents_scaled <= u128::from(threshold.cents()) * scale;
        match decision.outcome {
            ScaOutcome::Exempt(Exemption::LowValue) => {
                prop_assert!(within(EurCents::euros(30)));
                prop_assert!(consecutive < 5);
                let eur = decision.amount_eur.unwrap();
                prop_assert!(cumulative + eur.cents() <= 10_000);
            }
            ScaOutcome::Exempt(Exemption::TransactionRiskAnalysis { threshold }) => {
                prop_assert!(within(threshold));
                prop_assert!(!abnormal);
                prop_assert_eq!(FraudRate::from_ppm(ppm.unwrap()).unwrap().tra_threshold(), Some(threshold));
            }
            ScaOutcome::Frictionless => {}
            other => prop_assert!(false, "in scope, automatic: {other:?}"),
        }
    }

    /// Rounding is up and by less than a cent.
    #[test]
    fn conversion_rounds_up_by_less_than_a_cent(minor in 1i64..10_000_000_000, code in currency()) {
        let rates = rates();
        let amount = money(minor, code);
        let cents = u128::from(rates.to_eur(amount).unwrap().cents());
        let nanos = if code == "eur" { 1_000_000_000u128 } else { u128::from(rates.rate(amount.currency).unwrap().nanos()) };
        let scale = 10u128.pow(9 + u32::from(amount.currency.exponent()));
        let exact = u128::try_from(minor).unwrap() * nanos * 100;
        prop_assert!(cents * scale >= exact);
        prop_assert!((cents - 1) * scale < exact);
    }

    /// The decision is the same for any request option except where the
    /// option says otherwise: `challenge` is always a challenge, `any` never
    /// exempts.
    #[test]
    fn request_options_override((minor, code, consecutive, cumulative, ppm, abnormal) in any_input()) {
        let rates = rates();
        let base = ScaInput {
            counters: LowValueCounters::new(consecutive, EurCents::new(cumulative)),
            fraud_rate: ppm.map(|p| FraudRate::from_ppm(p).unwrap()),
            risk_abnormal: abnormal,
            ..input(money(minor, code), &rates)
        };
        let challenge = decide(&ScaInput { request: RequestThreeDSecure::Challenge, ..base });
        prop_assert_eq!(challenge.outcome, ScaOutcome::Challenge);
        let any = decide(&ScaInput { request: RequestThreeDSecure::Any, ..base });
        prop_assert_eq!(any.outcome, ScaOutcome::Frictionless);
    }

    /// Applying payments and resetting keeps the counters' arithmetic.
    #[test]
    fn counters_add_up(amounts in proptest::collection::vec(1u64..5_000, 0..10)) {
        let counters = amounts.iter().fold(LowValueCounters::default(), |c, a| c.apply(EurCents::new(*a)));
        prop_assert_eq!(counters.consecutive() as usize, amounts.len());
        prop_assert_eq!(counters.cumulative().cents(), amounts.iter().sum::<u64>());
        prop_assert_eq!(counters.reset_on_sca(), LowValueCounters::default());
    }
}
