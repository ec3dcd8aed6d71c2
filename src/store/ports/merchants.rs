//! The merchants port: merchants by id, and their settings and freeze.
//! Merchants belong to no mode: one merchant has test and live objects.

use std::future::Future;

use crate::domain::ids::MerchantId;
use crate::domain::merchant::{ElementOrigin, Freeze, Merchant, MerchantName};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

pub trait MerchantStore: Send + Sync {
    /// The merchant `id`; `None` if there is none.
    fn get_merchant(&self, id: &MerchantId) -> impl Future<Output = Result<Option<Merchant>, StoreError>> + Send;

    /// Up to `limit` merchants with ids after `after` (all, if `None`), in
    /// id order; an empty page past the last one.
    fn list_merchants(
        &self,
        after: Option<&MerchantId>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Merchant>, StoreError>> + Send;

    /// Stages the merchant's insertion; an id collision fails the unit with
    /// `Duplicate`.
    fn insert_merchant(&self, work: &mut UnitOfWork, merchant: &Merchant);

    /// Stages a rename; a merchant that does not exist fails the unit with
    /// `Conflict`.
    fn rename_merchant(&self, work: &mut UnitOfWork, id: &MerchantId, name: &MerchantName);

    /// Stages the replacement of the merchant's element origins; a merchant
    /// that does not exist fails the unit with `Conflict`.
    fn set_element_origins(&self, work: &mut UnitOfWork, id: &MerchantId, origins: &[ElementOrigin]);

    /// Stages a freeze; a merchant that does not exist or is already frozen
    /// at commit time fails the unit with `Conflict`.
    fn freeze_merchant(&self, work: &mut UnitOfWork, id: &MerchantId, freeze: &Freeze);

    /// Stages lifting the freeze; a merchant that does not exist or is not
    /// frozen at commit time fails the unit with `Conflict`.
    fn unfreeze_merchant(&self, work: &mut UnitOfWork, id: &MerchantId);
}
