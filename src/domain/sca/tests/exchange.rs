use super::*;

#[test]
fn rates_parse_as_fixed_point_decimals() {
    assert_eq!(EurRate::parse("0.92").unwrap().nanos(), 920_000_000);
    assert_eq!(EurRate::parse("1").unwrap().nanos(), 1_000_000_000);
    assert_eq!(EurRate::parse("161.5").unwrap().nanos(), 161_500_000_000);
    assert_eq!(EurRate::parse("0.000000001").unwrap().nanos(), 1);
    for bad in [
        "",
        "0",
        "0.0",
        "-1",
        "1.",
        ".5",
        "1e3",
        "0.0000000001",
        " 1",
        "1,5",
        "NaN",
        "99999999999",
    ] {
        assert_eq!(EurRate::parse(bad), Err(InvalidRate), "{bad:?}");
    }
}

#[test]
fn usd_gbp_and_jpy_convert_rounding_up_to_the_cent() {
    let rates = rates();
    // 32.60 USD × 0.92 = 29.992 → 30.00; 32.61 USD → 30.0012 → 30.01.
    assert_eq!(rates.to_eur(money(3260, "usd")), Ok(EurCents::new(3000)));
    assert_eq!(rates.to_eur(money(3261, "usd")), Ok(EurCents::new(3001)));
    // 25.00 GBP × 1.17 = 29.25 exactly.
    assert_eq!(rates.to_eur(money(2500, "gbp")), Ok(EurCents::new(2925)));
    // 4,838 JPY × 0.0062 = 29.9956 → 30.00; 4,839 → 30.0018 → 30.01.
    assert_eq!(rates.to_eur(money(4838, "jpy")), Ok(EurCents::new(3000)));
    assert_eq!(rates.to_eur(money(4839, "jpy")), Ok(EurCents::new(3001)));
    // 1 yen is worth a fraction of a cent: never rounded down to nothing.
    assert_eq!(rates.to_eur(money(1, "jpy")), Ok(EurCents::new(1)));
}

#[test]
fn eur_converts_at_exactly_one_whatever_the_table() {
    let odd = RateTable::new().with(Currency::parse("eur").unwrap(), EurRate::parse("2").unwrap());
    assert_eq!(odd.to_eur(eur(3001)), Ok(EurCents::new(3001)));
    assert_eq!(RateTable::new().to_eur(eur(1)), Ok(EurCents::new(1)));
}

#[test]
fn a_currency_without_a_rate_does_not_convert() {
    let chf = Currency::parse("chf").unwrap();
    assert_eq!(rates().to_eur(money(100, "chf")), Err(NoRate(chf)));
}

#[test]
fn three_decimal_currencies_use_their_exponent() {
    let rates = RateTable::new().with(Currency::parse("kwd").unwrap(), EurRate::parse("3").unwrap());
    // 10.000 KWD × 3 = EUR 30.00; 10.001 KWD = 30.003 → 30.01.
    assert_eq!(rates.to_eur(money(10_000, "kwd")), Ok(EurCents::new(3000)));
    assert_eq!(rates.to_eur(money(10_001, "kwd")), Ok(EurCents::new(3001)));
}

#[test]
fn huge_amounts_saturate_instead_of_wrapping() {
    let rates = RateTable::new().with(Currency::parse("usd").unwrap(), EurRate::parse("99999999").unwrap());
    assert_eq!(rates.to_eur(money(i64::MAX, "usd")), Ok(EurCents::new(u64::MAX)));
}

#[test]
fn eur_amounts_print_with_two_decimals() {
    assert_eq!(EurCents::new(3001).to_string(), "EUR 30.01");
    assert_eq!(EurCents::euros(100).to_string(), "EUR 100.00");
    assert_eq!(EurCents::new(5).to_string(), "EUR 0.05");
}
