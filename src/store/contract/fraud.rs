//! The fraud port's contract.

use super::{commit, contracts, stored_merchant};
use crate::domain::api_key::Mode;
use crate::domain::tenant::Tenant;
use crate::store::fraud::{ListRow, RuleSetRow};
use crate::store::ports::{Commit, FraudStore, MerchantStore};
use crate::store::StoreError;

contracts!(
    versions_read_back_per_tenant_and_one_is_active,
    a_version_collision_fails_the_whole_unit,
    activating_a_missing_version_fails_the_unit,
    lists_are_replaced_whole_per_tenant,
);

fn version(n: i64, rules: &str) -> RuleSetRow {
    RuleSetRow {
        version: n,
        rules: rules.to_owned(),
        sha256: format!("{n:064x}"),
        created_at: 1_700_000_000_000 + n,
        created_by: Some("key_1".to_owned()),
        review_at: 65,
        block_at: 85,
    }
}

async fn versions_read_back_per_tenant_and_one_is_active<S: FraudStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Rules").await;
    let other = stored_merchant(store, "Other").await;
    let test = Tenant::new(merchant.id.clone(), Mode::Test);
    assert!(store.get_active_rule_set(&test).await.unwrap().is_none());
    let one = version(1, "rule a : block when amount > 1");
    let two = version(2, "rule b : review when amount > 2");
    commit(store, |work| {
        store.insert_rule_set(work, &test, &one);
        store.activate_rule_set(work, &test, 1, 10);
    })
    .await
    .unwrap();
    assert_eq!(store.get_active_rule_set(&test).await.unwrap(), Some(one.clone()));
    commit(store, |work| {
        store.insert_rule_set(work, &test, &two);
        store.activate_rule_set(work, &test, 2, 11);
    })
    .await
    .unwrap();
    assert_eq!(store.get_active_rule_set(&test).await.unwrap(), Some(two.clone()));
    assert_eq!(
        store.list_rule_sets(&test, 10).await.unwrap(),
        [two.clone(), one.clone()]
    );
    assert_eq!(
        store.list_rule_sets(&test, 1).await.unwrap(),
        std::slice::from_ref(&two)
    );
    assert_eq!(store.get_rule_set(&test, 1).await.unwrap(), Some(one.clone()));
    assert!(store.get_rule_set(&test, 3).await.unwrap().is_none());
    // Back to version 1.
    commit(store, |work| store.activate_rule_set(work, &test, 1, 12))
        .await
        .unwrap();
    assert_eq!(store.get_active_rule_set(&test).await.unwrap(), Some(one.clone()));
    // The other mode and another merchant see nothing of it.
    for elsewhere in [
        Tenant::new(merchant.id.clone(), Mode::Live),
        Tenant::new(other.id.clone(), Mode::Test),
    ] {
        assert!(store.get_active_rule_set(&elsewhere).await.unwrap().is_none());
        assert!(store.get_rule_set(&elsewhere, 1).await.unwrap().is_none());
        assert!(store.list_rule_sets(&elsewhere, 10).await.unwrap().is_empty());
    }
}

async fn a_version_collision_fails_the_whole_unit<S: FraudStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Racing").await;
    let test = Tenant::new(merchant.id.clone(), Mode::Test);
    commit(store, |work| {
        store.insert_rule_set(work, &test, &version(1, "rule a : block when amount > 1"));
        store.activate_rule_set(work, &test, 1, 10);
    })
    .await
    .unwrap();
    let list = ListRow {
        name: "late".into(),
        entries: vec!["x".into()],
        updated_at: 1,
    };
    let result = commit(store, |work| {
        store.put_fraud_list(work, &test, &list);
        store.insert_rule_set(work, &test, &version(1, "rule z : allow when amount > 1"));
        store.activate_rule_set(work, &test, 1, 11);
    })
    .await;
    assert!(matches!(result, Err(StoreError::Duplicate)), "{result:?}");
    let active = store.get_active_rule_set(&test).await.unwrap().unwrap();
    assert_eq!(active.rules, "rule a : block when amount > 1");
    assert!(
        store.get_fraud_list(&test, "late").await.unwrap().is_none(),
        "all or nothing"
    );
    // The same version number in the other mode is another set.
    let live = Tenant::new(merchant.id.clone(), Mode::Live);
    commit(store, |work| {
        store.insert_rule_set(work, &live, &version(1, "rule l : block when amount > 1"))
    })
    .await
    .unwrap();
}

async fn activating_a_missing_version_fails_the_unit<S: FraudStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Missing").await;
    let test = Tenant::new(merchant.id.clone(), Mode::Test);
    let live = Tenant::new(merchant.id.clone(), Mode::Live);
    commit(store, |work| {
        store.insert_rule_set(work, &live, &version(1, "rule a : block when amount > 1"))
    })
    .await
    .unwrap();
    // Version 1 exists, but in live mode only.
    let result = commit(store, |work| store.activate_rule_set(work, &test, 1, 10)).await;
    assert!(result.is_err(), "{result:?}");
    assert!(store.get_active_rule_set(&test).await.unwrap().is_none());
    assert!(store.get_active_rule_set(&live).await.unwrap().is_none());
}

async fn lists_are_replaced_whole_per_tenant<S: FraudStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Lists").await;
    let test = Tenant::new(merchant.id.clone(), Mode::Test);
    let live = Tenant::new(merchant.id.clone(), Mode::Live);
    let first = ListRow {
        name: "trusted".into(),
        entries: vec!["a@example.com".into(), "b@example.com".into()],
        updated_at: 1,
    };
    commit(store, |work| store.put_fraud_list(work, &test, &first))
        .await
        .unwrap();
    assert_eq!(store.get_fraud_list(&test, "trusted").await.unwrap(), Some(first));
    let second = ListRow {
        name: "trusted".into(),
        entries: vec!["c@example.com".into()],
        updated_at: 2,
    };
    commit(store, |work| store.put_fraud_list(work, &test, &second))
        .await
        .unwrap();
    assert_eq!(store.get_fraud_list(&test, "trusted").await.unwrap(), Some(second));
    assert!(store.get_fraud_list(&live, "trusted").await.unwrap().is_none());
    assert!(store.get_fraud_list(&test, "other").await.unwrap().is_none());
    let empty = ListRow {
        name: "empty".into(),
        entries: Vec::new(),
        updated_at: 3,
    };
    commit(store, |work| store.put_fraud_list(work, &live, &empty))
        .await
        .unwrap();
    assert_eq!(store.get_fraud_list(&live, "empty").await.unwrap(), Some(empty));
}
