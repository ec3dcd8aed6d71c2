//! The fraud signals port's contract: observations counted per tenant, key
//! and window, declines and distinct cards, first use, at most
//! `MAX_COUNTED` rows per count, repeated inserts ignored, pruning.

use super::{commit, contracts, stored_merchant};
use crate::domain::api_key::Mode;
use crate::domain::tenant::Tenant;
use crate::store::fraud_signals::{
    KeyCounts, ObservationKeys, ObservationRow, MAX_COUNTED, OUTCOME_ALLOWED, OUTCOME_BLOCKED, OUTCOME_DECLINED,
};
use crate::store::ports::{Commit, MerchantStore, SignalStore};

contracts!(
    observations_count_per_tenant_key_and_window,
    counts_read_at_most_the_newest_rows_and_prune_forgets_old_ones,
);

const HOUR: i64 = 3_600_000;
const NOW: i64 = 1_800_000_000_000;

fn row(id: &str, at: i64, card: &str, ip: Option<&str>, email: Option<&str>, outcome: i64) -> ObservationRow {
    ObservationRow {
        payment_id: id.to_owned(),
        at,
        card_key: card.to_owned(),
        ip_key: ip.map(str::to_owned),
        email_key: email.map(str::to_owned),
        currency: "usd".to_owned(),
        amount: 1_000,
        outcome,
    }
}

fn keys<'a>(card: &'a str, ip: Option<&'a str>, email: Option<&'a str>) -> ObservationKeys<'a> {
    ObservationKeys {
        card_key: card,
        ip_key: ip,
        email_key: email,
    }
}

async fn observations_count_per_tenant_key_and_window<S: SignalStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Signals").await;
    let test = Tenant::new(merchant.id.clone(), Mode::Test);
    let live = Tenant::new(merchant.id.clone(), Mode::Live);
    let other = Tenant::new(stored_merchant(store, "Other").await.id, Mode::Test);
    let rows = [
        row(
            "pay_1",
            NOW - 30 * HOUR,
            "card_a",
            Some("ip_1"),
            Some("em_1"),
            OUTCOME_ALLOWED,
        ),
        row(
            "pay_2",
            NOW - 5 * HOUR,
            "card_a",
            Some("ip_1"),
            Some("em_1"),
            OUTCOME_DECLINED,
        ),
        row("pay_3", NOW - HOUR / 2, "card_a", Some("ip_1"), None, OUTCOME_DECLINED),
        row(
            "pay_4",
            NOW - HOUR / 4,
            "card_b",
            Some("ip_1"),
            Some("em_1"),
            OUTCOME_BLOCKED,
        ),
        row("pay_5", NOW - HOUR / 5, "card_c", Some("ip_2"), None, OUTCOME_ALLOWED),
    ];
    commit(store, |work| {
        for r in &rows {
            store.insert_observation(work, &test, r);
        }
        // The same confirm recorded again is ignored.
        store.insert_observation(work, &test, &rows[0]);
        store.insert_observation(
            work,
            &live,
            &row("pay_9", NOW - 60_000, "card_a", Some("ip_1"), None, 1),
        );
        store.insert_observation(
            work,
            &other,
            &row("pay_9", NOW - 60_000, "card_a", Some("ip_1"), None, 1),
        );
    })
    .await
    .unwrap();
    let found = store
        .observed_counts(
            &test,
            keys("card_a", Some("ip_1"), Some("em_1")),
            NOW - HOUR,
            NOW - 24 * HOUR,
        )
        .await
        .unwrap();
    assert_eq!(
        found.card,
        KeyCounts {
            payments_24h: 2,
            payments_1h: 1,
            declines_24h: 2,
            declines_1h: 1,
            cards_24h: 0,
            cards_1h: 0,
        },
        "distinct cards are counted for the IP only"
    );
    assert_eq!(
        found.ip,
        KeyCounts {
            payments_24h: 3,
            payments_1h: 2,
            declines_24h: 2,
            declines_1h: 1,
            cards_24h: 2,
            cards_1h: 2,
        },
        "a blocked confirm is an attempt, not a decline"
    );
    assert_eq!((found.email.payments_24h, found.email.payments_1h), (2, 1));
    assert!(found.card_seen, "seen 30 hours ago, outside the windows");
    let fresh = store
        .observed_counts(&test, keys("card_z", None, None), NOW - HOUR, NOW - 24 * HOUR)
        .await
        .unwrap();
    assert_eq!((fresh.card, fresh.ip, fresh.email), Default::default());
    assert!(!fresh.card_seen);
    // The other mode and another merchant count only their own.
    for elsewhere in [&live, &other] {
        let theirs = store
            .observed_counts(
                elsewhere,
                keys("card_a", Some("ip_1"), Some("em_1")),
                NOW - HOUR,
                NOW - 24 * HOUR,
            )
            .await
            .unwrap();
        assert_eq!(
            (
                theirs.card.payments_1h,
                theirs.ip.payments_1h,
                theirs.email.payments_24h
            ),
            (1, 1, 0)
        );
        assert_eq!(theirs.card.declines_1h, 1);
    }
    assert_eq!(store.observed_amounts(&test, "usd").await.unwrap(), (5, 5_000));
    assert_eq!(store.observed_amounts(&test, "eur").await.unwrap(), (0, 0));
}

async fn counts_read_at_most_the_newest_rows_and_prune_forgets_old_ones<S: SignalStore + MerchantStore + Commit>(
    store: &S,
) {
    let merchant = stored_merchant(store, "Busy").await;
    let test = Tenant::new(merchant.id.clone(), Mode::Test);
    let n = MAX_COUNTED + 5;
    commit(store, |work| {
        for i in 0..n {
            let card = format!("card_{i}");
            let r = row(
                &format!("pay_{i:05}"),
                NOW - 1_000 - i,
                &card,
                Some("nat"),
                None,
                OUTCOME_ALLOWED,
            );
            store.insert_observation(work, &test, &r);
        }
    })
    .await
    .unwrap();
    let found = store
        .observed_counts(&test, keys("card_0", Some("nat"), None), NOW - HOUR, NOW - 24 * HOUR)
        .await
        .unwrap();
    assert_eq!(
        (found.ip.payments_24h, found.ip.cards_1h),
        (MAX_COUNTED, MAX_COUNTED),
        "saturated"
    );
    assert_eq!(
        store.observed_amounts(&test, "usd").await.unwrap().0,
        n,
        "the usual amount reads more"
    );
    // Everything but the newest ten is older than the cut.
    let pruned = store.prune_observations(NOW - 1_000 - 9).await.unwrap();
    assert_eq!(pruned, u64::try_from(n - 10).unwrap());
    let left = store
        .observed_counts(&test, keys("card_0", Some("nat"), None), NOW - HOUR, NOW - 24 * HOUR)
        .await
        .unwrap();
    assert_eq!(left.ip.payments_24h, 10);
}
