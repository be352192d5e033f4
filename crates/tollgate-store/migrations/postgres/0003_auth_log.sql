-- tollgate schema v3: the authentication log. Keep in step with ../sqlite/0003_auth_log.sql.
-- One row per exchange attempt, refused token or management change (identical refusals of one
-- write batch folded into one row, `count` of them). Never a secret or a token. Writes here do
-- not bump tollgate_meta.revision. Rows older than the retention are pruned by at_ms.
CREATE TABLE auth_events (
    id         BIGSERIAL PRIMARY KEY,
    -- milliseconds since the Unix epoch
    at_ms      BIGINT  NOT NULL,
    -- 'exchange', 'token' or 'admin'
    kind       TEXT    NOT NULL,
    allowed    BOOLEAN NOT NULL,
    -- RejectionKind's spelling ('invalid_credentials', 'expired', …)
    reason     TEXT,
    detail     TEXT,
    app        TEXT,
    client_id  TEXT,
    token_id   TEXT,
    token_name TEXT,
    identity   TEXT,
    location   TEXT,
    source_ip  TEXT,
    request_id TEXT,
    action     TEXT,
    actor      TEXT,
    count      BIGINT  NOT NULL DEFAULT 1 CHECK (count >= 1)
);
CREATE INDEX auth_events_at ON auth_events (at_ms);
CREATE INDEX auth_events_client ON auth_events (client_id, at_ms);
CREATE INDEX auth_events_app ON auth_events (app, at_ms);
