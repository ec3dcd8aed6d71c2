-- Test and live are separate worlds, and idempotency records belong to the
-- API key that made them (security review, issue 17).
--
-- 1. Audit entries and webhook deliveries carry the mode of what they are
--    about (NULL for entries without a mode: operator and system actions, and
--    entries written before this migration). The audit chain hash covers the
--    mode only when it is set, so older entries still verify.
-- 2. API keys carry their lineage: the id of the first key of a rotation
--    chain. A successor shares its predecessor's lineage, and with it its
--    idempotency records (a retry during a rotation's grace period is still
--    deduplicated).
-- 3. Idempotency records are keyed by (merchant, mode, lineage, client key):
--    another key of the merchant is neither blocked by a record nor learns
--    that it exists. Records written before this migration keep the lineage
--    'legacy', which no key has: they are never replayed again and expire
--    within their 24 hours.

ALTER TABLE audit_log ADD COLUMN mode TEXT CHECK (mode IS NULL OR mode = 'test' OR mode = 'live');

ALTER TABLE webhook_deliveries ADD COLUMN mode TEXT CHECK (mode IS NULL OR mode = 'test' OR mode = 'live');
UPDATE webhook_deliveries SET mode = (SELECT w.mode FROM webhook_endpoints w WHERE w.id = webhook_deliveries.endpoint_id);

ALTER TABLE api_keys ADD COLUMN lineage_id TEXT;
WITH RECURSIVE chain (id, root) AS (
    SELECT id, id FROM api_keys
    WHERE id NOT IN (SELECT rotated_to FROM api_keys WHERE rotated_to IS NOT NULL)
    UNION ALL
    SELECT k.rotated_to, c.root FROM chain c JOIN api_keys k ON k.id = c.id WHERE k.rotated_to IS NOT NULL
)
UPDATE api_keys SET lineage_id = chain.root FROM chain WHERE chain.id = api_keys.id;
UPDATE api_keys SET lineage_id = id WHERE lineage_id IS NULL;

ALTER TABLE idempotency_keys ADD COLUMN mode TEXT NOT NULL DEFAULT 'test' CHECK (mode = 'test' OR mode = 'live');
ALTER TABLE idempotency_keys ADD COLUMN lineage_id TEXT NOT NULL DEFAULT 'legacy';
ALTER TABLE idempotency_keys ALTER COLUMN mode DROP DEFAULT;
ALTER TABLE idempotency_keys ALTER COLUMN lineage_id DROP DEFAULT;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (merchant_id, mode, lineage_id, key);

-- 4. A payment can be claimed for a capture or cancel sent to a processor
--    with external effects: the claim is taken in the compare-and-set that
--    moves the payment's version on, before the processor is called, so two
--    concurrent requests never both reach it.
ALTER TABLE payments ADD COLUMN claim TEXT CHECK (claim IS NULL OR claim = 'capture' OR claim = 'cancel');
