-- Webhook endpoints, one delivery per endpoint and event, and every HTTP
-- attempt of a delivery.
--
-- Signing secrets are never stored in clear: each is sealed with the vault's
-- envelope encryption (a data key wrapped by the KEK of `*kek_version`), bound
-- to the endpoint and merchant. During a rotation the previous secret is kept,
-- sealed, until `previous_expires_at`; a deleted endpoint loses both.
--
-- Deliveries are the outbox's fan-out: `events::insert` adds one pending row
-- per subscribed, enabled endpoint in the event's own transaction. A worker
-- owns a delivery while `lease_until` lies in the future, so replicas sharing
-- a database never send the same attempt concurrently.

CREATE TABLE webhook_endpoints (
    id                     TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    merchant_id            TEXT NOT NULL REFERENCES merchants (id),
    mode                   TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    url                    TEXT NOT NULL,
    -- JSON array of event types, or ["*"].
    events                 TEXT NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('enabled', 'disabled', 'deleted')),
    kek_version            BIGINT,
    secret_wrapped_dek     TEXT,
    secret_ciphertext      TEXT,
    previous_kek_version   BIGINT,
    previous_wrapped_dek   TEXT,
    previous_ciphertext    TEXT,
    previous_expires_at    BIGINT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    disabled_at            BIGINT,
    CHECK (status = 'deleted' OR (kek_version IS NOT NULL AND secret_wrapped_dek IS NOT NULL
                                  AND secret_ciphertext IS NOT NULL))
);
CREATE INDEX webhook_endpoints_by_merchant ON webhook_endpoints (merchant_id, mode, status);

CREATE TABLE webhook_deliveries (
    endpoint_id       TEXT NOT NULL REFERENCES webhook_endpoints (id),
    event_id          TEXT NOT NULL REFERENCES events (id),
    merchant_id       TEXT NOT NULL REFERENCES merchants (id),
    status            TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts          BIGINT NOT NULL CHECK (attempts >= 0),
    next_attempt_at   BIGINT NOT NULL,
    lease_token       TEXT,
    lease_until       BIGINT,
    last_status_code  BIGINT,
    last_error        TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    id            TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    endpoint_id   TEXT NOT NULL REFERENCES webhook_endpoints (id),
    event_id      TEXT NOT NULL REFERENCES events (id),
    merchant_id   TEXT NOT NULL REFERENCES merchants (id),
    attempt       BIGINT NOT NULL,
    attempted_at  BIGINT NOT NULL,
    -- The HTTP status, or NULL when no response came (then `error` says why).
    status_code   BIGINT,
    error         TEXT,
    duration_ms   BIGINT NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('succeeded', 'failed'))
);
CREATE INDEX webhook_attempts_by_endpoint ON webhook_attempts (endpoint_id, id);
