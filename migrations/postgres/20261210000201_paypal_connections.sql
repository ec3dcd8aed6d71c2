-- PayPal processor connections (issue 19): `processor_connections.kind`
-- also takes 'paypal'. A PayPal connection's sealed credentials are the
-- REST app's client id and client secret (and optionally the id of the
-- webhook subscription that sends to it); `secret_key_last4` holds the last
-- four characters of the client secret, `has_webhook_secret` says whether a
-- webhook id is stored.
ALTER TABLE processor_connections DROP CONSTRAINT processor_connections_kind_check;
ALTER TABLE processor_connections ADD CONSTRAINT processor_connections_kind_check
    CHECK (kind IN ('stripe', 'paypal'));
