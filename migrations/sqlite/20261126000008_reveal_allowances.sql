-- How many card reveals each API key made in its current one-minute window.
-- Kept in the database, not in a replica's memory, so the allowance holds
-- across every replica sharing it (and across restarts). One atomic upsert
-- per reveal counts it (`store::reveal_allowances`).
CREATE TABLE reveal_allowances (
    key_id        TEXT PRIMARY KEY NOT NULL,
    window_start  BIGINT NOT NULL,
    used          BIGINT NOT NULL
);
