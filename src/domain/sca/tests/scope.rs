use super::*;

fn geography(issuer_in_eea: bool, acquirer_in_eea: bool) -> Geography {
    Geography {
        issuer_in_eea,
        acquirer_in_eea,
    }
}

const MIT_AFTER_SCA: Initiation = Initiation::Merchant {
    after_authenticated_first: true,
};

#[test]
fn challenge_request_forces_a_challenge_everywhere() {
    let rates = rates();
    let cases = [
        input(eur(100), &rates),
        ScaInput {
            geography: geography(false, false),
            ..input(eur(100), &rates)
        },
        ScaInput {
            initiation: MIT_AFTER_SCA,
            ..input(eur(100), &rates)
        },
        ScaInput {
            fraud_rate: Some(FraudRate::from_ppm(0).unwrap()),
            ..input(eur(40_000), &rates)
        },
    ];
    for case in cases {
        let decision = decide(&ScaInput {
            request: RequestThreeDSecure::Challenge,
            ..case
        });
        assert_eq!(decision.outcome, ScaOutcome::Challenge);
        assert_eq!(decision.reason, "the merchant requested a challenge");
        assert_eq!(
            decision.counters_after(LowValueCounters::default()),
            LowValueCounters::default()
        );
    }
}

#[test]
fn any_request_asks_for_3ds_instead_of_an_exemption() {
    let rates = rates();
    let base = ScaInput {
        request: RequestThreeDSecure::Any,
        fraud_rate: Some(FraudRate::from_ppm(0).unwrap()),
        ..input(eur(1000), &rates)
    };
    assert_eq!(outcome(&base), ScaOutcome::Frictionless);
    assert_eq!(
        outcome(&ScaInput {
            geography: geography(true, false),
            ..base
        }),
        ScaOutcome::Frictionless
    );
    assert_eq!(
        outcome(&ScaInput {
            geography: geography(false, false),
            ..base
        }),
        ScaOutcome::Frictionless
    );
    // No cardholder is present for a merchant-initiated payment.
    assert_eq!(
        outcome(&ScaInput {
            initiation: MIT_AFTER_SCA,
            ..base
        }),
        ScaOutcome::OutOfScope(OutOfScope::MerchantInitiated)
    );
}

#[test]
fn out_of_scope_cases() {
    let rates = rates();
    let at = |initiation, geography| {
        outcome(&ScaInput {
            initiation,
            geography,
            ..input(eur(100_000), &rates)
        })
    };
    assert_eq!(
        at(MIT_AFTER_SCA, geography(true, true)),
        ScaOutcome::OutOfScope(OutOfScope::MerchantInitiated)
    );
    assert_eq!(
        at(Initiation::Customer, geography(false, true)),
        ScaOutcome::OutOfScope(OutOfScope::OneLegOut)
    );
    assert_eq!(
        at(Initiation::Customer, geography(true, false)),
        ScaOutcome::OutOfScope(OutOfScope::OneLegOut)
    );
    assert_eq!(
        at(Initiation::Customer, geography(false, false)),
        ScaOutcome::OutOfScope(OutOfScope::OutsideEea)
    );
    assert_eq!(
        at(Initiation::Customer, geography(true, true)),
        ScaOutcome::Frictionless
    );
    assert_eq!(
        [
            OutOfScope::MerchantInitiated,
            OutOfScope::OneLegOut,
            OutOfScope::OutsideEea
        ]
        .map(OutOfScope::code),
        ["merchant_initiated", "one_leg_out", "outside_eea"]
    );
}

#[test]
fn a_merchant_initiated_payment_without_an_authenticated_first_is_in_scope() {
    let rates = rates();
    let mit = Initiation::Merchant {
        after_authenticated_first: false,
    };
    let big = ScaInput {
        initiation: mit,
        ..input(eur(100_000), &rates)
    };
    assert_eq!(outcome(&big), ScaOutcome::Frictionless);
    let small = ScaInput {
        initiation: mit,
        ..input(eur(1000), &rates)
    };
    assert_eq!(outcome(&small), LOW_VALUE);
}

#[test]
fn out_of_scope_payments_leave_the_counters_alone() {
    let rates = rates();
    let decision = decide(&ScaInput {
        geography: geography(false, true),
        ..input(eur(1000), &rates)
    });
    let counters = LowValueCounters::new(2, EurCents::euros(20));
    assert_eq!(decision.counters_after(counters), counters);
    assert_eq!(decision.outcome.code(), "out_of_scope");
}
