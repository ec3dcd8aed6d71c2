-- Failover routing (issue 19): a connection may name a fallback connection
-- of the same merchant and mode. An authorization that could not reach the
-- connection's processor (connection refused, its circuit breaker open:
-- nothing was sent, so nothing can have been authorized) goes to the
-- fallback instead; a decline or an unknown outcome never does. One hop
-- only: the fallback's own fallback is not followed.
ALTER TABLE processor_connections ADD COLUMN fallback TEXT;
