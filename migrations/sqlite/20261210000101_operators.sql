-- Operators enrolled for step-up (issue 21): each holds a TOTP secret
-- (RFC 6238), sealed by the vault like connection credentials (never in
-- clear; `kek_version`, `wrapped_dek`, `ciphertext`; re-wrapped by
-- `vault rotate-kek`). `last_used_step` is the last accepted TOTP time step:
-- a code is accepted only by a conditional UPDATE that raises it, so the same
-- code (or an older one) never passes twice, even from two commands at once.
-- `locked_until` is set after repeated failed codes (`operator_failures`,
-- one row per failure, counted over a window like `auth_failures`).
-- Times are BIGINT milliseconds since the Unix epoch.

CREATE TABLE operators (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL UNIQUE,
    kek_version     BIGINT NOT NULL,
    wrapped_dek     TEXT NOT NULL,
    ciphertext      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_used_step  BIGINT,
    locked_until    BIGINT
);

CREATE TABLE operator_failures (
    operator_id  TEXT NOT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX operator_failures_by_operator ON operator_failures (operator_id, at);
