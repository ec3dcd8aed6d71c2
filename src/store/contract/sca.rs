//! The SCA port's contract: counters per tenant and card, added in place,
//! the low-value count refused past its limits (failing its whole unit),
//! and the reset on SCA.

use super::{commit, contracts, stored_merchant};
use crate::domain::api_key::Mode;
use crate::domain::tenant::Tenant;
use crate::store::ports::{Commit, MerchantStore, ScaStore};
use crate::store::sca::ScaCounterRow;
use crate::store::StoreError;

contracts!(
    counters_add_up_per_tenant_and_card,
    the_low_value_count_past_its_limits_fails_the_whole_unit,
    a_reset_zeroes_the_counters_and_stamps_the_sca,
);

fn row(consecutive: i64, cumulative_cents: i64, authenticated_at: Option<i64>) -> Option<ScaCounterRow> {
    Some(ScaCounterRow {
        consecutive,
        cumulative_cents,
        authenticated_at,
    })
}

async fn counters_add_up_per_tenant_and_card<S: ScaStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Counted").await;
    let test = Tenant::new(merchant.id.clone(), Mode::Test);
    let live = Tenant::new(merchant.id.clone(), Mode::Live);
    assert_eq!(store.get_sca_counters(&test, "fp_a").await.unwrap(), None);
    commit(store, |work| {
        store.count_low_value(work, &test, "fp_a", 1_000, 1);
        store.count_low_value(work, &test, "fp_a", 2_000, 2);
        store.count_exempt(work, &test, "fp_b", 20_000, 3);
    })
    .await
    .unwrap();
    assert_eq!(
        store.get_sca_counters(&test, "fp_a").await.unwrap(),
        row(2, 3_000, None)
    );
    assert_eq!(
        store.get_sca_counters(&test, "fp_b").await.unwrap(),
        row(1, 20_000, None)
    );
    // Another mode's (or merchant's) card is another card.
    assert_eq!(store.get_sca_counters(&live, "fp_a").await.unwrap(), None);
    let other = stored_merchant(store, "Other").await;
    let other = Tenant::new(other.id, Mode::Test);
    assert_eq!(store.get_sca_counters(&other, "fp_a").await.unwrap(), None);
    // A TRA exemption counts past the low-value limits.
    commit(store, |work| store.count_exempt(work, &test, "fp_b", 90_000, 4))
        .await
        .unwrap();
    assert_eq!(
        store.get_sca_counters(&test, "fp_b").await.unwrap(),
        row(2, 110_000, None)
    );
}

async fn the_low_value_count_past_its_limits_fails_the_whole_unit<S: ScaStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Limited").await;
    let test = Tenant::new(merchant.id.clone(), Mode::Test);
    for n in 1..=5 {
        commit(store, |work| store.count_low_value(work, &test, "fp", 100, n))
            .await
            .unwrap();
    }
    assert_eq!(store.get_sca_counters(&test, "fp").await.unwrap(), row(5, 500, None));
    // The 6th is refused, and with it everything else in its unit.
    let sixth = commit(store, |work| {
        store.count_exempt(work, &test, "fp_other", 100, 6);
        store.count_low_value(work, &test, "fp", 100, 6);
    })
    .await;
    assert!(matches!(sixth, Err(StoreError::Conflict)), "{sixth:?}");
    assert_eq!(store.get_sca_counters(&test, "fp").await.unwrap(), row(5, 500, None));
    assert_eq!(store.get_sca_counters(&test, "fp_other").await.unwrap(), None);
    // The cumulative limit: EUR 90 counted, EUR 11 more is refused, EUR 10 fits.
    commit(store, |work| store.count_low_value(work, &test, "fp_sum", 9_000, 7))
        .await
        .unwrap();
    let over = commit(store, |work| store.count_low_value(work, &test, "fp_sum", 1_100, 8)).await;
    assert!(matches!(over, Err(StoreError::Conflict)), "{over:?}");
    commit(store, |work| store.count_low_value(work, &test, "fp_sum", 1_000, 9))
        .await
        .unwrap();
    assert_eq!(
        store.get_sca_counters(&test, "fp_sum").await.unwrap(),
        row(2, 10_000, None)
    );
}

async fn a_reset_zeroes_the_counters_and_stamps_the_sca<S: ScaStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Reset").await;
    let test = Tenant::new(merchant.id.clone(), Mode::Test);
    commit(store, |work| store.reset_sca_counters(work, &test, "fresh", 42))
        .await
        .unwrap();
    assert_eq!(
        store.get_sca_counters(&test, "fresh").await.unwrap(),
        row(0, 0, Some(42))
    );
    commit(store, |work| {
        store.count_low_value(work, &test, "fresh", 500, 43);
        store.count_low_value(work, &test, "fresh", 500, 44);
    })
    .await
    .unwrap();
    assert_eq!(
        store.get_sca_counters(&test, "fresh").await.unwrap(),
        row(2, 1_000, Some(42))
    );
    commit(store, |work| store.reset_sca_counters(work, &test, "fresh", 50))
        .await
        .unwrap();
    assert_eq!(
        store.get_sca_counters(&test, "fresh").await.unwrap(),
        row(0, 0, Some(50))
    );
}
