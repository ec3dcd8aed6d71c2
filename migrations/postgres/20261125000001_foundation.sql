-- Foundation schema: merchants, API keys, the audit chain, authentication lockouts.
-- Times are BIGINT milliseconds since the Unix epoch; the same columns exist on SQLite.

CREATE TABLE merchants (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY NOT NULL,
    merchant_id  TEXT NOT NULL REFERENCES merchants (id),
    kind         TEXT NOT NULL CHECK (kind IN ('secret', 'publishable', 'restricted')),
    mode         TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    key_hash     TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    last4        TEXT NOT NULL,
    permissions  TEXT NOT NULL,
    max_amount   BIGINT,
    currencies   TEXT NOT NULL,
    allowed_ips  TEXT NOT NULL,
    description  TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT,
    rotated_to   TEXT
);
CREATE INDEX api_keys_by_merchant ON api_keys (merchant_id, id);

CREATE TABLE audit_head (
    id    BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_log (
    seq          BIGINT PRIMARY KEY NOT NULL,
    at           BIGINT NOT NULL,
    request_id   TEXT,
    merchant_id  TEXT,
    key_id       TEXT,
    client_ip    TEXT,
    user_agent   TEXT,
    action       TEXT NOT NULL,
    resource     TEXT,
    outcome      TEXT NOT NULL,
    reason       TEXT,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);

CREATE TABLE auth_failures (
    client_ip  TEXT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX auth_failures_by_ip ON auth_failures (client_ip, at);

CREATE TABLE ip_lockouts (
    client_ip     TEXT PRIMARY KEY NOT NULL,
    locked_until  BIGINT NOT NULL
);
