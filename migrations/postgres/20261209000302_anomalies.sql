-- Anomaly detection (issue 21).
--
-- `anomalies`: one row per alert. A detector raises at most one alert per
-- subject, window and severity (a warning, then at most one escalation to
-- critical): the unique (detector, subject, window_start, severity) makes a
-- second replica's insert of the same alert fail, and with it its event and
-- audit entry (one unit of work). `subject` is a key id, a merchant id, or
-- for a client address `ip:` and a keyed hash of it (never the address);
-- `merchant_id`/`mode` are set when the subject belongs to a merchant, which
-- is who may list it (`GET /v1/anomalies`) and gets its `anomaly.detected`
-- event. `evidence` is the JSON the API shows (no secret, no full address).
-- `throttle_until` is set when the policy throttled the subject: every
-- replica reads it to refuse the subject's requests until then.
--
-- `key_countries`: the countries each key was used from (offline IP to
-- country), the baseline of the new-country detector, shared by replicas.

CREATE TABLE anomalies (
    id              TEXT PRIMARY KEY NOT NULL,
    detector        TEXT NOT NULL,
    severity        TEXT NOT NULL CHECK (severity IN ('warning', 'critical')),
    subject_kind    TEXT NOT NULL CHECK (subject_kind IN ('key', 'merchant', 'client_ip')),
    subject         TEXT NOT NULL,
    merchant_id     TEXT,
    mode            TEXT CHECK (mode IN ('test', 'live')),
    window_start    BIGINT NOT NULL,
    window_secs     BIGINT NOT NULL,
    observed        BIGINT NOT NULL,
    baseline        BIGINT NOT NULL,
    action          TEXT NOT NULL,
    throttle_until  BIGINT,
    evidence        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (detector, subject, window_start, severity)
);

CREATE INDEX anomalies_by_tenant ON anomalies (merchant_id, mode, id);
CREATE INDEX anomalies_throttles ON anomalies (throttle_until);

CREATE TABLE key_countries (
    key_id      TEXT NOT NULL,
    country     TEXT NOT NULL,
    first_seen  BIGINT NOT NULL,
    PRIMARY KEY (key_id, country)
);
