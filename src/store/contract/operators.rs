//! The operators port's contract: names are unique, the last accepted
//! TOTP step only rises (one of two concurrent acceptances of a step
//! fails), failures are counted per operator within a window, lockouts are
//! extended and never shortened, removal takes the failures along, and the
//! KEK re-wrap is conditional on the wrapped key read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{commit, contracts};
use crate::domain::ids::OperatorId;
use crate::domain::time::Timestamp;
use crate::store::operators::OperatorRow;
use crate::store::ports::{Commit, OperatorStore};
use crate::store::StoreError;

contracts!(
    names_are_unique_and_listed_in_order,
    a_step_is_accepted_once_and_only_upwards,
    failures_lockouts_and_removal,
    rewrap_is_conditional_and_counted_per_version,
);

fn row(name: &str) -> OperatorRow {
    OperatorRow {
        id: OperatorId::generate().unwrap().to_string(),
        name: name.to_owned(),
        kek_version: 1,
        wrapped_dek: format!("wrapped-{name}"),
        ciphertext: format!("sealed-{name}"),
        created_at: 1_700_000_000_000,
        last_used_step: None,
        locked_until: None,
    }
}

async fn add<S: OperatorStore + Commit>(store: &S, name: &str) -> OperatorRow {
    let r = row(name);
    commit(store, |w| store.insert_operator(w, &r)).await.unwrap();
    r
}

async fn names_are_unique_and_listed_in_order<S: OperatorStore + Commit>(store: &S) {
    assert_eq!(store.count_operators().await.unwrap(), 0);
    let bob = add(store, "bob").await;
    let alice = add(store, "alice").await;
    let again = row("bob");
    let dup = commit(store, |w| store.insert_operator(w, &again)).await;
    assert!(matches!(dup, Err(StoreError::Duplicate)), "{dup:?}");
    assert_eq!(store.count_operators().await.unwrap(), 2);
    assert_eq!(store.get_operator_by_name("bob").await.unwrap(), Some(bob.clone()));
    assert_eq!(store.get_operator_by_name("carol").await.unwrap(), None);
    let all = store.list_operators("", 10).await.unwrap();
    assert_eq!(all, [alice.clone(), bob.clone()]);
    assert_eq!(store.list_operators("alice", 10).await.unwrap(), [bob]);
    assert_eq!(store.list_operators("", 1).await.unwrap(), [alice]);
}

async fn a_step_is_accepted_once_and_only_upwards<S: OperatorStore + Commit>(store: &S) {
    let op = add(store, "alice").await;
    commit(store, |w| store.accept_operator_step(w, &op.id, 100))
        .await
        .unwrap();
    for step in [100, 99] {
        let again = commit(store, |w| store.accept_operator_step(w, &op.id, step)).await;
        assert!(matches!(again, Err(StoreError::Conflict)), "step {step}: {again:?}");
    }
    let stored = store.get_operator_by_name("alice").await.unwrap().unwrap();
    assert_eq!(stored.last_used_step, Some(100));
    commit(store, |w| store.accept_operator_step(w, &op.id, 101))
        .await
        .unwrap();
    let missing = commit(store, |w| store.accept_operator_step(w, "op_missing", 5)).await;
    assert!(matches!(missing, Err(StoreError::Conflict)));

    // Two acceptances of one step at once: exactly one applies.
    let (a, b) = tokio::join!(
        commit(store, |w| store.accept_operator_step(w, &op.id, 102)),
        commit(store, |w| store.accept_operator_step(w, &op.id, 102)),
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} {b:?}"
    );
    assert!(matches!(a.err().or(b.err()), Some(StoreError::Conflict)));
}

async fn failures_lockouts_and_removal<S: OperatorStore + Commit>(store: &S) {
    let at = |ms: i64| Timestamp::from_millis(1_700_000_000_000 + ms);
    let alice = add(store, "alice").await;
    let bob = add(store, "bob").await;
    for ms in [0, 10, 20] {
        commit(store, |w| store.record_operator_failure(w, &alice.id, at(ms)))
            .await
            .unwrap();
    }
    commit(store, |w| store.record_operator_failure(w, &bob.id, at(0)))
        .await
        .unwrap();
    assert_eq!(store.operator_failures_since(&alice.id, at(0)).await.unwrap(), 3);
    assert_eq!(store.operator_failures_since(&alice.id, at(10)).await.unwrap(), 2);
    assert_eq!(store.operator_failures_since(&bob.id, at(0)).await.unwrap(), 1);
    commit(store, |w| store.clear_operator_failures(w, &alice.id))
        .await
        .unwrap();
    assert_eq!(store.operator_failures_since(&alice.id, at(0)).await.unwrap(), 0);
    assert_eq!(store.operator_failures_since(&bob.id, at(0)).await.unwrap(), 1);

    let locked =
        |name: &'static str| async move { store.get_operator_by_name(name).await.unwrap().unwrap().locked_until };
    commit(store, |w| store.lock_operator(w, &bob.id, at(1_000)))
        .await
        .unwrap();
    commit(store, |w| store.lock_operator(w, &bob.id, at(500)))
        .await
        .unwrap();
    assert_eq!(locked("bob").await, Some(at(1_000).as_millis()), "never shortened");
    commit(store, |w| store.lock_operator(w, &bob.id, at(2_000)))
        .await
        .unwrap();
    assert_eq!(locked("bob").await, Some(at(2_000).as_millis()));
    assert_eq!(locked("alice").await, None);
    commit(store, |w| store.lock_operator(w, "op_missing", at(1)))
        .await
        .unwrap();

    commit(store, |w| store.delete_operator(w, &bob.id)).await.unwrap();
    assert_eq!(store.get_operator_by_name("bob").await.unwrap(), None);
    assert_eq!(store.operator_failures_since(&bob.id, at(0)).await.unwrap(), 0);
    let again = commit(store, |w| store.delete_operator(w, &bob.id)).await;
    assert!(matches!(again, Err(StoreError::Conflict)));
    assert_eq!(store.count_operators().await.unwrap(), 1);
}

async fn rewrap_is_conditional_and_counted_per_version<S: OperatorStore + Commit>(store: &S) {
    let alice = add(store, "alice").await;
    let bob = add(store, "bob").await;
    assert_eq!(store.operator_secrets_by_kek_version().await.unwrap(), [(1, 2)]);
    let mut ids = [alice.id.clone(), bob.id.clone()];
    ids.sort();
    let page: Vec<String> = store
        .operators_not_at_kek_version(2, "", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(page, ids);
    let changed = Arc::new(AtomicBool::new(false));
    commit(store, |w| {
        store.rewrap_operator(w, &alice.id, &alice.wrapped_dek, 2, "rewrapped", changed.clone())
    })
    .await
    .unwrap();
    assert!(changed.load(Ordering::Relaxed));
    let stale = Arc::new(AtomicBool::new(true));
    commit(store, |w| {
        store.rewrap_operator(w, &alice.id, &alice.wrapped_dek, 2, "again", stale.clone())
    })
    .await
    .unwrap();
    assert!(
        !stale.load(Ordering::Relaxed),
        "the wrapped key changed meanwhile: skipped"
    );
    let stored = store.get_operator_by_name("alice").await.unwrap().unwrap();
    assert_eq!((stored.kek_version, stored.wrapped_dek.as_str()), (2, "rewrapped"));
    assert_eq!(stored.ciphertext, alice.ciphertext, "only the wrapped key changes");
    assert_eq!(store.operator_secrets_by_kek_version().await.unwrap(), [(1, 1), (2, 1)]);
    let left: Vec<String> = store
        .operators_not_at_kek_version(2, "", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, [bob.id]);
}
