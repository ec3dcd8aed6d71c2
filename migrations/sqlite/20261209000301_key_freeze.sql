-- A single API key can be frozen (by an operator, or by an anomaly policy):
-- while frozen_at is set the key is refused with 403 `key_frozen`. The
-- reason is the operator's text or the anomaly that froze it.

ALTER TABLE api_keys ADD COLUMN frozen_at BIGINT;
ALTER TABLE api_keys ADD COLUMN frozen_reason TEXT;
