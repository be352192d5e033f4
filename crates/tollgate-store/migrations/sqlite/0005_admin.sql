-- tollgate schema v5: the admin model (DESIGN.md §6). Keep in step with
-- ../postgres/0005_admin.sql. 0004 is left to the notifications change; this file depends on
-- nothing after 0003, so it applies whichever of the two a database received first.
--
-- Service tokens: `name` is no longer unique (Cloudflare allows duplicates; the CLI addresses
-- tokens by client ID); `enabled` (false refuses the current and the previous secret and the
-- token's cookies, the record is kept) and `client_secret_version` (Cloudflare's rotation
-- counter) are new. `previous_secret_expires_at` already is Cloudflare's
-- `previous_client_secret_expires_at`. SQLite cannot drop a UNIQUE constraint, so the table is
-- rebuilt; every row and column is copied (this migration runs in one transaction).
CREATE TABLE service_tokens_v5 (
    id                         TEXT    NOT NULL PRIMARY KEY,
    name                       TEXT    NOT NULL,
    client_id                  TEXT    NOT NULL UNIQUE,
    secret_hash                BLOB    NOT NULL CHECK (length(secret_hash) = 32),
    previous_secret_hash       BLOB             CHECK (length(previous_secret_hash) = 32),
    previous_secret_expires_at INTEGER,
    -- NULL = forever
    duration_seconds           INTEGER          CHECK (duration_seconds >= 0),
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL,
    expires_at                 INTEGER,
    last_seen_at               INTEGER,
    enabled                    BOOLEAN NOT NULL DEFAULT TRUE,
    client_secret_version      INTEGER NOT NULL DEFAULT 1 CHECK (client_secret_version >= 1)
);
INSERT INTO service_tokens_v5 (id, name, client_id, secret_hash, previous_secret_hash,
    previous_secret_expires_at, duration_seconds, created_at, updated_at, expires_at,
    last_seen_at)
SELECT id, name, client_id, secret_hash, previous_secret_hash, previous_secret_expires_at,
    duration_seconds, created_at, updated_at, expires_at, last_seen_at
FROM service_tokens;
DROP TABLE service_tokens;
ALTER TABLE service_tokens_v5 RENAME TO service_tokens;
CREATE INDEX service_tokens_name ON service_tokens (name);

-- The account: one row, one 32-lowercase-hex account_id, made on first use by whichever
-- instance gets there first (INSERT … ON CONFLICT DO NOTHING, then read).
CREATE TABLE account (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    account_id TEXT    NOT NULL
               CHECK (length(account_id) = 32 AND account_id NOT GLOB '*[^0-9a-f]*'),
    created_at INTEGER NOT NULL
);

-- API tokens for the admin API: only the SHA-256 of the token is kept.
CREATE TABLE api_tokens (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL,
    token_hash   BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    -- 'read': read-only; 'edit': read and change
    permission   TEXT    NOT NULL CHECK (permission IN ('read', 'edit')),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
