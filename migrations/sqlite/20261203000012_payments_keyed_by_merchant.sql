-- Stores payments as a rowid table keyed by (merchant_id, id) (SQLite only).
--
-- As a rowid table again, undoing their clustering by primary key (migration
-- 7), for the reason migration 9 gave for events: since migration 11 a
-- confirmed payment's row carries its history and is about 700 bytes, so a
-- clustered (index B-tree) table split a leaf every five rows and rewrote
-- three or four pages per split, where a rowid table starts a new right-most
-- leaf and touches nothing else.
--
-- Keyed by (merchant_id, id), the index every merchant's read and every
-- update already uses, so `payments_by_merchant` goes and a payment costs one
-- index instead of two (each index rewrote about two WAL frames per batch
-- commit). The one read by id alone, the customer's challenge page, only ever
-- finds payments that carry a `next_action`; a partial index on those serves
-- it. Refunds refer to their payment together with their own merchant, so a
-- refund of another merchant's payment cannot be stored.
--
-- Both tables are rebuilt under their own names as in migration 7, in one
-- transaction with foreign-key checks deferred to its commit.

PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE payments_rows AS SELECT * FROM payments;
CREATE TEMP TABLE refunds_rows AS SELECT * FROM refunds;
DROP TABLE refunds;
DROP TABLE payments;
CREATE TABLE payments (
    id                   TEXT NOT NULL,
    merchant_id          TEXT NOT NULL REFERENCES merchants (id),
    mode                 TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    status               TEXT NOT NULL CHECK (status IN ('requires_payment_method', 'requires_confirmation',
                             'requires_action', 'processing', 'requires_capture', 'succeeded', 'failed', 'canceled')),
    amount               BIGINT NOT NULL CHECK (amount > 0),
    currency             TEXT NOT NULL,
    capture_method       TEXT NOT NULL CHECK (capture_method IN ('automatic', 'manual')),
    payment_method       TEXT REFERENCES card_tokens (id),
    amount_capturable    BIGINT NOT NULL CHECK (amount_capturable >= 0),
    amount_received      BIGINT NOT NULL CHECK (amount_received >= 0),
    amount_refunded      BIGINT NOT NULL CHECK (amount_refunded >= 0),
    description          TEXT,
    metadata             TEXT NOT NULL,
    customer_ip          TEXT,
    customer_email       TEXT,
    return_url           TEXT,
    connector            TEXT NOT NULL,
    processor_reference  TEXT,
    decline_code         TEXT,
    failure_code         TEXT,
    failure_message      TEXT,
    next_action          TEXT,
    action_expires_at    BIGINT,
    cancellation_reason  TEXT,
    idempotency_key      TEXT,
    version              BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    history              TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (merchant_id, id),
    CHECK (amount_received <= amount),
    CHECK (amount_refunded <= amount_received),
    CHECK (amount_capturable <= amount)
);
INSERT INTO payments (id, merchant_id, mode, status, amount, currency, capture_method, payment_method,
    amount_capturable, amount_received, amount_refunded, description, metadata, customer_ip, customer_email,
    return_url, connector, processor_reference, decline_code, failure_code, failure_message, next_action,
    action_expires_at, cancellation_reason, idempotency_key, version, created_at, updated_at, history)
SELECT id, merchant_id, mode, status, amount, currency, capture_method, payment_method,
    amount_capturable, amount_received, amount_refunded, description, metadata, customer_ip, customer_email,
    return_url, connector, processor_reference, decline_code, failure_code, failure_message, next_action,
    action_expires_at, cancellation_reason, idempotency_key, version, created_at, updated_at, history
FROM temp.payments_rows ORDER BY id;
DROP TABLE temp.payments_rows;
CREATE INDEX payments_with_next_action ON payments (id) WHERE next_action IS NOT NULL;
CREATE INDEX payments_by_idempotency_key ON payments (merchant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX payments_awaiting_action ON payments (action_expires_at) WHERE status = 'requires_action';

CREATE TABLE refunds (
    id                   TEXT PRIMARY KEY NOT NULL,
    merchant_id          TEXT NOT NULL REFERENCES merchants (id),
    payment_id           TEXT NOT NULL,
    mode                 TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    amount               BIGINT NOT NULL CHECK (amount > 0),
    currency             TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    reason               TEXT,
    failure_reason       TEXT,
    processor_reference  TEXT,
    idempotency_key      TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    FOREIGN KEY (merchant_id, payment_id) REFERENCES payments (merchant_id, id)
);
INSERT INTO refunds (id, merchant_id, payment_id, mode, amount, currency, status, reason, failure_reason,
    processor_reference, idempotency_key, created_at, updated_at)
SELECT id, merchant_id, payment_id, mode, amount, currency, status, reason, failure_reason,
    processor_reference, idempotency_key, created_at, updated_at
FROM temp.refunds_rows ORDER BY id;
DROP TABLE temp.refunds_rows;
CREATE INDEX refunds_by_merchant ON refunds (merchant_id, id);
CREATE INDEX refunds_by_payment ON refunds (payment_id, id);
CREATE INDEX refunds_by_idempotency_key ON refunds (merchant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
