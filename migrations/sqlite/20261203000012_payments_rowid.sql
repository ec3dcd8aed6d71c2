-- Stores payments as a rowid table again (SQLite only), undoing their
-- clustering by primary key (migration 7), for the reason migration 9 gave
-- for events: since migration 11 a confirmed payment's row carries its
-- history and is about 700 bytes, so a clustered (index B-tree) table split a
-- leaf every five rows and rewrote three or four pages per split, where a
-- rowid table starts a new right-most leaf and touches nothing else.

PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE payments_rows AS SELECT * FROM payments;
DROP TABLE payments;
CREATE TABLE payments (
    id                   TEXT PRIMARY KEY NOT NULL,
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
CREATE INDEX payments_by_merchant ON payments (merchant_id, id);
CREATE INDEX payments_by_idempotency_key ON payments (merchant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX payments_awaiting_action ON payments (action_expires_at) WHERE status = 'requires_action';
