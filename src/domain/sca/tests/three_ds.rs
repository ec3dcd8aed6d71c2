use super::super::three_ds::*;
use crate::domain::card::CardBrand;

const CAVV: &str = "AAABBWcSNIdjeUZThmNHAAAAAAA=";

fn result(status: &str, brand: CardBrand, eci: Option<&str>, cavv: bool) -> ThreeDsResult {
    ThreeDsResult {
        version: MessageVersion::parse("2.2.0").unwrap(),
        status: TransStatus::parse(status).unwrap(),
        eci: eci.map(|e| Eci::parse(brand, e).unwrap()),
        authentication_value: cavv.then(|| AuthenticationValue::parse(CAVV).unwrap()),
        ds_trans_id: Some(DsTransId::parse("F25084F0-5B16-4C0A-AE5D-B24808A95E4B").unwrap()),
    }
}

#[test]
fn every_status_parses_from_its_letter_and_nothing_else() {
    for (letter, status) in [
        ("Y", TransStatus::Authenticated),
        ("N", TransStatus::NotAuthenticated),
        ("U", TransStatus::Unavailable),
        ("A", TransStatus::Attempted),
        ("C", TransStatus::ChallengeRequired),
        ("D", TransStatus::DecoupledChallengeRequired),
        ("R", TransStatus::Rejected),
        ("I", TransStatus::Informational),
    ] {
        assert_eq!(TransStatus::parse(letter), Ok(status));
        assert_eq!(status.letter(), letter);
    }
    for bad in ["y", "", "YY", "X", "E", " Y"] {
        assert_eq!(TransStatus::parse(bad), Err(InvalidThreeDs::TransStatus), "{bad:?}");
    }
}

#[test]
fn every_status_has_its_outcome_for_the_payment() {
    use AuthenticationOutcome::*;
    let expected = [
        ("Y", Authenticated, Authenticated),
        ("A", AuthorizeAttempted, AuthorizeAttempted),
        ("N", Fail, Fail),
        ("R", Fail, Fail),
        ("C", Challenge { decoupled: false }, Challenge { decoupled: false }),
        ("D", Challenge { decoupled: true }, Challenge { decoupled: true }),
        ("I", AuthorizeUnauthenticated, AuthorizeUnauthenticated),
        // U alone follows the merchant's policy.
        ("U", Fail, AuthorizeUnauthenticated),
    ];
    for (letter, when_fail, when_authorize) in expected {
        let r = result(letter, CardBrand::Visa, None, false);
        assert_eq!(r.outcome(OnUnavailable::Fail), when_fail, "{letter}");
        assert_eq!(r.outcome(OnUnavailable::Authorize), when_authorize, "{letter}");
    }
    assert_eq!(OnUnavailable::default(), OnUnavailable::Fail);
    assert_eq!(AuthenticationOutcome::FAILURE_CODE, "authentication_failed");
}

#[test]
fn message_versions_are_the_3ds2_ones() {
    for v in ["2.1.0", "2.2.0", "2.3.0", "2.3.1"] {
        assert_eq!(MessageVersion::parse(v).unwrap().as_str(), v);
    }
    for bad in ["1.0.2", "2.2", "2.4.0", "", "v2.2.0"] {
        assert_eq!(MessageVersion::parse(bad), Err(InvalidThreeDs::MessageVersion), "{bad}");
    }
    assert!(!MessageVersion::V2_1_0.has_decoupled_and_informational());
    assert!(MessageVersion::V2_2_0.has_decoupled_and_informational());
}

#[test]
fn eci_is_read_per_network() {
    use EciMeaning::*;
    let visa_like = [
        CardBrand::Visa,
        CardBrand::Amex,
        CardBrand::Discover,
        CardBrand::Diners,
        CardBrand::Jcb,
        CardBrand::Unionpay,
    ];
    for brand in visa_like {
        assert_eq!(Eci::parse(brand, "05").unwrap().meaning(), Authenticated);
        assert_eq!(Eci::parse(brand, "06").unwrap().meaning(), Attempted);
        assert_eq!(Eci::parse(brand, "07").unwrap().meaning(), NotAuthenticated);
        for bad in ["00", "01", "02", "08", "5", "005", "0x"] {
            assert_eq!(Eci::parse(brand, bad), Err(InvalidThreeDs::Eci), "{brand:?} {bad}");
        }
    }
    for brand in [CardBrand::Mastercard, CardBrand::Maestro] {
        assert_eq!(Eci::parse(brand, "02").unwrap().meaning(), Authenticated);
        assert_eq!(Eci::parse(brand, "01").unwrap().meaning(), Attempted);
        assert_eq!(Eci::parse(brand, "00").unwrap().meaning(), NotAuthenticated);
        assert_eq!(Eci::parse(brand, "06").unwrap().meaning(), Exempted);
        assert_eq!(
            Eci::parse(brand, "07").unwrap().meaning(),
            AuthenticatedMerchantInitiated
        );
        assert_eq!(Eci::parse(brand, "05"), Err(InvalidThreeDs::Eci));
    }
    assert_eq!(Eci::for_meaning(CardBrand::Visa, Authenticated).unwrap().code(), "05");
    assert_eq!(Eci::for_meaning(CardBrand::Mastercard, Attempted).unwrap().code(), "01");
    assert_eq!(
        Eci::for_meaning(CardBrand::Mastercard, NotAuthenticated)
            .unwrap()
            .code(),
        "00"
    );
    assert_eq!(Eci::for_meaning(CardBrand::Visa, Exempted), None);
}

#[test]
fn eci_codes_round_trip_for_every_brand_and_meaning() {
    use EciMeaning::*;
    for brand in CardBrand::ALL {
        for meaning in [
            Authenticated,
            Attempted,
            NotAuthenticated,
            Exempted,
            AuthenticatedMerchantInitiated,
        ] {
            if let Some(eci) = Eci::for_meaning(brand, meaning) {
                assert_eq!(Eci::parse(brand, &eci.code()), Ok(eci));
            }
        }
    }
}

#[test]
fn the_cryptogram_is_validated_and_never_printed() {
    let value = AuthenticationValue::parse(CAVV).unwrap();
    assert_eq!(value.expose_for_authorization(), CAVV);
    assert_eq!(format!("{value:?}"), "AuthenticationValue(..)");
    let r = result("Y", CardBrand::Visa, Some("05"), true);
    let debug = format!("{r:?}");
    assert!(!debug.contains(CAVV) && !debug.contains("AAAB"), "{debug}");
    assert!(r.authentication_value_present());
    // 19 bytes, 21 bytes, not base64, base64 without padding.
    for bad in [
        "AAABBWcSNIdjeUZThmNHAAAAAA==",
        "AAABBWcSNIdjeUZThmNHAAAAAAAA",
        "AAABBWcSNIdjeUZThmNHAAAAAA*=",
        "AAABBWcSNIdjeUZThmNHAAAAAAA",
    ] {
        let err = AuthenticationValue::parse(bad).unwrap_err();
        assert_eq!(err, InvalidThreeDs::AuthenticationValue);
        assert!(!err.to_string().contains(bad));
    }
}

#[test]
fn ds_trans_id_is_a_uuid_kept_in_lower_case() {
    let id = DsTransId::parse("F25084F0-5B16-4C0A-AE5D-B24808A95E4B").unwrap();
    assert_eq!(id.as_str(), "f25084f0-5b16-4c0a-ae5d-b24808a95e4b");
    for bad in [
        "",
        "f25084f05b164c0aae5db24808a95e4b",
        "f25084f0-5b16-4c0a-ae5d-b24808a95e4",
        "g25084f0-5b16-4c0a-ae5d-b24808a95e4b",
        "{f25084f0-5b16-4c0a-ae5d-b24808a95e4b}",
    ] {
        assert_eq!(DsTransId::parse(bad), Err(InvalidThreeDs::DsTransId), "{bad}");
    }
}

#[test]
fn liability_shifts_only_when_status_eci_and_cryptogram_agree() {
    let visa = CardBrand::Visa;
    let mc = CardBrand::Mastercard;
    let shifts = [
        (result("Y", visa, Some("05"), true), true),
        (result("Y", mc, Some("02"), true), true),
        (result("Y", mc, Some("07"), true), true),
        (result("A", visa, Some("06"), true), true),
        (result("A", mc, Some("01"), true), true),
        // No cryptogram: nothing proves the authentication.
        (result("Y", visa, Some("05"), false), false),
        (result("A", visa, Some("06"), false), false),
        // Status and ECI disagree.
        (result("Y", visa, Some("07"), true), false),
        (result("Y", visa, Some("06"), true), false),
        (result("A", visa, Some("05"), true), false),
        (result("Y", visa, None, true), false),
        // An exemption keeps liability with whoever applied it.
        (result("Y", mc, Some("06"), true), false),
        (result("I", mc, Some("06"), true), false),
        (result("U", visa, Some("07"), false), false),
        (result("N", visa, Some("07"), false), false),
        (result("R", visa, Some("07"), false), false),
        (result("C", visa, None, false), false),
        (result("D", visa, None, false), false),
    ];
    for (r, expected) in shifts {
        assert_eq!(r.liability_shift(), expected, "{r:?}");
    }
}
