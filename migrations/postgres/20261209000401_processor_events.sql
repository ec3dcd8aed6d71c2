-- Inbound processor webhooks (issue 19): each verified delivery's event id,
-- per connection, so that a repeated delivery (processors deliver at least
-- once, and retry) is applied once. The row is written in the same unit of
-- work as the change the event caused, with its audit entry and our own
-- events: either all of it happened, or the next delivery applies it.
-- Nothing of the event's payload is kept: its type and what it did only.
CREATE TABLE processor_events (
    connection_id  TEXT COLLATE "C" NOT NULL REFERENCES processor_connections (id),
    event_id       TEXT COLLATE "C" NOT NULL,
    merchant_id    TEXT NOT NULL,
    mode           TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    event_type     TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    received_at    BIGINT NOT NULL,
    PRIMARY KEY (connection_id, event_id)
);

-- Finds the payment a processor's event names by the processor's reference
-- (a Stripe PaymentIntent id). Partial: payments through the built-in
-- sandbox are never looked up this way and cost nothing more to write.
CREATE INDEX payments_by_processor_reference ON payments (merchant_id, processor_reference)
    WHERE connector LIKE 'conn_%';
