-- Payments, their history, refunds and events; the processor each merchant
-- routes to.
--
-- Money columns are integer minor units of `currency`. The CHECKs are the last
-- line of defence behind the service's own rules: nothing is ever captured
-- beyond the amount or refunded beyond what was captured, even if two
-- requests race. Ids of payments, refunds and events are time-ordered, so id
-- order is creation order (COLLATE "C" on PostgreSQL).

CREATE TABLE payments (
    id                   TEXT COLLATE "C" PRIMARY KEY NOT NULL,
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
    CHECK (amount_received <= amount),
    CHECK (amount_refunded <= amount_received),
    CHECK (amount_capturable <= amount)
);
CREATE INDEX payments_by_merchant ON payments (merchant_id, id);
CREATE INDEX payments_by_idempotency_key ON payments (merchant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX payments_awaiting_action ON payments (action_expires_at) WHERE status = 'requires_action';

-- Every transition and every processor attempt of a payment, in order.
CREATE TABLE payment_history (
    payment_id   TEXT NOT NULL REFERENCES payments (id),
    seq          BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    action       TEXT NOT NULL,
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    amount       BIGINT,
    reason       TEXT,
    PRIMARY KEY (payment_id, seq)
);

CREATE TABLE refunds (
    id                   TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    merchant_id          TEXT NOT NULL REFERENCES merchants (id),
    payment_id           TEXT NOT NULL REFERENCES payments (id),
    mode                 TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    amount               BIGINT NOT NULL CHECK (amount > 0),
    currency             TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    reason               TEXT,
    failure_reason       TEXT,
    processor_reference  TEXT,
    idempotency_key      TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX refunds_by_merchant ON refunds (merchant_id, id);
CREATE INDEX refunds_by_payment ON refunds (payment_id, id);
CREATE INDEX refunds_by_idempotency_key ON refunds (merchant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- The transactional outbox: an event is written in the same transaction as
-- the change it describes; webhook deliveries are derived from it.
CREATE TABLE events (
    id           TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    merchant_id  TEXT NOT NULL REFERENCES merchants (id),
    mode         TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    type         TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    data         TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX events_by_merchant ON events (merchant_id, id);

-- Which connector (processor) a merchant's payments are routed to.
ALTER TABLE merchants ADD COLUMN connector TEXT NOT NULL DEFAULT 'sandbox';
