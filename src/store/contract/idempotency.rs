//! The idempotency port's contract.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{commit, contracts, stored_merchant};
use crate::domain::time::Timestamp;
use crate::store::idempotency_keys::{Finished, NewClaim, RecordKey, DONE, IN_PROGRESS};
use crate::store::ports::{Commit, IdempotencyStore, MerchantStore};
use crate::store::StoreError;

contracts!(
    a_key_is_claimed_once_while_its_record_lives,
    only_the_holder_finishes_or_releases_a_record,
    a_record_is_seen_only_by_its_tenant_and_lineage,
    expired_records_are_swept,
    kek_walk_pages_stored_answers_and_rewraps_only_unchanged_ones,
);

const T0: i64 = 1_700_000_000_000;

fn claim<'a>(record: RecordKey<'a>, mac: &'a str, request: &'a str, at: i64) -> NewClaim<'a> {
    NewClaim {
        record,
        request_mac: mac,
        request_id: request,
        now: Timestamp::from_millis(at),
        locked_until: Timestamp::from_millis(at + 60_000),
        expires_at: Timestamp::from_millis(at + 86_400_000),
    }
}

const FINISHED: Finished<'static> = Finished {
    status_code: 200,
    response: "c2VhbGVk",
    wrapped_dek: "d3JhcHBlZA==",
    kek_version: 1,
};

async fn claimed<S: IdempotencyStore + Commit>(store: &S, c: &NewClaim<'_>) -> Result<(), StoreError> {
    commit(store, |work| store.claim_idempotency_key(work, c)).await
}

async fn finish<S: IdempotencyStore + Commit>(store: &S, record: RecordKey<'_>, request: &str) -> bool {
    let changed = Arc::new(AtomicBool::new(false));
    commit(store, |work| {
        store.finish_idempotency_record(work, record, request, &FINISHED, Arc::clone(&changed))
    })
    .await
    .unwrap();
    changed.load(Ordering::Relaxed)
}

async fn a_key_is_claimed_once_while_its_record_lives<S: IdempotencyStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Idem").await;
    let record = RecordKey {
        merchant_id: merchant.id.as_str(),
        mode: "test",
        lineage_id: "key_a",
        key: "order-1",
    };
    claimed(store, &claim(record, "mac1", "req_1", T0)).await.unwrap();
    let row = store.get_idempotency_record(record).await.unwrap().unwrap();
    assert_eq!((row.state.as_str(), row.request_id.as_str()), (IN_PROGRESS, "req_1"));
    assert_eq!((row.locked_until, row.expires_at), (T0 + 60_000, T0 + 86_400_000));

    // Held and locked: the same request or another one is a duplicate.
    for mac in ["mac1", "mac2"] {
        let again = claimed(store, &claim(record, mac, "req_2", T0 + 1_000)).await;
        assert!(matches!(again, Err(StoreError::Duplicate)), "{again:?}");
    }
    // The lock expired: the same request takes it over, another may not.
    let other = claimed(store, &claim(record, "mac2", "req_2", T0 + 60_000)).await;
    assert!(matches!(other, Err(StoreError::Duplicate)), "{other:?}");
    claimed(store, &claim(record, "mac1", "req_3", T0 + 60_000))
        .await
        .unwrap();
    assert_eq!(
        store.get_idempotency_record(record).await.unwrap().unwrap().request_id,
        "req_3"
    );

    // Done: held until it expires, whatever the lock; then anyone claims it.
    assert!(finish(store, record, "req_3").await);
    let done = claimed(store, &claim(record, "mac1", "req_4", T0 + 200_000)).await;
    assert!(matches!(done, Err(StoreError::Duplicate)), "{done:?}");
    let expiry = T0 + 60_000 + 86_400_000;
    claimed(store, &claim(record, "mac9", "req_5", expiry)).await.unwrap();
    let row = store.get_idempotency_record(record).await.unwrap().unwrap();
    assert_eq!((row.state.as_str(), row.request_mac.as_str()), (IN_PROGRESS, "mac9"));
    assert!(row.response.is_none() && row.status_code.is_none());

    let unknown = RecordKey {
        merchant_id: "mer_unknown",
        ..record
    };
    let orphan = claimed(store, &claim(unknown, "mac1", "req_6", T0)).await;
    assert!(matches!(orphan, Err(StoreError::Constraint(_))), "{orphan:?}");
}

async fn only_the_holder_finishes_or_releases_a_record<S: IdempotencyStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Idem").await;
    let record = RecordKey {
        merchant_id: merchant.id.as_str(),
        mode: "test",
        lineage_id: "key_a",
        key: "order-2",
    };
    claimed(store, &claim(record, "mac1", "req_1", T0)).await.unwrap();
    assert!(!finish(store, record, "req_other").await, "not the holder");
    commit(store, |work| {
        store.release_idempotency_record(work, record, "req_other")
    })
    .await
    .unwrap();
    assert_eq!(
        store.get_idempotency_record(record).await.unwrap().unwrap().state,
        IN_PROGRESS
    );

    assert!(finish(store, record, "req_1").await);
    let row = store.get_idempotency_record(record).await.unwrap().unwrap();
    assert_eq!(row.state, DONE);
    assert_eq!(
        (
            row.status_code,
            row.response.as_deref(),
            row.wrapped_dek.as_deref(),
            row.kek_version
        ),
        (Some(200), Some("c2VhbGVk"), Some("d3JhcHBlZA=="), Some(1))
    );
    assert!(!finish(store, record, "req_1").await, "finished once");
    // A finished record is not released.
    commit(store, |work| store.release_idempotency_record(work, record, "req_1"))
        .await
        .unwrap();
    assert!(store.get_idempotency_record(record).await.unwrap().is_some());

    let other = RecordKey {
        key: "order-3",
        ..record
    };
    claimed(store, &claim(other, "mac1", "req_7", T0)).await.unwrap();
    commit(store, |work| store.release_idempotency_record(work, other, "req_7"))
        .await
        .unwrap();
    assert!(store.get_idempotency_record(other).await.unwrap().is_none());
    claimed(store, &claim(other, "mac2", "req_8", T0 + 1)).await.unwrap();
}

async fn a_record_is_seen_only_by_its_tenant_and_lineage<S: IdempotencyStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Idem").await;
    let other = stored_merchant(store, "Other").await;
    let record = RecordKey {
        merchant_id: merchant.id.as_str(),
        mode: "test",
        lineage_id: "key_a",
        key: "order-4",
    };
    claimed(store, &claim(record, "mac1", "req_1", T0)).await.unwrap();
    for elsewhere in [
        RecordKey { mode: "live", ..record },
        RecordKey {
            lineage_id: "key_b",
            ..record
        },
        RecordKey {
            merchant_id: other.id.as_str(),
            ..record
        },
    ] {
        assert!(store.get_idempotency_record(elsewhere).await.unwrap().is_none());
        claimed(store, &claim(elsewhere, "mac2", "req_2", T0)).await.unwrap();
        assert!(!finish(store, elsewhere, "req_1").await);
    }
    assert_eq!(
        store.get_idempotency_record(record).await.unwrap().unwrap().request_mac,
        "mac1"
    );
}

async fn expired_records_are_swept<S: IdempotencyStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Idem").await;
    let record = |key| RecordKey {
        merchant_id: merchant.id.as_str(),
        mode: "test",
        lineage_id: "key_a",
        key,
    };
    claimed(store, &claim(record("old"), "mac1", "req_1", T0))
        .await
        .unwrap();
    claimed(store, &claim(record("new"), "mac1", "req_2", T0 + 10))
        .await
        .unwrap();
    let swept = store
        .delete_expired_idempotency_records(Timestamp::from_millis(T0 + 86_400_000))
        .await
        .unwrap();
    assert_eq!(swept, 1);
    assert!(store.get_idempotency_record(record("old")).await.unwrap().is_none());
    assert!(store.get_idempotency_record(record("new")).await.unwrap().is_some());
}

/// The KEK rotation's walk over stored answers: only records done and not
/// under the target version, each once, page by page from an empty cursor;
/// a re-wrap applies only while the record holds the wrapped key read.
async fn kek_walk_pages_stored_answers_and_rewraps_only_unchanged_ones<S: IdempotencyStore + MerchantStore + Commit>(
    store: &S,
) {
    let merchant = stored_merchant(store, "Rotating").await;
    let keys = ["order-1", "order-2", "order-3", "order-4"];
    let record = |key| RecordKey {
        merchant_id: merchant.id.as_str(),
        mode: "test",
        lineage_id: "key_a",
        key,
    };
    for key in keys {
        claimed(store, &claim(record(key), "mac", "req_1", T0)).await.unwrap();
        assert!(finish(store, record(key), "req_1").await);
    }
    // Held, with no answer yet: not walked, not counted.
    claimed(store, &claim(record("order-5"), "mac", "req_1", T0))
        .await
        .unwrap();
    assert_eq!(store.idempotency_responses_by_kek_version().await.unwrap(), [(1, 4)]);
    assert!(store
        .idempotency_responses_not_at_kek_version(1, record(""), 10)
        .await
        .unwrap()
        .is_empty());

    let start = RecordKey {
        merchant_id: "",
        mode: "",
        lineage_id: "",
        key: "",
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let cursor = after
            .as_ref()
            .map_or(start, crate::store::idempotency_keys::WrappedResponseRow::record);
        let page = store
            .idempotency_responses_not_at_kek_version(2, cursor, 3)
            .await
            .unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last().cloned() else { break };
        seen.extend(page);
        after = Some(last);
    }
    let mut walked: Vec<&str> = seen.iter().map(|r| r.key.as_str()).collect();
    walked.sort_unstable();
    assert_eq!(walked, keys);
    let first = seen.first().unwrap();
    assert_eq!(
        (
            first.kek_version,
            first.wrapped_dek.as_str(),
            first.response.as_str(),
            first.request_mac.as_str()
        ),
        (1, FINISHED.wrapped_dek, FINISHED.response, "mac")
    );

    let (stale, fresh) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(false)));
    commit(store, |work| {
        store.rewrap_idempotency_response(work, first.record(), "not-the-key", 2, "new", Arc::clone(&stale));
        store.rewrap_idempotency_response(work, first.record(), FINISHED.wrapped_dek, 2, "new", Arc::clone(&fresh));
    })
    .await
    .unwrap();
    assert!(!stale.load(Ordering::Relaxed) && fresh.load(Ordering::Relaxed));
    let row = store.get_idempotency_record(first.record()).await.unwrap().unwrap();
    assert_eq!((row.kek_version, row.wrapped_dek.as_deref()), (Some(2), Some("new")));
    assert_eq!(
        row.response.as_deref(),
        Some(FINISHED.response),
        "the answer is not touched"
    );
    // A record in progress is never re-wrapped.
    let held = Arc::new(AtomicBool::new(true));
    commit(store, |work| {
        store.rewrap_idempotency_response(work, record("order-5"), "", 2, "new", Arc::clone(&held))
    })
    .await
    .unwrap();
    assert!(!held.load(Ordering::Relaxed));
    assert_eq!(
        store.idempotency_responses_by_kek_version().await.unwrap(),
        [(1, 3), (2, 1)]
    );
}
