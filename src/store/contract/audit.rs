//! The audit port's contract: what a commit appends, and that it chains.

use super::{commit, contracts, new_merchant};
use crate::domain::audit::{AuditEvent, ChainVerifier, Outcome};
use crate::store::ports::{AuditStore, Commit, MerchantStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

contracts!(committed_entries_chain_from_the_head, a_failed_unit_appends_nothing,);

fn event(action: &str) -> AuditEvent {
    let mut event = AuditEvent::new(action, Outcome::Success);
    event.reason = Some("contract".to_owned());
    event
}

async fn committed_entries_chain_from_the_head<S: AuditStore + Commit>(store: &S) {
    let (before, _) = store.audit_head().await.unwrap();
    let mut work = UnitOfWork::new();
    work.audit(event("contract.first"));
    work.audit(event("contract.second"));
    store.commit(work).await.unwrap();
    let mut work = UnitOfWork::new();
    work.audit(event("contract.third"));
    store.commit(work).await.unwrap();

    let (head, head_hash) = store.audit_head().await.unwrap();
    assert_eq!(head, before + 3);
    let page = store.audit_page(before, 10).await.unwrap();
    let actions: Vec<&str> = page.iter().map(|r| r.event.action.as_str()).collect();
    assert_eq!(actions, ["contract.first", "contract.second", "contract.third"]);
    assert_eq!(page.last().unwrap().hash, head_hash);
    assert_eq!(store.audit_page(before, 2).await.unwrap().len(), 2);
    assert!(store.audit_page(head, 10).await.unwrap().is_empty());

    let mut verifier = ChainVerifier::default();
    let mut after = 0;
    loop {
        let page = store.audit_page(after, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        for record in &page {
            verifier.check(record).unwrap();
        }
    }
    verifier.finish(head, &head_hash).unwrap();
}

async fn a_failed_unit_appends_nothing<S: AuditStore + MerchantStore + Commit>(store: &S) {
    let merchant = new_merchant("Audited");
    commit(store, |work| store.insert_merchant(work, &merchant))
        .await
        .unwrap();
    let head = store.audit_head().await.unwrap();
    let result = commit(store, |work| {
        work.audit(event("contract.lost"));
        store.insert_merchant(work, &merchant);
    })
    .await;
    assert!(matches!(result, Err(StoreError::Duplicate)), "{result:?}");
    assert_eq!(store.audit_head().await.unwrap(), head);
}
