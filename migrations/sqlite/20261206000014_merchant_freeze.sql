-- A merchant can be frozen by the operator (incident containment): while
-- frozen_at is set, every API key of the merchant is refused. The reason is
-- the operator's text, kept with the freeze for `merchant show`.

ALTER TABLE merchants ADD COLUMN frozen_at BIGINT;
ALTER TABLE merchants ADD COLUMN frozen_reason TEXT;
