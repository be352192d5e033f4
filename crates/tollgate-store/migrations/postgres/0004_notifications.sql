-- tollgate schema v4: the notification outbox. Keep in step with ../sqlite/0004_notifications.sql.
-- One row per notice and target (a webhook URL). The (dedupe_key, target) pair is unique, so an
-- occurrence (a token's expiry, a key's rotation) enqueued by several instances, or again after
-- a restart, is delivered once. A deliverer leases a row by moving next_attempt_ms past now;
-- delivered or given-up rows are kept for their dedupe key until pruned. Writes here do not
-- bump tollgate_meta.revision.
CREATE TABLE notifications (
    id              BIGSERIAL PRIMARY KEY,
    dedupe_key      TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    -- the id receivers see, the same for every target and attempt
    event_id        TEXT    NOT NULL,
    -- 'token.expiring', 'token.expired', 'key.rotated', …
    kind            TEXT    NOT NULL,
    -- the JSON document delivered
    body            TEXT    NOT NULL,
    -- milliseconds since the Unix epoch
    created_at_ms   BIGINT  NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT  NOT NULL,
    delivered_at_ms BIGINT,
    gave_up_at_ms   BIGINT,
    last_error      TEXT,
    UNIQUE (dedupe_key, target)
);
CREATE INDEX notifications_due ON notifications (next_attempt_ms)
    WHERE delivered_at_ms IS NULL AND gave_up_at_ms IS NULL;
