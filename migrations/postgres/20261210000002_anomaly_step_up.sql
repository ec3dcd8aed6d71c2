-- A `step_up` response: until when the subject's payments must pass a 3-D
-- Secure challenge (every replica reads the ones in force, like throttles).
ALTER TABLE anomalies ADD COLUMN step_up_until BIGINT;
CREATE INDEX anomalies_step_up ON anomalies (step_up_until) WHERE step_up_until IS NOT NULL;
