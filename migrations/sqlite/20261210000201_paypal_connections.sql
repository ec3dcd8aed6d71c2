-- PayPal processor connections (issue 19): `processor_connections.kind`
-- also takes 'paypal'. A PayPal connection's sealed credentials are the
-- REST app's client id and client secret (and optionally the id of the
-- webhook subscription that sends to it); `secret_key_last4` holds the last
-- four characters of the client secret, `has_webhook_secret` says whether a
-- webhook id is stored.
--
-- SQLite cannot change a CHECK in place: the table is rebuilt under its own
-- name, as in migration 15, in one transaction with foreign-key checks
-- (processor_events refers to it) deferred to its commit; every row and
-- index is kept.

PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE processor_connections_rows AS SELECT * FROM processor_connections;
DROP TABLE processor_connections;

CREATE TABLE processor_connections (
    id                  TEXT PRIMARY KEY NOT NULL,
    merchant_id         TEXT NOT NULL REFERENCES merchants (id),
    mode                TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    kind                TEXT NOT NULL CHECK (kind IN ('stripe', 'paypal')),
    status              TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    -- The last four characters of the Stripe secret key or PayPal client
    -- secret, for people to recognise it.
    secret_key_last4    TEXT NOT NULL,
    -- 1 when the sealed credentials hold a webhook signing secret (Stripe)
    -- or webhook id (PayPal).
    has_webhook_secret  BIGINT NOT NULL CHECK (has_webhook_secret IN (0, 1)),
    kek_version         BIGINT NOT NULL,
    wrapped_dek         TEXT NOT NULL,
    ciphertext          TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    disabled_at         BIGINT,
    fallback            TEXT,
    CHECK ((status = 'disabled') = (disabled_at IS NOT NULL))
);

INSERT INTO processor_connections (id, merchant_id, mode, kind, status, secret_key_last4, has_webhook_secret,
    kek_version, wrapped_dek, ciphertext, created_at, disabled_at, fallback)
SELECT id, merchant_id, mode, kind, status, secret_key_last4, has_webhook_secret,
    kek_version, wrapped_dek, ciphertext, created_at, disabled_at, fallback
FROM processor_connections_rows;
DROP TABLE processor_connections_rows;

CREATE INDEX processor_connections_by_merchant ON processor_connections (merchant_id, mode, id);
CREATE INDEX processor_connections_by_kek ON processor_connections (kek_version);
