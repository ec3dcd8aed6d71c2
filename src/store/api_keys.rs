//! The `api_keys` table. Keys are found by the keyed hash of their plaintext;
//! the plaintext itself is never stored. Not found comes back as `None`; a hash
//! or id collision as `StoreError::Duplicate`.

use sqlx::{Any, Executor};

use super::unit_of_work::UnitOfWork;
use super::write_op::{Failure, WriteOp};
use super::{json_column, to_json_column, After, Store, StoreError};
use crate::domain::api_key::ApiKey;
use crate::domain::api_key::{KeyKind, Mode};
use crate::domain::ids::{ApiKeyId, MerchantId};
use crate::domain::merchant::{Freeze, Merchant, MerchantName};
use crate::domain::money::Currency;
use crate::domain::permission::Permission;
use crate::domain::restrictions::KeyRestrictions;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;

const COLUMNS: &str = "id, merchant_id, kind, mode, prefix, last4, permissions, max_amount, currencies, \
                       allowed_ips, description, created_at, expires_at, revoked_at, last_used_at, rotated_to, \
                       lineage_id, frozen_at, frozen_reason";

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    merchant_id: String,
    kind: String,
    mode: String,
    prefix: String,
    last4: String,
    permissions: String,
    max_amount: Option<i64>,
    currencies: String,
    allowed_ips: String,
    description: Option<String>,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
    rotated_to: Option<String>,
    lineage_id: Option<String>,
    frozen_at: Option<i64>,
    frozen_reason: Option<String>,
}

impl TryFrom<Row> for ApiKey {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        let currencies: Vec<String> = json_column("currencies", &r.currencies)?;
        let currencies = currencies
            .iter()
            .map(|c| Currency::parse(c).map_err(|_| StoreError::Corrupt("api_keys.currencies".into())))
            .collect::<Result<_, _>>()?;
        Ok(ApiKey {
            merchant_id: MerchantId::from_trusted(r.merchant_id),
            kind: KeyKind::parse(&r.kind).ok_or_else(|| StoreError::Corrupt("api_keys.kind".into()))?,
            mode: Mode::parse(&r.mode).ok_or_else(|| StoreError::Corrupt("api_keys.mode".into()))?,
            prefix: r.prefix,
            last4: r.last4,
            permissions: json_column::<Vec<Permission>>("permissions", &r.permissions)?,
            restrictions: KeyRestrictions {
                max_amount: r.max_amount,
                currencies,
                allowed_ips: json_column("allowed_ips", &r.allowed_ips)?,
            },
            description: r.description,
            created_at: Timestamp::from_millis(r.created_at),
            expires_at: r.expires_at.map(Timestamp::from_millis),
            revoked_at: r.revoked_at.map(Timestamp::from_millis),
            last_used_at: r.last_used_at.map(Timestamp::from_millis),
            rotated_to: r.rotated_to.map(ApiKeyId::from_trusted),
            // Every row has one since migration 16; a key is its own lineage.
            lineage: ApiKeyId::from_trusted(r.lineage_id.unwrap_or_else(|| r.id.clone())),
            frozen: super::merchants::freeze_from_columns(r.frozen_at, r.frozen_reason),
            id: ApiKeyId::from_trusted(r.id),
        })
    }
}

/// Adds a key record with the keyed hash of its plaintext; a hash or id
/// collision fails the unit with `Duplicate`.
pub fn insert(work: &mut UnitOfWork, key: &ApiKey, key_hash: &str) {
    let currencies: Vec<&str> = key.restrictions.currencies.iter().map(|c| c.code()).collect();
    work.push(WriteOp::new(
        "INSERT INTO api_keys (id, merchant_id, kind, mode, key_hash, prefix, last4, permissions, max_amount, \
         currencies, allowed_ips, description, created_at, expires_at, revoked_at, last_used_at, rotated_to, \
         lineage_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, NULL, NULL, NULL, $15)",
        vec![
            key.id.as_str().into(),
            key.merchant_id.as_str().into(),
            key.kind.as_str().into(),
            key.mode.as_str().into(),
            key_hash.into(),
            key.prefix.as_str().into(),
            key.last4.as_str().into(),
            to_json_column(&key.permissions).into(),
            key.restrictions.max_amount.into(),
            to_json_column(&currencies).into(),
            to_json_column(&key.restrictions.allowed_ips).into(),
            key.description.as_deref().into(),
            key.created_at.as_millis().into(),
            key.expires_at.map(Timestamp::as_millis).into(),
            key.lineage.as_str().into(),
        ],
    ));
}

/// The key `id`, whichever merchant owns it (operator use).
pub async fn get<'e>(db: impl Executor<'e, Database = Any>, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
    let row: Option<Row> = sqlx::query_as(&format_select("id = $1"))
        .bind(id.as_str())
        .fetch_optional(db)
        .await?;
    row.map(ApiKey::try_from).transpose()
}

/// The key `id` only if it is `tenant`'s; a key of another merchant or of the
/// other mode is `None`.
pub async fn get_for_tenant<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    id: &ApiKeyId,
) -> Result<Option<ApiKey>, StoreError> {
    let row: Option<Row> = sqlx::query_as(&format_select("id = $1 AND merchant_id = $2 AND mode = $3"))
        .bind(id.as_str())
        .bind(tenant.merchant_str())
        .bind(tenant.mode_str())
        .fetch_optional(db)
        .await?;
    row.map(ApiKey::try_from).transpose()
}

/// Up to `limit` keys of `tenant` with ids after `after`, in id order.
pub async fn list_for_tenant<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    after: After<'_>,
    limit: i64,
) -> Result<Vec<ApiKey>, StoreError> {
    let sql = format!(
        "{} ORDER BY id LIMIT $3",
        format_select("merchant_id = $1 AND id > $2 AND mode = $4")
    );
    let rows: Vec<Row> = sqlx::query_as(&sql)
        .bind(tenant.merchant_str())
        .bind(after.unwrap_or(""))
        .bind(limit)
        .bind(tenant.mode_str())
        .fetch_all(db)
        .await?;
    rows.into_iter().map(ApiKey::try_from).collect()
}

/// Whether `merchant` was ever issued a live key (revoked or not).
pub async fn merchant_has_live_keys<'e>(
    db: impl Executor<'e, Database = Any>,
    merchant: &MerchantId,
) -> Result<bool, StoreError> {
    let found: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM api_keys WHERE merchant_id = $1 AND mode = 'live' LIMIT 1")
            .bind(merchant.as_str())
            .fetch_optional(db)
            .await?;
    Ok(found.is_some())
}

/// Up to `limit` keys of `merchant`, of both modes, with ids after `after`, in
/// id order (operator use).
pub async fn list_for_merchant<'e>(
    db: impl Executor<'e, Database = Any>,
    merchant: &MerchantId,
    after: After<'_>,
    limit: i64,
) -> Result<Vec<ApiKey>, StoreError> {
    let sql = format!("{} ORDER BY id LIMIT $3", format_select("merchant_id = $1 AND id > $2"));
    let rows: Vec<Row> = sqlx::query_as(&sql)
        .bind(merchant.as_str())
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.into_iter().map(ApiKey::try_from).collect()
}

/// Marks the key revoked at `at`; a key that does not exist or is revoked
/// already at commit time fails the unit with `Conflict`.
pub fn revoke(work: &mut UnitOfWork, id: &ApiKeyId, at: Timestamp) {
    work.push(
        WriteOp::new(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            vec![at.as_millis().into(), id.as_str().into()],
        )
        .expect_one(Failure::Conflict),
    );
}

/// Records that `id` was replaced by `successor` and now expires at
/// `expires_at`; a key that was rotated or revoked meanwhile fails the unit
/// with `Conflict`.
pub fn mark_rotated(work: &mut UnitOfWork, id: &ApiKeyId, successor: &ApiKeyId, expires_at: Timestamp) {
    work.push(
        WriteOp::new(
            "UPDATE api_keys SET rotated_to = $1, expires_at = $2 \
             WHERE id = $3 AND rotated_to IS NULL AND revoked_at IS NULL",
            vec![
                successor.as_str().into(),
                expires_at.as_millis().into(),
                id.as_str().into(),
            ],
        )
        .expect_one(Failure::Conflict),
    );
}

/// Freezes the key; one that does not exist or is frozen already at commit
/// time fails the unit with `Conflict`.
pub fn freeze(work: &mut UnitOfWork, id: &ApiKeyId, freeze: &Freeze) {
    work.push(
        WriteOp::new(
            "UPDATE api_keys SET frozen_at = $1, frozen_reason = $2 WHERE id = $3 AND frozen_at IS NULL",
            vec![
                freeze.at.as_millis().into(),
                freeze.reason.as_str().into(),
                id.as_str().into(),
            ],
        )
        .expect_one(Failure::Conflict),
    );
}

/// Lifts the key's freeze; one that does not exist or is not frozen at
/// commit time fails the unit with `Conflict`.
pub fn unfreeze(work: &mut UnitOfWork, id: &ApiKeyId) {
    work.push(
        WriteOp::new(
            "UPDATE api_keys SET frozen_at = NULL, frozen_reason = NULL WHERE id = $1 AND frozen_at IS NOT NULL",
            vec![id.as_str().into()],
        )
        .expect_one(Failure::Conflict),
    );
}

/// Moves `last_used_at` forward (never back) to `at`.
pub fn touch_last_used_op(id: &str, at: i64) -> WriteOp {
    WriteOp::new(
        "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
        vec![at.into(), id.into()],
    )
}

impl super::ports::ApiKeyStore for Store {
    async fn get_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        get(self.reader(), id).await
    }

    async fn get_key_for_tenant(&self, tenant: &Tenant, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        get_for_tenant(self.reader(), tenant, id).await
    }

    async fn list_keys_for_tenant(
        &self,
        tenant: &Tenant,
        after: Option<&ApiKeyId>,
        limit: i64,
    ) -> Result<Vec<ApiKey>, StoreError> {
        list_for_tenant(self.reader(), tenant, after.map(ApiKeyId::as_str), limit).await
    }

    async fn list_keys_for_merchant(
        &self,
        merchant: &MerchantId,
        after: Option<&ApiKeyId>,
        limit: i64,
    ) -> Result<Vec<ApiKey>, StoreError> {
        list_for_merchant(self.reader(), merchant, after.map(ApiKeyId::as_str), limit).await
    }

    async fn merchant_has_live_keys(&self, merchant: &MerchantId) -> Result<bool, StoreError> {
        merchant_has_live_keys(self.reader(), merchant).await
    }

    fn insert_key(&self, work: &mut UnitOfWork, key: &ApiKey, key_hash: &str) {
        insert(work, key, key_hash);
    }

    fn revoke_key(&self, work: &mut UnitOfWork, id: &ApiKeyId, at: Timestamp) {
        revoke(work, id, at);
    }

    fn mark_key_rotated(&self, work: &mut UnitOfWork, id: &ApiKeyId, successor: &ApiKeyId, expires_at: Timestamp) {
        mark_rotated(work, id, successor, expires_at);
    }

    fn touch_key_last_used(&self, work: &mut UnitOfWork, id: &str, at: i64) {
        work.push(touch_last_used_op(id, at));
    }

    fn freeze_key(&self, work: &mut UnitOfWork, id: &ApiKeyId, how: &Freeze) {
        freeze(work, id, how);
    }

    fn unfreeze_key(&self, work: &mut UnitOfWork, id: &ApiKeyId) {
        unfreeze(work, id);
    }
}

/// Builds a SELECT over the fixed column list with a fixed WHERE clause. Only
/// ever called with literal clauses from this module, never with input.
fn format_select(where_clause: &'static str) -> String {
    format!("SELECT {COLUMNS} FROM api_keys WHERE {where_clause}")
}

/// Everything authentication needs, read in one statement: the key with this
/// hash (if any) with its merchant's name, and the lockout of the client
/// address (if any is in force at `now`).
#[derive(Debug)]
pub struct AuthLookup {
    pub key: Option<(ApiKey, String, Merchant)>,
    pub locked_until: Option<Timestamp>,
}

#[derive(sqlx::FromRow)]
struct AuthRow {
    id: Option<String>,
    merchant_id: Option<String>,
    kind: Option<String>,
    mode: Option<String>,
    prefix: Option<String>,
    last4: Option<String>,
    permissions: Option<String>,
    max_amount: Option<i64>,
    currencies: Option<String>,
    allowed_ips: Option<String>,
    description: Option<String>,
    created_at: Option<i64>,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
    rotated_to: Option<String>,
    lineage_id: Option<String>,
    key_hash: Option<String>,
    merchant_name: Option<String>,
    merchant_created_at: Option<i64>,
    merchant_element_origins: Option<String>,
    merchant_connector: Option<String>,
    merchant_live_connector: Option<String>,
    locked_until: Option<i64>,
    merchant_frozen_at: Option<i64>,
    merchant_frozen_reason: Option<String>,
    frozen_at: Option<i64>,
    frozen_reason: Option<String>,
}

const AUTH_LOOKUP: &str = "SELECT k.id, k.merchant_id, k.kind, k.mode, k.prefix, k.last4, k.permissions, \
     k.max_amount, k.currencies, k.allowed_ips, k.description, k.created_at, k.expires_at, k.revoked_at, \
     k.last_used_at, k.rotated_to, k.lineage_id, k.key_hash, m.name AS merchant_name, m.created_at AS merchant_created_at, \
     m.element_origins AS merchant_element_origins, m.connector AS merchant_connector, l.locked_until, \
     m.frozen_at AS merchant_frozen_at, m.frozen_reason AS merchant_frozen_reason, \
     m.live_connector AS merchant_live_connector, k.frozen_at, k.frozen_reason \
     FROM (SELECT 1 AS probe) AS p \
     LEFT JOIN api_keys k ON k.key_hash = $1 \
     LEFT JOIN merchants m ON m.id = k.merchant_id \
     LEFT JOIN ip_lockouts l ON l.client_ip = $2 AND l.locked_until > $3";

/// One read: the key (by keyed hash), its merchant and the client address's
/// lockout. The probe row always exists, so the lockout is read even when no
/// key matches (and a known and an unknown key cost the same). On SQLite it
/// runs inline ([`super::sqlite_fast`]); on PostgreSQL through the pool.
pub async fn lookup_for_auth(
    store: &Store,
    key_hash: &str,
    client_ip: &str,
    now: Timestamp,
) -> Result<AuthLookup, StoreError> {
    let row = match store.fast_reader() {
        Some(fast) => fast.with(|conn| {
            let mut stmt = conn.prepare_cached(AUTH_LOOKUP)?;
            stmt.query_row(rusqlite::params![key_hash, client_ip, now.as_millis()], |r| {
                Ok(AuthRow {
                    id: r.get(0)?,
                    merchant_id: r.get(1)?,
                    kind: r.get(2)?,
                    mode: r.get(3)?,
                    prefix: r.get(4)?,
                    last4: r.get(5)?,
                    permissions: r.get(6)?,
                    max_amount: r.get(7)?,
                    currencies: r.get(8)?,
                    allowed_ips: r.get(9)?,
                    description: r.get(10)?,
                    created_at: r.get(11)?,
                    expires_at: r.get(12)?,
                    revoked_at: r.get(13)?,
                    last_used_at: r.get(14)?,
                    rotated_to: r.get(15)?,
                    lineage_id: r.get(16)?,
                    key_hash: r.get(17)?,
                    merchant_name: r.get(18)?,
                    merchant_created_at: r.get(19)?,
                    merchant_element_origins: r.get(20)?,
                    merchant_connector: r.get(21)?,
                    locked_until: r.get(22)?,
                    merchant_frozen_at: r.get(23)?,
                    merchant_frozen_reason: r.get(24)?,
                    merchant_live_connector: r.get(25)?,
                    frozen_at: r.get(26)?,
                    frozen_reason: r.get(27)?,
                })
            })
        })?,
        None => {
            sqlx::query_as(AUTH_LOOKUP)
                .bind(key_hash)
                .bind(client_ip)
                .bind(now.as_millis())
                .fetch_one(store.reader())
                .await?
        }
    };
    let locked_until = row.locked_until.map(Timestamp::from_millis);
    let key = match (row.id, row.key_hash, row.merchant_name, row.merchant_created_at) {
        (Some(id), Some(hash), Some(name), Some(merchant_created_at)) => {
            let corrupt = || StoreError::Corrupt("api_keys row is incomplete".into());
            let full = Row {
                id,
                merchant_id: row.merchant_id.ok_or_else(corrupt)?,
                kind: row.kind.ok_or_else(corrupt)?,
                mode: row.mode.ok_or_else(corrupt)?,
                prefix: row.prefix.ok_or_else(corrupt)?,
                last4: row.last4.ok_or_else(corrupt)?,
                permissions: row.permissions.ok_or_else(corrupt)?,
                max_amount: row.max_amount,
                currencies: row.currencies.ok_or_else(corrupt)?,
                allowed_ips: row.allowed_ips.ok_or_else(corrupt)?,
                description: row.description,
                created_at: row.created_at.ok_or_else(corrupt)?,
                expires_at: row.expires_at,
                revoked_at: row.revoked_at,
                last_used_at: row.last_used_at,
                rotated_to: row.rotated_to,
                lineage_id: row.lineage_id,
                frozen_at: row.frozen_at,
                frozen_reason: row.frozen_reason,
            };
            let key = ApiKey::try_from(full)?;
            let merchant = Merchant {
                id: key.merchant_id.clone(),
                name: MerchantName::from_trusted(name),
                created_at: Timestamp::from_millis(merchant_created_at),
                element_origins: json_column(
                    "element_origins",
                    row.merchant_element_origins.as_deref().unwrap_or("[]"),
                )?,
                connector: row.merchant_connector.ok_or_else(corrupt)?,
                live_connector: row.merchant_live_connector,
                frozen: super::merchants::freeze_from_columns(row.merchant_frozen_at, row.merchant_frozen_reason),
            };
            Some((key, hash, merchant))
        }
        _ => None,
    };
    Ok(AuthLookup { key, locked_until })
}

impl super::ports::AuthStore for Store {
    async fn lookup_for_auth(&self, key_hash: &str, client_ip: &str, now: Timestamp) -> Result<AuthLookup, StoreError> {
        lookup_for_auth(self, key_hash, client_ip, now).await
    }

    fn auth_state(&self) -> &std::sync::Arc<super::auth_state::AuthState> {
        Store::auth_state(self)
    }
}
