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
UPDATE api_keys SET lineage_id = (SELECT chain.root FROM chain WHERE chain.id = api_keys.id);
UPDATE api_keys SET lineage_id = id WHERE lineage_id IS NULL;

CREATE TEMP TABLE idempotency_keys_rows AS SELECT * FROM idempotency_keys;
DROP TABLE idempotency_keys;
CREATE TABLE idempotency_keys (
    merchant_id   TEXT NOT NULL REFERENCES merchants (id),
    mode          TEXT NOT NULL CHECK (mode = 'test' OR mode = 'live'),
    lineage_id    TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_mac   TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state = 'in_progress' OR state = 'done'),
    request_id    TEXT NOT NULL,
    locked_until  BIGINT NOT NULL,
    status_code   BIGINT,
    response      TEXT,
    wrapped_dek   TEXT,
    kek_version   BIGINT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, mode, lineage_id, key),
    CHECK (state = 'in_progress' OR (status_code IS NOT NULL AND response IS NOT NULL
                                     AND wrapped_dek IS NOT NULL AND kek_version IS NOT NULL))
);
INSERT INTO idempotency_keys (merchant_id, mode, lineage_id, key, request_mac, state, request_id, locked_until,
    status_code, response, wrapped_dek, kek_version, created_at, expires_at)
SELECT merchant_id, 'test', 'legacy', key, request_mac, state, request_id, locked_until,
    status_code, response, wrapped_dek, kek_version, created_at, expires_at
FROM temp.idempotency_keys_rows;
DROP TABLE temp.idempotency_keys_rows;
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
CREATE INDEX idempotency_keys_by_kek_version ON idempotency_keys (kek_version);

-- 4. A payment can be claimed for a capture or cancel sent to a processor
--    with external effects: the claim is taken in the compare-and-set that
--    moves the payment's version on, before the processor is called, so two
--    concurrent requests never both reach it.
ALTER TABLE payments ADD COLUMN claim TEXT CHECK (claim IS NULL OR claim = 'capture' OR claim = 'cancel');
